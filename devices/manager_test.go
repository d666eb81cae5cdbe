package devices_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"storegate/devices"
	"storegate/gateway"
)

func TestManager_Lanes(t *testing.T) {
	logger, _ := newLogger(t)
	hub := devices.NewScanHub()
	m := devices.NewManager(hub)
	m.Logger = logger
	a, b := newScanner(t), newScanner(t)
	if _, err := m.Add(devices.ReaderConfig{Lane: "1", Device: a.link}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Add(devices.ReaderConfig{Lane: "2", Device: b.link, Terminator: devices.TerminatorCRLF}); err != nil {
		t.Fatal(err)
	}
	t.Run("ErrDuplicate", func(t *testing.T) {
		if _, err := m.Add(devices.ReaderConfig{Lane: "1", Device: "/dev/ttyACM9"}); err == nil || !strings.Contains(err.Error(), "lane") {
			t.Errorf("duplicate lane: got %v", err)
		}
		if _, err := m.Add(devices.ReaderConfig{Lane: "3", Device: a.link}); err == nil || !strings.Contains(err.Error(), "device") {
			t.Errorf("duplicate device: got %v", err)
		}
	})

	ctx := t.Context()
	sub1, sub2 := hub.Watch(ctx, "1"), hub.Watch(ctx, "2")
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			m.Close(context.Background())
		}
	})
	if err := m.Open(); err == nil {
		t.Error("second Open: got nil, want an error")
	}
	if _, err := m.Add(devices.ReaderConfig{Lane: "4", Device: "/dev/ttyACM4"}); err == nil {
		t.Error("Add while open: got nil, want an error")
	}

	deadline := time.Now().Add(waitLimit)
	for {
		st := m.Scanners()
		if len(st) == 2 && st[0].Up && st[1].Up {
			if st[0].Lane != "1" || st[1].Lane != "2" || st[1].Device != b.link {
				t.Errorf("status: got %+v, want lanes 1 and 2 in order", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lanes never up: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}

	a.send("49123456\r")
	b.send("4901234567894\r\n")
	for _, tt := range []struct {
		sub  *devices.Subscription
		lane string
		code string
	}{{sub1, "1", "49123456"}, {sub2, "2", "4901234567894"}} {
		select {
		case ev := <-tt.sub.C:
			if ev.Lane != tt.lane || ev.Code != tt.code {
				t.Errorf("lane %s: got %+v, want %s", tt.lane, ev, tt.code)
			}
		case <-time.After(waitLimit):
			t.Fatalf("lane %s: no event", tt.lane)
		}
	}

	done := make(chan struct{})
	go func() {
		m.Close(context.Background())
		close(done)
	}()
	select {
	case <-done:
		closed = true
	case <-time.After(waitLimit):
		t.Fatal("Close did not return")
	}
	for _, st := range m.Scanners() {
		if st.Up {
			t.Errorf("lane %s up after Close", st.Lane)
		}
	}
	if err := m.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// The Manager is the lanes' scanners as the gateway sees them: a watcher of
// lane 1 sees a token only as a scan id and a fingerprint, the scan id pays
// once, and a lane without a scanner is ENOTFOUND.
func TestManager_ScanFeed(t *testing.T) {
	logger, _ := newLogger(t)
	hub := devices.NewScanHub()
	m := devices.NewManager(hub)
	m.Logger = logger
	a := newScanner(t)
	if _, err := m.Add(devices.ReaderConfig{Lane: "1", Device: a.link}); err != nil {
		t.Fatal(err)
	}
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	events, err := m.WatchScans(t.Context(), "1")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for st := m.Scanners(); len(st) != 1 || !st[0].Up; st = m.Scanners() {
		if time.Now().After(deadline) {
			t.Fatalf("lane 1 never up: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}

	a.send("]Q1" + testToken + "\r")
	var ev gateway.ScanEvent
	select {
	case ev = <-events:
	case <-time.After(waitLimit):
		t.Fatal("no scan event")
	}
	want := gateway.ScanEvent{Lane: "1", Kind: gateway.ScanPaymentToken, ScanID: ev.ScanID, Fingerprint: devices.Fingerprint(testToken),
		Symbology: "]Q1", ScannedAt: ev.ScannedAt, ExpiresAt: ev.ExpiresAt}
	if ev != want || ev.ScanID == "" || ev.ExpiresAt.IsZero() {
		t.Fatalf("event: got %+v, want %+v with a scan id and an expiry", ev, want)
	}
	if got, err := m.TakeScan("1", ev.ScanID); err != nil || got != testToken {
		t.Fatalf("TakeScan: got %q, %v; want the token", got, err)
	}
	t.Run("ErrTakenTwice", func(t *testing.T) {
		if _, err := m.TakeScan("1", ev.ScanID); gateway.ErrorCode(err) != gateway.ENOTFOUND || strings.Contains(err.Error(), testToken) {
			t.Fatalf("second TakeScan: %v, want ENOTFOUND without the token", err)
		}
	})
	t.Run("ErrUnconfiguredLane", func(t *testing.T) {
		if _, err := m.WatchScans(t.Context(), "9"); gateway.ErrorCode(err) != gateway.ENOTFOUND {
			t.Fatalf("WatchScans lane 9: %v, want ENOTFOUND", err)
		}
	})
	t.Run("StatusCountsFrames", func(t *testing.T) {
		if st := m.Scanners(); len(st) != 1 || st[0].Lane != "1" || st[0].Device != a.link || st[0].Frames != 1 {
			t.Fatalf("Scanners: got %+v, want lane 1 on %s with 1 frame", st, a.link)
		}
	})
}

// An open Manager purges its hub on its own, so that an expired credential
// does not wait in memory for the lane's next scan; Close stops it.
func TestManager_Purges(t *testing.T) {
	var reads atomic.Int64
	hub := devices.NewScanHub()
	// With no lane configured, only the purge reads the hub's clock.
	hub.Now = func() time.Time { reads.Add(1); return time.Now() }
	m := devices.NewManager(hub)
	m.PurgeInterval = time.Millisecond
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for reads.Load() < 3 {
		if time.Now().After(deadline) {
			m.Close(context.Background())
			t.Fatalf("the hub was purged %d times in %s, want 3", reads.Load(), waitLimit)
		}
		time.Sleep(time.Millisecond)
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
