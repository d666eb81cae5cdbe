package central_test

import (
	"context"
	"testing"
	"time"

	"storegate/central"
	"storegate/central/storetest"
)

// Run gives a stale hold back on its own, and returns once its context
// ends; a young hold stands.
func TestHoldVoider_Run(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	old := f.MustApprove(t, storetest.Sale(f.Mint(t, "acct-1"), "txn-old", 3_000)).AuthorizationID
	later := f.Now.Add(20 * time.Minute)
	f.Now = later
	young := f.MustApprove(t, storetest.Sale(f.Mint(t, "acct-1"), "txn-young", 500)).AuthorizationID

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		v := central.NewHoldVoider(f.Ledger)
		v.Expiry, v.Interval, v.Now = 15*time.Minute, time.Millisecond, func() time.Time { return later }
		v.Run(ctx)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for f.MustBalance(t, "acct-1") != 9_500 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("balance %d 10s into Run, want 9500: the stale hold given back", f.MustBalance(t, "acct-1"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	f.MustAuthStatus(t, old, central.AuthVoided)
	f.MustAuthStatus(t, young, central.AuthHeld)
}
