package devices_test

import (
	"strings"
	"testing"
	"time"

	"storegate/devices"
)

func TestManager_Lanes(t *testing.T) {
	logger, _ := newLogger(t)
	hub := devices.NewScanHub()
	m := devices.NewManager(hub, logger)
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
			m.Close()
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
		st := m.Status()
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
		m.Close()
		close(done)
	}()
	select {
	case <-done:
		closed = true
	case <-time.After(waitLimit):
		t.Fatal("Close did not return")
	}
	for _, st := range m.Status() {
		if st.Up {
			t.Errorf("lane %s up after Close", st.Lane)
		}
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
