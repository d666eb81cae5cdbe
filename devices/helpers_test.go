package devices_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"storegate/devices"
)

// waitLimit bounds every wait for something asynchronous. It is generous on
// purpose: the tests assert that things happen, not how fast.
const waitLimit = 5 * time.Second

// scanner is a simulated serial scanner: a pseudo-terminal whose slave side is
// reached through a symlink in a temporary folder, as udev exposes a real
// scanner under a stable name. The test writes to the master side; the Reader
// reads the slave through the symlink.
type scanner struct {
	t      *testing.T
	link   string
	cooked bool // leave the slave in the kernel's default, cooked mode
	master *os.File
	slave  *os.File
}

// newScanner plugs in a simulated scanner and unplugs it when the test ends.
func newScanner(t *testing.T) *scanner {
	t.Helper()
	s := &scanner{t: t, link: filepath.Join(t.TempDir(), "scanner")}
	s.plug()
	t.Cleanup(s.unplug)
	return s
}

// newCookedScanner is newScanner with the slave left in cooked mode, where the
// line discipline would turn an LF written to it into CRLF.
func newCookedScanner(t *testing.T) *scanner {
	t.Helper()
	s := &scanner{t: t, link: filepath.Join(t.TempDir(), "scanner"), cooked: true}
	s.plug()
	t.Cleanup(s.unplug)
	return s
}

// plug opens a new pseudo-terminal, puts its slave in raw mode unless the
// scanner is cooked, and points the symlink at it, replacing whatever it
// pointed at.
func (s *scanner) plug() {
	s.t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		s.t.Fatalf("open pty: %v", err)
	}
	if !s.cooked {
		makeRaw(s.t, slave)
	}
	tmp := s.link + ".new"
	if err := os.Symlink(slave.Name(), tmp); err != nil {
		s.t.Fatalf("symlink: %v", err)
	}
	if err := os.Rename(tmp, s.link); err != nil {
		s.t.Fatalf("re-point symlink: %v", err)
	}
	s.master, s.slave = master, slave
}

// unplug closes both sides of the pseudo-terminal: the kernel hangs up the
// slave and removes its /dev/pts node, as it does for an unplugged USB scanner.
func (s *scanner) unplug() {
	if s.master == nil {
		return
	}
	_ = s.slave.Close()
	_ = s.master.Close()
	s.master, s.slave = nil, nil
}

// send writes p to the scanner's line in one write.
func (s *scanner) send(p string) {
	s.t.Helper()
	if _, err := s.master.Write([]byte(p)); err != nil {
		s.t.Fatalf("write to pty master: %v", err)
	}
}

// makeRaw is cfmakeraw for a pty slave: no echo, no canonical mode, no CR to
// LF translation on input and no LF to CRLF on output, so that bytes cross the
// pty unchanged.
func makeRaw(t *testing.T, f *os.File) {
	t.Helper()
	fd := int(f.Fd())
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		t.Fatalf("get termios: %v", err)
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN] = 1
	tio.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, tio); err != nil {
		t.Fatalf("set termios: %v", err)
	}
}

// logBuffer collects a test's logs so that the test can check what was logged;
// they are printed if the test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// waitFor waits until the logs contain want and returns them.
func (l *logBuffer) waitFor(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		logs := l.String()
		if strings.Contains(logs, want) {
			return logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs never contained %q:\n%s", want, logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newLogger returns a debug-level logger into a logBuffer.
func newLogger(t *testing.T) (*slog.Logger, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", lb.String())
		}
	})
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

// lane is a Reader running on a lane, with a subscription to the lane's events.
type lane struct {
	reader *devices.Reader
	hub    *devices.ScanHub
	sub    *devices.Subscription
	logs   *logBuffer
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
}

// startReader runs a Reader for cfg and stops it when the test ends, failing
// the test if Run does not return. It does not wait for the scanner to be up.
func startReader(t *testing.T, cfg devices.ReaderConfig, opener devices.Opener) *lane {
	t.Helper()
	logger, logs := newLogger(t)
	hub := devices.NewScanHub()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	r := devices.NewReader(cfg, hub)
	r.Logger = logger
	if opener != nil {
		r.Opener = opener
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &lane{reader: r, hub: hub, sub: hub.Watch(ctx, cfg.Lane), logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- r.Run(ctx) }()
	t.Cleanup(func() { l.stop(t) })
	return l
}

// stop cancels the Reader and waits for Run to return, once.
func (l *lane) stop(t *testing.T) {
	t.Helper()
	l.stopOnce.Do(func() {
		l.cancel()
		select {
		case err := <-l.done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(waitLimit):
			t.Errorf("Run did not return within %v of cancel", waitLimit)
		}
	})
}

// waitStatus waits until the Reader's status satisfies ok.
func (l *lane) waitStatus(t *testing.T, what string, ok func(devices.Status) bool) devices.Status {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		s := l.reader.Status()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never became %s; last %+v", what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitUp waits until the scanner is open.
func (l *lane) waitUp(t *testing.T) devices.Status {
	t.Helper()
	return l.waitStatus(t, "up", func(s devices.Status) bool { return s.Up })
}

// next returns the lane's next scan event.
func (l *lane) next(t *testing.T) devices.ScanEvent {
	t.Helper()
	select {
	case ev, ok := <-l.sub.C:
		if !ok {
			t.Fatal("subscription closed")
		}
		return ev
	case <-time.After(waitLimit):
		t.Fatalf("no scan event within %v; status %+v", waitLimit, l.reader.Status())
	}
	return devices.ScanEvent{}
}
