package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"storegate/devices"
	"storegate/gateway"
)

// scanners wires the lanes' serial scanners (package devices) to the gateway:
// it implements gateway.ScanSource for Authorize-by-scan-id and
// gateway.ScanFeed for WatchScans and status.
type scanners struct {
	hub   *devices.ScanHub
	mgr   *devices.Manager
	lanes map[string]bool
}

var (
	_ gateway.ScanSource = (*scanners)(nil)
	_ gateway.ScanFeed   = (*scanners)(nil)
)

// newScanners configures one reader per lane; Open starts them.
func newScanners(lanes []LaneConfig, ttl time.Duration, logger *slog.Logger) (*scanners, error) {
	hub := devices.NewScanHub()
	hub.TTL = ttl
	s := &scanners{hub: hub, mgr: devices.NewManager(hub, logger), lanes: map[string]bool{}}
	for i, l := range lanes {
		term, err := devices.ParseTerminator(l.Terminator)
		if err != nil {
			return nil, fmt.Errorf("config: lanes[%d].terminator: %v", i, err)
		}
		if _, err := s.mgr.Add(devices.ReaderConfig{Lane: l.Lane, Device: l.Device, Baud: l.Baud, Terminator: term, MaxFrame: l.MaxFrame}); err != nil {
			return nil, fmt.Errorf("config: lanes[%d]: %w", i, err)
		}
		s.lanes[l.Lane] = true
	}
	return s, nil
}

// TakeScan hands out a held credential once.
func (s *scanners) TakeScan(lane, scanID string) (string, error) {
	cred, err := s.hub.Take(lane, scanID)
	switch {
	case errors.Is(err, devices.ErrScanExpired):
		return "", gateway.Errorf(gateway.ENOTFOUND, "scan %s has expired; scan the code again", scanID)
	case errors.Is(err, devices.ErrScanNotFound):
		return "", gateway.Errorf(gateway.ENOTFOUND, "no scan %s on lane %s (unknown, used, or read at another lane)", scanID, lane)
	case err != nil:
		return "", err
	}
	return cred, nil
}

var scanKinds = map[devices.Kind]gateway.ScanKind{
	devices.KindUnknown:      gateway.ScanUnknown,
	devices.KindPaymentToken: gateway.ScanPaymentToken,
	devices.KindPaymentCode:  gateway.ScanPaymentCode,
	devices.KindProduct:      gateway.ScanProduct,
}

// WatchScans streams a configured lane's scans.
func (s *scanners) WatchScans(ctx context.Context, lane string) (<-chan gateway.ScanEvent, error) {
	if !s.lanes[lane] {
		return nil, gateway.Errorf(gateway.ENOTFOUND, "lane %s has no scanner configured", lane)
	}
	sub := s.hub.Watch(ctx, lane)
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

// Scanners reports each lane scanner's state.
func (s *scanners) Scanners() []gateway.ScannerStatus {
	var out []gateway.ScannerStatus
	for _, st := range s.mgr.Status() {
		out = append(out, gateway.ScannerStatus{Lane: st.Lane, Device: st.Device, Up: st.Up, Since: st.Since, Frames: st.Frames, Dropped: st.Dropped, LastError: st.LastError})
	}
	return out
}

// purgeLoop forgets expired credentials promptly instead of at the lane's
// next scan, so a token does not linger in memory.
func (s *scanners) purgeLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.hub.Purge()
		}
	}
}
