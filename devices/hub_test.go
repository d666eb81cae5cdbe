package devices_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"storegate/devices"
)

const testToken = "SGP1:6BFOXN*TS0BI$ZD-CH1KSL:+SGP9%R4ZV%8DOTPEXP"

// clock is a settable time source for a ScanHub.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newHub() (*devices.ScanHub, *clock) {
	c := &clock{now: t0}
	h := devices.NewScanHub()
	h.Now = c.Now
	return h, c
}

func tokenScan(text string) devices.Scan {
	return devices.Classify([]byte("]Q1" + text))
}

func TestScanHub_Take(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		h, _ := newHub()
		ev := h.Publish("1", tokenScan(testToken))
		got, err := h.Take("1", ev.ScanID)
		if err != nil || got != testToken {
			t.Fatalf("got %q, %v; want %q, nil", got, err, testToken)
		}
	})
	t.Run("PaymentCode", func(t *testing.T) {
		h, _ := newHub()
		ev := h.Publish("1", devices.Classify([]byte("12345678901234567890")))
		if got, err := h.Take("1", ev.ScanID); err != nil || got != "12345678901234567890" {
			t.Fatalf("got %q, %v; want the code, nil", got, err)
		}
	})
	t.Run("SingleUse", func(t *testing.T) {
		h, _ := newHub()
		ev := h.Publish("1", tokenScan(testToken))
		if _, err := h.Take("1", ev.ScanID); err != nil {
			t.Fatalf("first Take: %v", err)
		}
		if _, err := h.Take("1", ev.ScanID); !errors.Is(err, devices.ErrScanNotFound) {
			t.Errorf("second Take: got %v, want ErrScanNotFound", err)
		}
	})
	t.Run("ErrWrongLane", func(t *testing.T) {
		h, _ := newHub()
		ev := h.Publish("1", tokenScan(testToken))
		if got, err := h.Take("2", ev.ScanID); !errors.Is(err, devices.ErrScanNotFound) || got != "" {
			t.Errorf("Take on lane 2: got %q, %v; want ErrScanNotFound", got, err)
		}
		// The other lane's attempt must not burn the scan.
		if got, err := h.Take("1", ev.ScanID); err != nil || got != testToken {
			t.Errorf("Take on lane 1 after: got %q, %v; want the token", got, err)
		}
	})
	t.Run("ErrUnknownID", func(t *testing.T) {
		h, _ := newHub()
		h.Publish("1", tokenScan(testToken))
		if _, err := h.Take("1", "0123456789abcdef"); !errors.Is(err, devices.ErrScanNotFound) {
			t.Errorf("got %v, want ErrScanNotFound", err)
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		h, c := newHub()
		ev := h.Publish("1", tokenScan(testToken))
		if want := t0.Add(devices.DefaultScanTTL); !ev.ExpiresAt.Equal(want) {
			t.Errorf("ExpiresAt: got %v, want %v", ev.ExpiresAt, want)
		}
		c.Advance(devices.DefaultScanTTL)
		if got, err := h.Take("1", ev.ScanID); !errors.Is(err, devices.ErrScanExpired) || got != "" {
			t.Errorf("got %q, %v; want ErrScanExpired", got, err)
		}
	})
	t.Run("JustBeforeExpiry", func(t *testing.T) {
		h, c := newHub()
		ev := h.Publish("1", tokenScan(testToken))
		c.Advance(devices.DefaultScanTTL - time.Millisecond)
		if _, err := h.Take("1", ev.ScanID); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
	t.Run("ExpiredPurged", func(t *testing.T) {
		h, c := newHub()
		h.TTL = time.Minute
		ev := h.Publish("1", tokenScan(testToken))
		if got := h.Held("1"); got != 1 {
			t.Fatalf("held: got %d, want 1", got)
		}
		c.Advance(time.Minute)
		if got := h.Held("1"); got != 0 {
			t.Errorf("held after expiry: got %d, want 0", got)
		}
		// Purged, yet still reported as expired rather than unknown.
		if _, err := h.Take("1", ev.ScanID); !errors.Is(err, devices.ErrScanExpired) {
			t.Errorf("Take after purge: got %v, want ErrScanExpired", err)
		}
		// Much later even the memory of it is gone.
		c.Advance(time.Hour)
		if _, err := h.Take("1", ev.ScanID); !errors.Is(err, devices.ErrScanNotFound) {
			t.Errorf("Take an hour later: got %v, want ErrScanNotFound", err)
		}
	})
}

func TestScanHub_Eviction(t *testing.T) {
	h, _ := newHub()
	h.MaxHeldPerLane = 3
	var ids []string
	for i := range 5 {
		ev := h.Publish("1", tokenScan(testToken+strings.Repeat("A", i)))
		ids = append(ids, ev.ScanID)
	}
	h.Publish("2", tokenScan(testToken))
	if got := h.Held("1"); got != 3 {
		t.Errorf("held on lane 1: got %d, want 3", got)
	}
	if got := h.Held("2"); got != 1 {
		t.Errorf("held on lane 2: got %d, want 1 (bounds are per lane)", got)
	}
	for i, id := range ids {
		_, err := h.Take("1", id)
		if i < 2 && !errors.Is(err, devices.ErrScanExpired) {
			t.Errorf("scan %d (evicted): got %v, want ErrScanExpired", i, err)
		}
		if i >= 2 && err != nil {
			t.Errorf("scan %d (newest three): got %v, want nil", i, err)
		}
	}
}

func TestScanHub_Publish(t *testing.T) {
	t.Run("TokenMasked", func(t *testing.T) {
		h, _ := newHub()
		ev := h.Publish("1", tokenScan(testToken))
		if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(ev.ScanID) {
			t.Errorf("ScanID: got %q, want 16 hex digits", ev.ScanID)
		}
		if want := devices.Fingerprint(testToken); ev.Fingerprint != want {
			t.Errorf("Fingerprint: got %q, want %q", ev.Fingerprint, want)
		}
		if ev.Code != "" {
			t.Errorf("Code: got %q, want empty for a credential", ev.Code)
		}
		if ev.Kind != devices.KindPaymentToken || ev.AIM != "]Q1" || ev.Lane != "1" || !ev.ScannedAt.Equal(t0) {
			t.Errorf("got %+v", ev)
		}
	})
	t.Run("CodeMasked", func(t *testing.T) {
		h, _ := newHub()
		ev := h.Publish("1", devices.Classify([]byte("12345678901234567890")))
		if ev.Fingerprint != "****7890" || ev.Code != "" || ev.ScanID == "" {
			t.Errorf("got %+v, want fingerprint ****7890, no code, a scan id", ev)
		}
	})
	t.Run("ProductNotHeld", func(t *testing.T) {
		h, _ := newHub()
		ev := h.Publish("1", devices.Classify([]byte("]E04901234567894")))
		if ev.Code != "4901234567894" || ev.ScanID != "" || ev.Fingerprint != "" || !ev.ExpiresAt.IsZero() {
			t.Errorf("got %+v, want the code in full and nothing held", ev)
		}
		if got := h.Held("1"); got != 0 {
			t.Errorf("held: got %d, want 0", got)
		}
	})
	t.Run("UnknownInFull", func(t *testing.T) {
		h, _ := newHub()
		ev := h.Publish("1", devices.Classify([]byte("4901234567890")))
		if ev.Kind != devices.KindUnknown || ev.Code != "4901234567890" || ev.Reason != devices.ReasonCheckDigit {
			t.Errorf("got %+v, want the unknown code in full with its reason", ev)
		}
	})
	t.Run("MaybeCredentialMasked", func(t *testing.T) {
		h, _ := newHub()
		for _, frame := range []string{"]C0" + testToken, "123456789012345", "SGP1:"} {
			ev := h.Publish("1", devices.Classify([]byte(frame)))
			if ev.Code != "" || ev.Fingerprint == "" || ev.ScanID != "" {
				t.Errorf("%q: got %+v, want only a fingerprint", frame, ev)
			}
		}
	})
	t.Run("UniqueIDs", func(t *testing.T) {
		h, _ := newHub()
		h.MaxHeldPerLane = 1000
		seen := map[string]bool{}
		for range 500 {
			id := h.Publish("1", tokenScan(testToken)).ScanID
			if seen[id] {
				t.Fatalf("scan id %s issued twice", id)
			}
			seen[id] = true
		}
	})
}

func TestScanHub_Watch(t *testing.T) {
	t.Run("LaneOnly", func(t *testing.T) {
		h, _ := newHub()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		sub := h.Watch(ctx, "1")
		h.Publish("2", devices.Classify([]byte("49123456")))
		h.Publish("1", devices.Classify([]byte("4901234567894")))
		select {
		case ev := <-sub.C:
			if ev.Lane != "1" || ev.Code != "4901234567894" {
				t.Errorf("got %+v, want lane 1's product", ev)
			}
		default:
			t.Fatal("no event for lane 1")
		}
		select {
		case ev := <-sub.C:
			t.Errorf("got another event %+v, want none", ev)
		default:
		}
	})
	t.Run("FanOut", func(t *testing.T) {
		h, _ := newHub()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a, b := h.Watch(ctx, "1"), h.Watch(ctx, "1")
		want := h.Publish("1", tokenScan(testToken))
		for i, sub := range []*devices.Subscription{a, b} {
			if got := <-sub.C; got != want {
				t.Errorf("subscriber %d: got %+v, want %+v", i, got, want)
			}
		}
	})
	t.Run("ClosedOnCancel", func(t *testing.T) {
		h, _ := newHub()
		ctx, cancel := context.WithCancel(context.Background())
		sub := h.Watch(ctx, "1")
		cancel()
		select {
		case _, ok := <-sub.C:
			if ok {
				t.Error("got an event, want the channel closed")
			}
		case <-time.After(waitLimit):
			t.Fatal("channel not closed after cancel")
		}
		// Publishing after the subscriber left must not panic or block.
		h.Publish("1", tokenScan(testToken))
	})
	t.Run("SlowSubscriber", func(t *testing.T) {
		h, _ := newHub()
		h.WatchBuffer = 2
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		slow := h.Watch(ctx, "1")
		fast := h.Watch(ctx, "1")

		published := make(chan int)
		received := 0
		go func() {
			for i := range 10 {
				h.Publish("1", devices.Classify([]byte("49123456")))
				published <- i
			}
			close(published)
		}()
		for range published {
			select {
			case <-fast.C:
				received++
			case <-time.After(waitLimit):
				t.Fatal("fast subscriber got no event")
			}
		}
		if received != 10 {
			t.Errorf("fast subscriber: got %d events, want 10", received)
		}
		if got := fast.Dropped(); got != 0 {
			t.Errorf("fast subscriber dropped %d, want 0", got)
		}
		if got := slow.Dropped(); got != 8 {
			t.Errorf("slow subscriber dropped %d, want 8", got)
		}
		if got := h.Dropped(); got != 8 {
			t.Errorf("hub dropped %d, want 8", got)
		}
		if got := len(slow.C); got != 2 {
			t.Errorf("slow subscriber holds %d events, want its buffer of 2", got)
		}
	})
}
