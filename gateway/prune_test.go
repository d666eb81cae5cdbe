package gateway_test

import (
	"context"
	"testing"
	"time"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
)

// pruneFixture is a harness holding one approved sale of tobacco under a
// 24-hour account window: one spent token id and one counter bucket.
func pruneFixture(t *testing.T) (*harness, []byte) {
	t.Helper()
	h := newHarness(t)
	h.applyPolicy(t, policyDoc(1, &documentv1.Rule{Id: "tobacco", Categories: []string{"tobacco"}, MaxQuantityPerAccount: 20, AccountWindowSeconds: 86400}))
	tok, id := h.mintAt(t, h.now, 2*time.Minute)
	res, err := h.gw.Authorize(context.Background(), cart("1", "t1", tok, cigarettes(1)))
	if err != nil {
		t.Fatal(err)
	}
	wantApproved(t, res)
	return h, id
}

func TestPruner_Prune(t *testing.T) {
	ctx := context.Background()
	h, id := pruneFixture(t)
	p := gateway.NewPruner(h.gw)

	t.Run("KeepsWhatCounts", func(t *testing.T) {
		// Past the token's expiry and skew, inside the margin and the window.
		h.now = h.now.Add(30 * time.Minute)
		if spent, buckets, err := p.Prune(ctx); err != nil || spent != 0 || buckets != 0 {
			t.Fatalf("Prune = %d spent, %d buckets, %v; want 0, 0: the margin and the window still hold them", spent, buckets, err)
		}
		if !h.spent(t, id) {
			t.Fatal("the spent id was forgotten inside the margin")
		}
	})
	t.Run("ForgetsThePast", func(t *testing.T) {
		h.now = h.now.Add(24*time.Hour + 2*gateway.CounterBucket)
		if spent, buckets, err := p.Prune(ctx); err != nil || spent != 1 || buckets != 1 {
			t.Fatalf("Prune = %d spent, %d buckets, %v; want 1, 1", spent, buckets, err)
		}
		if h.spent(t, id) {
			t.Fatal("the spent id is still held after Prune")
		}
		if spent, buckets, err := p.Prune(ctx); err != nil || spent != 0 || buckets != 0 {
			t.Fatalf("second Prune = %d spent, %d buckets, %v; want nothing left", spent, buckets, err)
		}
	})
}

// Run prunes on its own every Interval and returns once its context ends.
func TestPruner_Run(t *testing.T) {
	h, id := pruneFixture(t)
	h.now = h.now.Add(2 * time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := gateway.NewPruner(h.gw)
		p.Interval = time.Millisecond
		p.Run(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for h.spent(t, id) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("Run did not forget the spent id within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}
