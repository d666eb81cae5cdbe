package storecache_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"storegate/gateway"
	"storegate/storecache"
)

// BenchmarkCommitDecision measures one approval (spent token, idempotency
// record, settlement, audit record: about 1.3 KB of JSON) made durable.
// Parallel runs 8 goroutines per CPU, like many lanes deciding at once.
func BenchmarkCommitDecision(b *testing.B) {
	ctx := context.Background()
	var n atomic.Int64
	next := func() *gateway.DecisionCommit {
		i := int(n.Add(1))
		return newCommit(fmt.Sprintf("lane-%02d", i%16), fmt.Sprintf("txn-%09d", i), tokenID(i), gateway.ModeOffline, 1280)
	}
	report := func(b *testing.B, s *storecache.Store) {
		st := s.Stats()
		if st.Transactions > 0 {
			b.ReportMetric(float64(st.Decisions)/float64(st.Transactions), "decisions/tx")
		}
	}

	b.Run("Serial", func(b *testing.B) {
		s := MustOpenStore(b)
		for b.Loop() {
			if err := s.CommitDecision(ctx, next()); err != nil {
				b.Fatal(err)
			}
		}
		report(b, s)
	})

	b.Run("Parallel", func(b *testing.B) {
		s := MustOpenStore(b)
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.CommitDecision(ctx, next()); err != nil {
					b.Error(err)
					return
				}
			}
		})
		report(b, s)
	})

	// bbolt's own DB.Batch, with its default 10ms MaxBatchDelay, for
	// comparison. Serially it would wait out the delay on every commit.
	b.Run("BoltBatchParallel", func(b *testing.B) {
		s := MustOpenStore(b)
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.CommitDecisionBoltBatch(next()); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
