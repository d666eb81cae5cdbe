package central_test

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"storegate/gateway"
)

// BenchmarkLedger_SubmitSettlements measures one offline capture booked
// durably by the ledger's group committer: the account debited and the
// token id spent, in a write transaction shared with whatever else is
// queued. Parallel runs 8 goroutines per CPU, like many stores' forwarders
// submitting at once.
func BenchmarkLedger_SubmitSettlements(b *testing.B) {
	const accounts = 16
	now := time.Now()
	var n atomic.Int64
	next := func() []gateway.Settlement {
		i := n.Add(1)
		tok := sha256.Sum256(fmt.Appendf(nil, "bench token %d", i))
		return []gateway.Settlement{{
			ID: fmt.Sprintf("stl-%09d", i), Kind: gateway.SettlementCapture, StoreID: "store-1",
			Lane: "lane-1", POSTxnID: fmt.Sprintf("txn-%09d", i), Account: fmt.Sprintf("acct-%02d", i%accounts),
			TokenID: tok[:gateway.TokenIDSize], Amount: 1, Currency: "JPY", Mode: gateway.ModeOffline, CreatedAt: now,
		}}
	}
	open := func(b *testing.B) func() error {
		l := MustOpenLedger(b, filepath.Join(b.TempDir(), "central.db"))
		for a := range accounts {
			if err := l.SetAccount(fmt.Sprintf("acct-%02d", a), 1<<40); err != nil {
				b.Fatal(err)
			}
		}
		return func() error {
			acks, err := l.SubmitSettlements("store-1", next(), now)
			if err == nil && (len(acks) != 1 || acks[0].Status != gateway.SettlementAccepted) {
				err = fmt.Errorf("acks: got %+v, want one accepted", acks)
			}
			return err
		}
	}

	b.Run("Serial", func(b *testing.B) {
		submit := open(b)
		for b.Loop() {
			if err := submit(); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("Parallel", func(b *testing.B) {
		submit := open(b)
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := submit(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
