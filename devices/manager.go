package devices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"storegate/gateway"
	"storegate/internal/loop"
)

// DefaultPurgeInterval is how often an open Manager makes its hub forget
// expired credentials, so that a token does not linger in memory on a quiet
// lane until its next scan.
const DefaultPurgeInterval = 10 * time.Second

// Manager runs the Readers of all of a store's lanes and is the lanes'
// scanners as the domain sees them: it hands out held credentials
// (gateway.ScanSource), streams each lane's scans and reports the scanners'
// state (gateway.ScanFeed). Create it with NewManager, set its exported
// fields, Add the lanes, then Open; Close stops them all.
type Manager struct {
	// Hub receives every lane's scans.
	Hub *ScanHub
	// Logger is handed to each Reader Add makes; NewManager sets one that
	// discards logs.
	Logger *slog.Logger
	// Opener opens the devices of the Readers Add makes; NewManager sets
	// OpenSerial.
	Opener Opener
	// PurgeInterval is how often the hub forgets expired credentials while
	// the Manager is open; NewManager sets DefaultPurgeInterval, and zero
	// means it too.
	PurgeInterval time.Duration

	mu      sync.Mutex
	readers []*Reader
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewManager returns a Manager that publishes to hub, with the default
// settings. It opens no device until Open.
func NewManager(hub *ScanHub) *Manager {
	return &Manager{Hub: hub, Logger: slog.New(slog.DiscardHandler), Opener: OpenSerial, PurgeInterval: DefaultPurgeInterval}
}

// Add configures a lane's scanner. It returns an error for an invalid
// configuration, for a lane or device that is already added, or once the
// Manager is open.
func (m *Manager) Add(cfg ReaderConfig) (*Reader, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		return nil, errors.New("scanner manager: cannot add a lane while open")
	}
	for _, r := range m.readers {
		switch {
		case r.Config.Lane == cfg.Lane:
			return nil, fmt.Errorf("scanner manager: lane %q is already configured", cfg.Lane)
		case r.Config.Device == cfg.Device:
			return nil, fmt.Errorf("scanner manager: device %q is already used by lane %q", cfg.Device, r.Config.Lane)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m.Hub == nil {
		return nil, errors.New("scanner manager: a ScanHub is required")
	}
	r := NewReader(cfg, m.Hub)
	if m.Logger != nil {
		r.Logger = m.Logger
	}
	if m.Opener != nil {
		r.Opener = m.Opener
	}
	m.readers = append(m.readers, r)
	return r, nil
}

var (
	_ gateway.ScanSource = (*Manager)(nil)
	_ gateway.ScanFeed   = (*Manager)(nil)
)

// Open starts every lane's Reader, and the purge of expired credentials, in
// the background. A scanner that is missing or fails is reopened with backoff
// by its Reader; it never stops the daemon. Open returns an error if the
// Manager was opened before; a closed Manager is not reopened.
func (m *Manager) Open() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil {
		return errors.New("scanner manager: already opened")
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	for _, r := range m.readers {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			_ = r.Run(ctx) // Run only returns once ctx is cancelled.
		}()
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.purge(ctx)
	}()
	return nil
}

// purge forgets expired credentials every PurgeInterval until ctx ends.
func (m *Manager) purge(ctx context.Context) {
	interval := m.PurgeInterval
	if interval <= 0 {
		interval = DefaultPurgeInterval
	}
	loop.Every(ctx, interval, func(context.Context) { m.Hub.Purge() })
}

// Close stops every Reader and waits for them to release their devices,
// until ctx ends: then it returns ctx's error and they finish on their own.
// It is safe to call more than once and before Open.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	cancel := m.cancel
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("scanner manager: scanners still closing: %w", ctx.Err())
	}
}

// Scanners returns every lane scanner's state in the order the lanes were
// added (Reader.Status has the drops by reason besides).
func (m *Manager) Scanners() []gateway.ScannerStatus {
	m.mu.Lock()
	readers := append([]*Reader(nil), m.readers...)
	m.mu.Unlock()
	out := make([]gateway.ScannerStatus, 0, len(readers))
	for _, r := range readers {
		out = append(out, r.Status().ScannerStatus)
	}
	return out
}

// configured reports whether lane has a scanner.
func (m *Manager) configured(lane string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.readers {
		if r.Config.Lane == lane {
			return true
		}
	}
	return false
}

// TakeScan hands out a held credential once (ScanHub.Take). An unknown,
// used, expired or other lane's scan id is an ENOTFOUND error that says
// which, without the credential.
func (m *Manager) TakeScan(lane, scanID string) (string, error) {
	cred, err := m.Hub.Take(lane, scanID)
	switch {
	case errors.Is(err, ErrScanExpired):
		return "", gateway.Errorf(gateway.ENOTFOUND, "scan %s has expired; scan the code again", scanID)
	case errors.Is(err, ErrScanNotFound):
		return "", gateway.Errorf(gateway.ENOTFOUND, "no scan %s on lane %s (unknown, used, or read at another lane)", scanID, lane)
	case err != nil:
		return "", err
	}
	return cred, nil
}

var scanKinds = map[Kind]gateway.ScanKind{
	KindUnknown:      gateway.ScanUnknown,
	KindPaymentToken: gateway.ScanPaymentToken,
	KindPaymentCode:  gateway.ScanPaymentCode,
	KindProduct:      gateway.ScanProduct,
}

// WatchScans streams a configured lane's scans until ctx ends, then closes
// the channel (ScanHub.Watch: a watcher that falls behind loses events and
// never slows the scanner). A lane without a scanner is ENOTFOUND.
func (m *Manager) WatchScans(ctx context.Context, lane string) (<-chan gateway.ScanEvent, error) {
	if !m.configured(lane) {
		return nil, gateway.Errorf(gateway.ENOTFOUND, "lane %s has no scanner configured", lane)
	}
	sub := m.Hub.Watch(ctx, lane)
	out := make(chan gateway.ScanEvent)
	go func() {
		defer close(out)
		for ev := range sub.C {
			select {
			case out <- gateway.ScanEvent{
				Lane: ev.Lane, Kind: scanKinds[ev.Kind], ScanID: ev.ScanID, Code: ev.Code,
				Fingerprint: ev.Fingerprint, Symbology: string(ev.AIM), ScannedAt: ev.ScannedAt, ExpiresAt: ev.ExpiresAt,
			}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
