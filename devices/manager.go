package devices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Manager runs the Readers of all of a store's lanes and reports their Status.
// Add the lanes, then Open; Close stops them all.
type Manager struct {
	// Hub receives every lane's scans.
	Hub *ScanHub
	// Logger is handed to each Reader; nil discards logs.
	Logger *slog.Logger
	// Opener opens the devices; nil means OpenSerial.
	Opener Opener

	mu      sync.Mutex
	readers []*Reader
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewManager returns a Manager that publishes to hub and logs to logger.
func NewManager(hub *ScanHub, logger *slog.Logger) *Manager {
	return &Manager{Hub: hub, Logger: logger}
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
	r, err := NewReader(cfg, m.Hub, m.Logger)
	if err != nil {
		return nil, err
	}
	if m.Opener != nil {
		r.Opener = m.Opener
	}
	m.readers = append(m.readers, r)
	return r, nil
}

// Open starts every lane's Reader in the background. It returns an error if
// the Manager was opened before; a closed Manager is not reopened.
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
	return nil
}

// Close stops every Reader and waits for them to release their devices. It is
// safe to call more than once and before Open.
func (m *Manager) Close() error {
	m.mu.Lock()
	cancel := m.cancel
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	m.wg.Wait()
	return nil
}

// Status returns every lane's Status in the order the lanes were added.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	readers := append([]*Reader(nil), m.readers...)
	m.mu.Unlock()
	out := make([]Status, 0, len(readers))
	for _, r := range readers {
		out = append(out, r.Status())
	}
	return out
}
