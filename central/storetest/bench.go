package storetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"storegate/central"
	"storegate/gateway"
)

// Sizes of the intake benchmark: a store's forwarder sends up to 500
// settlements a batch; these batches are of BenchBatch, from BenchStores
// stores, over BenchAccounts accounts, and each resends the last
// BenchResent settlements of the one before (a lost answer), which dedupe
// answers as duplicates.
const (
	BenchBatch    = 200
	BenchStores   = 64
	BenchAccounts = 100_000
	BenchResent   = 20
)

// BenchmarkIntake measures settlement intake over the backend ns makes:
// batches of offline captures (each debits its account and spends its
// token id) from many stores at once, sent by 4 goroutines per CPU. It
// reports settlements booked per second.
func BenchmarkIntake(b *testing.B, ns NewStorage) {
	ctx := context.Background()
	l := MustOpenLedger(b, ns(b)())
	// The accounts are written straight into the storage, in bulk: the
	// benchmark is of intake, not of opening accounts.
	for from := 0; from < BenchAccounts; from += 5_000 {
		err := l.Storage().Update(ctx, func(tx central.Tx) error {
			accts := make([]*central.Account, 0, 5_000)
			for a := from; a < min(from+5_000, BenchAccounts); a++ {
				accts = append(accts, &central.Account{ID: fmt.Sprintf("acct-%06d", a), Currency: central.DefaultCurrency, Balance: 1 << 40, Funded: 1 << 40})
			}
			return tx.PutAccounts(accts)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	now := time.Now()
	var next atomic.Int64
	stl := func(store, i int64) gateway.Settlement {
		tok := sha256.Sum256(fmt.Appendf(nil, "bench token %d/%d", store, i))
		return gateway.Settlement{
			ID: fmt.Sprintf("stl-%03d-%09d", store, i), Kind: gateway.SettlementCapture, StoreID: fmt.Sprintf("store-%03d", store),
			Lane: "1", POSTxnID: fmt.Sprintf("txn-%09d", i), Account: fmt.Sprintf("acct-%06d", (store*7919+i*104729)%BenchAccounts),
			TokenID: tok[:gateway.TokenIDSize], Amount: 1, Currency: central.DefaultCurrency, Mode: gateway.ModeOffline, CreatedAt: now,
		}
	}
	var booked atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		batch := make([]gateway.Settlement, 0, BenchBatch+BenchResent)
		for pb.Next() {
			n := next.Add(1)
			store := n % BenchStores
			first := (n / BenchStores) * BenchBatch
			batch = batch[:0]
			for i := max(first-BenchResent, 0); i < first+BenchBatch; i++ {
				batch = append(batch, stl(store, i))
			}
			acks, err := l.SubmitSettlements(ctx, fmt.Sprintf("store-%03d", store), batch, now)
			if err != nil {
				b.Error(err)
				return
			}
			for _, a := range acks {
				if a.Status == gateway.SettlementAccepted {
					booked.Add(1)
				}
			}
		}
	})
	b.ReportMetric(float64(booked.Load())/time.Since(start).Seconds(), "settlements/s")
}
