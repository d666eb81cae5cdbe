package devices

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"storegate/gateway"
)

// DefaultBaud is the serial rate of a scanner unless configured otherwise; it is
// the factory setting of most serial scanners.
const DefaultBaud = 9600

// DefaultReadTimeout bounds each read of a scanner. It is how quickly a Reader
// notices a cancelled context or a vanished device while the lane is idle.
const DefaultReadTimeout = 100 * time.Millisecond

// fastEOFLimit is how many reads in a row may end at once with nothing read
// before the Reader treats the port as hung up. A hung-up tty (a pty whose
// master closed, a USB scanner unplugged before udev removes its node) returns
// (0, io.EOF) immediately, forever, while an idle one returns it only after
// the read timeout.
const fastEOFLimit = 3

// ReaderConfig describes one lane's scanner. Zero fields take the defaults.
type ReaderConfig struct {
	// Lane names the lane the scanner belongs to; it is required.
	Lane string
	// Device is the scanner's path, such as /dev/ttyACM0 or a udev symlink;
	// it is required. While the lane is idle the Reader checks that the path
	// still exists, and after a hang-up it reopens the same path.
	Device string
	// Baud is the serial rate; zero means DefaultBaud.
	Baud int
	// Terminator is the frame suffix the scanner sends; the zero value,
	// TerminatorAny, accepts CR, LF and CRLF.
	Terminator Terminator
	// MaxFrame caps a frame's length in bytes; zero means DefaultMaxFrame.
	MaxFrame int
	// InterByteTimeout is how long a partial frame waits for its next byte;
	// zero means DefaultInterByteTimeout.
	InterByteTimeout time.Duration
	// ReadTimeout bounds each read; zero means DefaultReadTimeout. It must be
	// at least 100 ms, the resolution of a serial port's read timer.
	ReadTimeout time.Duration
	// BackoffMin is the first wait before reopening; zero means
	// DefaultBackoffMin.
	BackoffMin time.Duration
	// BackoffMax caps the wait between reopen attempts; zero means
	// DefaultBackoffMax.
	BackoffMax time.Duration
}

// withDefaults returns c with its zero fields set to the defaults.
func (c ReaderConfig) withDefaults() ReaderConfig {
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.InterByteTimeout == 0 {
		c.InterByteTimeout = DefaultInterByteTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	return c
}

// Validate reports the first field of c, after defaults, that cannot work,
// naming it.
func (c ReaderConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Lane == "":
		return errors.New("scanner config: Lane is required")
	case c.Device == "":
		return fmt.Errorf("scanner config for lane %q: Device is required", c.Lane)
	case !ValidBaud(c.Baud):
		return fmt.Errorf("scanner config for lane %q: Baud %d is not a standard rate", c.Lane, c.Baud)
	case c.Terminator < TerminatorAny || c.Terminator > TerminatorCRLF:
		return fmt.Errorf("scanner config for lane %q: unknown Terminator %d", c.Lane, int(c.Terminator))
	case c.MaxFrame < 0:
		return fmt.Errorf("scanner config for lane %q: MaxFrame %d is negative", c.Lane, c.MaxFrame)
	case c.InterByteTimeout < 0:
		return fmt.Errorf("scanner config for lane %q: InterByteTimeout %v is negative", c.Lane, c.InterByteTimeout)
	case c.ReadTimeout < 100*time.Millisecond:
		return fmt.Errorf("scanner config for lane %q: ReadTimeout %v is under 100ms", c.Lane, c.ReadTimeout)
	case c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin:
		return fmt.Errorf("scanner config for lane %q: BackoffMin %v and BackoffMax %v must be positive and in order", c.Lane, c.BackoffMin, c.BackoffMax)
	}
	return nil
}

// Status is a Reader's state for operators: the domain's view of a scanner
// and, beyond it, the drops by reason.
type Status struct {
	gateway.ScannerStatus
	// Drops breaks Dropped down by reason.
	Drops DropCounts
}

// Reader reads one lane's scanner and publishes what it scans to a ScanHub.
// Create it with NewReader, set its exported fields, then call Run.
type Reader struct {
	// Config describes the scanner.
	Config ReaderConfig
	// Hub receives the scans.
	Hub *ScanHub
	// Logger receives connection changes, scans (credentials only by
	// fingerprint) and drops; NewReader sets one that discards them.
	Logger *slog.Logger
	// Opener opens the device; NewReader sets OpenSerial.
	Opener Opener

	running atomic.Bool

	mu       sync.Mutex
	status   Status
	rejected uint64
}

// NewReader returns a Reader for cfg that publishes to hub, with the
// default settings. It opens nothing until Run, which refuses a cfg that
// cannot work; check cfg with Validate first (Manager.Add does), so that a
// daemon refuses a bad configuration at start rather than at Run.
func NewReader(cfg ReaderConfig, hub *ScanHub) *Reader {
	return &Reader{Config: cfg, Hub: hub, Logger: slog.New(slog.DiscardHandler), Opener: OpenSerial}
}

// Status returns a snapshot of the Reader's state.
func (r *Reader) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.status
	if s.Lane == "" && s.Device == "" {
		s.Lane, s.Device = r.Config.Lane, r.Config.Device
	}
	return s
}

// Run opens the scanner, reads frames and publishes them to the hub until ctx
// is done, then returns ctx's error. A device that cannot be opened, hangs up
// or disappears is closed and reopened at the same path with backoff; such
// faults are logged and shown in Status and never end Run. Run returns early
// only for an invalid configuration or if the Reader is already running.
func (r *Reader) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return fmt.Errorf("scanner reader for lane %q is already running", r.Config.Lane)
	}
	defer r.running.Store(false)

	cfg := r.Config.withDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if r.Hub == nil {
		return errors.New("scanner reader: a ScanHub is required")
	}
	open := r.Opener
	if open == nil {
		open = OpenSerial
	}
	log := r.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("lane", cfg.Lane, "device", cfg.Device)

	r.mu.Lock()
	r.status.Lane, r.status.Device = cfg.Lane, cfg.Device
	r.status.Up, r.status.Since = false, time.Now()
	r.mu.Unlock()

	split := NewSplitter(cfg.Terminator, cfg.MaxFrame, cfg.InterByteTimeout)
	bo := newBackoff(cfg.BackoffMin, cfg.BackoffMax)
	lastOpenErr := ""
	for {
		if ctx.Err() != nil {
			r.setUp(false, "")
			return ctx.Err()
		}

		port, err := open(cfg.Device, cfg.Baud, cfg.ReadTimeout)
		if err == nil && port == nil {
			err = errors.New("opener returned no port")
		}
		if err != nil {
			r.setUp(false, err.Error())
			if err.Error() != lastOpenErr {
				log.Warn("scanner cannot be opened; retrying", "err", err)
				lastOpenErr = err.Error()
			} else {
				log.Debug("scanner still cannot be opened", "err", err)
			}
			if !sleep(ctx, bo.wait()) {
				r.setUp(false, "")
				return ctx.Err()
			}
			continue
		}
		lastOpenErr = ""
		r.setUp(true, "")
		log.Info("scanner connected")
		opened := time.Now()

		err = r.readLoop(ctx, cfg, port, split, log)
		if cerr := port.Close(); cerr != nil {
			log.Debug("scanner close failed", "err", cerr)
		}
		split.Reset()
		r.setDrops(split.Drops())

		if ctx.Err() != nil {
			r.setUp(false, "")
			log.Info("scanner reader stopped")
			return ctx.Err()
		}
		r.setUp(false, err.Error())
		log.Warn("scanner hung up; reopening", "err", err)
		if time.Since(opened) >= cfg.BackoffMax {
			bo.reset()
		}
		if !sleep(ctx, bo.wait()) {
			r.setUp(false, "")
			return ctx.Err()
		}
	}
}

// readLoop reads port until ctx is done (returning nil) or the device hangs up
// (returning why).
func (r *Reader) readLoop(ctx context.Context, cfg ReaderConfig, port Port, split *Splitter, log *slog.Logger) error {
	buf := make([]byte, 512)
	fastEOFs := 0
	var lastDropLog time.Time
	for ctx.Err() == nil {
		start := time.Now()
		n, err := port.Read(buf)
		now := time.Now()

		if n > 0 {
			fastEOFs = 0
			// Count before publishing, so that a subscriber who sees an
			// event finds the status already counting it.
			before := split.Drops()
			frames := split.Feed(now, buf[:n])
			lastDropLog = r.noteDrops(before, split.Drops(), lastDropLog, now, log)
			for _, frame := range frames {
				r.deliver(cfg.Lane, frame, log)
			}
			if err == nil || errors.Is(err, io.EOF) {
				continue
			}
		}

		if err != nil && !errors.Is(err, io.EOF) {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("hung up: %w", err)
		}

		// Nothing read. On a serial port that is either the read timeout of
		// an idle lane, or a hang-up: tell them apart by whether the device
		// path still exists and by how fast the read came back.
		if _, serr := os.Stat(cfg.Device); serr != nil {
			return fmt.Errorf("device gone: %w", serr)
		}
		if now.Sub(start) < cfg.ReadTimeout/4 {
			fastEOFs++
			if fastEOFs >= fastEOFLimit {
				return errors.New("device hung up: reads return end of file at once")
			}
		} else {
			fastEOFs = 0
		}
		before := split.Drops()
		split.Expire(now)
		lastDropLog = r.noteDrops(before, split.Drops(), lastDropLog, now, log)
	}
	return nil
}

// deliver classifies a frame and publishes it, or drops it if the classifier
// refused it.
func (r *Reader) deliver(lane string, frame []byte, log *slog.Logger) {
	scan := Classify(frame)
	if scan.Rejected() {
		r.mu.Lock()
		r.rejected++
		r.status.Drops.Rejected = r.rejected
		r.status.Dropped = r.status.Drops.Total()
		r.mu.Unlock()
		log.Warn("scan refused", "kind", scan.Kind, "reason", scan.Reason,
			"aim", string(scan.AIM), "symbology", scan.AIM.Symbology(), "fingerprint", Fingerprint(scan.Text))
		return
	}

	r.mu.Lock()
	r.status.Frames++
	r.mu.Unlock()
	ev := r.Hub.Publish(lane, scan)

	attrs := []any{"kind", ev.Kind, "aim", string(ev.AIM)}
	switch {
	case ev.ScanID != "":
		attrs = append(attrs, "scan_id", ev.ScanID, "fingerprint", ev.Fingerprint)
	case ev.Code != "":
		attrs = append(attrs, "code", ev.Code)
	default:
		attrs = append(attrs, "fingerprint", ev.Fingerprint)
	}
	if ev.Reason != "" {
		attrs = append(attrs, "reason", ev.Reason)
	}
	// Products are the bulk of a lane's scans: keep them out of the
	// default log level.
	level := slog.LevelInfo
	if ev.Kind == KindProduct {
		level = slog.LevelDebug
	}
	log.Log(context.Background(), level, "scan", attrs...)
}

// noteDrops records the splitter's drop counts in the status and logs new
// drops at most once a second, so that a scanner spewing garbage cannot flood
// the log. It returns when it last logged.
func (r *Reader) noteDrops(before, after DropCounts, lastLog, now time.Time, log *slog.Logger) time.Time {
	if after == before {
		return lastLog
	}
	r.setDrops(after)
	if now.Sub(lastLog) < time.Second {
		return lastLog
	}
	log.Warn("scanner frames dropped",
		"oversize", after.Oversize, "binary", after.Binary, "incomplete", after.Incomplete)
	return now
}

// setDrops records the splitter's drop counts in the status.
func (r *Reader) setDrops(d DropCounts) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d.Rejected = r.rejected
	r.status.Drops = d
	r.status.Dropped = d.Total()
}

// setUp records whether the scanner is up and, if lastErr is not empty, the
// failure that brought it down.
func (r *Reader) setUp(up bool, lastErr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status.Up != up {
		r.status.Up = up
		r.status.Since = time.Now()
	}
	if lastErr != "" {
		r.status.LastError = lastErr
	}
}
