package gateway_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"storegate/gateway"
)

// offlineSales approves n offline sales of amount on lane 1, each for its
// own account, with central unreachable, and brings central back; it returns
// the settlement ids in order.
func offlineSales(t *testing.T, h *harness, n int, amount int64) []string {
	t.Helper()
	h.central.set(func(c *fakeCentral) { c.down = true })
	var ids []string
	for i := range n {
		res := h.authorize(t, offlineSale("1", fmt.Sprint("off-", i), h.mint(t, fmt.Sprint("acct-", i)), amount, "food"))
		wantOfflineApproval(t, res)
		ids = append(ids, res.Decision.SettlementID)
	}
	h.central.set(func(c *fakeCentral) { c.down = false })
	return ids
}

func TestForwarder_PartialAcknowledgement(t *testing.T) {
	ctx := context.Background()
	h := offlineHarness(t, caps)
	ids := offlineSales(t, h, 4, 1000)
	h.central.set(func(c *fakeCentral) { c.holdBack = map[string]bool{ids[1]: true, ids[3]: true} })
	f := gateway.NewForwarder("store-0001", h.store, h.central)

	n, err := f.Flush(ctx)
	if err != nil || n != 2 {
		t.Fatalf("flush = %d, %v; want 2 acknowledged", n, err)
	}
	pending, _ := h.store.PendingSettlements(ctx, 10)
	if len(pending) != 2 || pending[0].ID != ids[1] || pending[1].ID != ids[3] {
		t.Fatalf("pending = %v, want the two unacknowledged, in order", pending)
	}
	if got := h.exposure(t); got != 2000 {
		t.Errorf("exposure = %d, want 2000: only acknowledged sales release theirs", got)
	}
	if total, _ := h.store.OfflineTotal(ctx, "acct-0"); total != 0 {
		t.Errorf("acct-0 offline total = %d after its ack, want 0", total)
	}
	if total, _ := h.store.OfflineTotal(ctx, "acct-1"); total != 1000 {
		t.Errorf("acct-1 offline total = %d before its ack, want 1000", total)
	}

	h.central.set(func(c *fakeCentral) { c.holdBack = nil })
	if n, err := f.Flush(ctx); err != nil || n != 2 {
		t.Fatalf("second flush = %d, %v; want 2", n, err)
	}
	if got := h.exposure(t); got != 0 {
		t.Errorf("exposure = %d, want 0", got)
	}
	h.central.mu.Lock()
	defer h.central.mu.Unlock()
	var got []string
	for _, s := range h.central.got {
		got = append(got, s.ID)
	}
	want := []string{ids[0], ids[2], ids[1], ids[3]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("central booked %v, want %v: each exactly once", got, want)
	}
}

func TestForwarder_RefusedKeptDisputed(t *testing.T) {
	ctx := context.Background()
	h := offlineHarness(t, caps)
	ids := offlineSales(t, h, 2, 1500)
	h.central.set(func(c *fakeCentral) { c.refuse = map[string]bool{ids[0]: true} })
	f := gateway.NewForwarder("store-0001", h.store, h.central)
	if n, err := f.Flush(ctx); err != nil || n != 2 {
		t.Fatalf("flush = %d, %v; want 2 acknowledged", n, err)
	}

	disputed, err := h.store.DisputedSettlements(ctx, 10)
	if err != nil || len(disputed) != 1 {
		t.Fatalf("disputed = %v, %v; want the refused capture", disputed, err)
	}
	d := disputed[0]
	if d.Settlement.ID != ids[0] || d.Settlement.Amount != 1500 || d.Settlement.Mode != gateway.ModeOffline || d.Message != "insufficient funds" || d.RefusedAt.IsZero() {
		t.Errorf("disputed = %+v, want the offline capture with central's reason", d)
	}
	st, err := h.gw.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Outbox.Disputed != 1 || st.Outbox.Depth != 0 || st.Outbox.OfflineExposure != 0 {
		t.Errorf("status outbox = %+v, want 1 disputed, nothing waiting, exposure released", st.Outbox)
	}
	// Not sent again: it waits for a person, not for central.
	if n, err := f.Flush(ctx); err != nil || n != 0 {
		t.Errorf("flush after the refusal = %d, %v; want nothing sent", n, err)
	}
	if again, _ := h.store.DisputedSettlements(ctx, 10); len(again) != 1 {
		t.Errorf("disputed after another flush = %v, want it kept", again)
	}
}

// recordingCentral records when each settlement batch arrives and how big
// it is, and accepts everything.
type recordingCentral struct {
	*fakeCentral
	mu      sync.Mutex
	batches []int
	at      []time.Time
	arrived chan struct{}
}

func (c *recordingCentral) SubmitSettlements(ctx context.Context, storeID string, batch []gateway.Settlement) ([]gateway.SettlementAck, error) {
	c.mu.Lock()
	c.batches = append(c.batches, len(batch))
	c.at = append(c.at, time.Now())
	c.mu.Unlock()
	acks, err := c.fakeCentral.SubmitSettlements(ctx, storeID, batch)
	c.arrived <- struct{}{}
	return acks, err
}

// A batch goes when it is full, at once, or BatchWait after its first
// settlement, whichever comes first; and it never holds more than Batch.
func TestForwarder_BatchBounds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	h := newHarness(t)
	central := &recordingCentral{fakeCentral: h.central, arrived: make(chan struct{}, 100)}
	const wait = time.Second
	f := gateway.NewForwarder("store-0001", h.store, central)
	f.Batch, f.BatchWait, f.Interval = 3, wait, time.Hour
	h.gw.Committed = f.Notify
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	arrival := func() time.Time {
		t.Helper()
		select {
		case <-central.arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("no batch reached central")
		}
		central.mu.Lock()
		defer central.mu.Unlock()
		return central.at[len(central.at)-1]
	}
	// Run flushes once at start, with nothing queued.
	time.Sleep(50 * time.Millisecond)
	for len(central.arrived) > 0 {
		<-central.arrived
	}

	t.Run("OneWaitsForBatchWait", func(t *testing.T) {
		start := time.Now()
		h.authorize(t, basket("1", "one", h.mint(t, "acct-0001")))
		if took := arrival().Sub(start); took < wait-50*time.Millisecond {
			t.Errorf("a lone settlement went after %s, want it held for about BatchWait (%s)", took, wait)
		}
	})
	t.Run("FullGoesAtOnce", func(t *testing.T) {
		start := time.Now()
		for i := range 3 {
			h.authorize(t, basket("1", fmt.Sprint("full-", i), h.mint(t, "acct-0001")))
		}
		if took := arrival().Sub(start); took > wait/2 {
			t.Errorf("a full batch went after %s, want it sent at once", took)
		}
	})
	t.Run("NeverOverBatch", func(t *testing.T) {
		for i := range 7 {
			h.authorize(t, basket("2", fmt.Sprint("many-", i), h.mint(t, "acct-0001")))
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, _ := h.store.OutboxStats(ctx)
			if st.Depth == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("outbox not drained: %+v", st)
			}
			time.Sleep(10 * time.Millisecond)
		}
		central.mu.Lock()
		defer central.mu.Unlock()
		for i, n := range central.batches {
			if n > 3 {
				t.Errorf("batch %d held %d settlements, over Batch 3", i, n)
			}
		}
	})
}
