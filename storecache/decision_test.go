package storecache_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"storegate/gateway"
	"storegate/storecache"
)

func TestStore_CommitDecision(t *testing.T) {
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		s := MustOpenStore(t)
		c := newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOnline, 1200)
		mustCommit(t, s, c)
		if c.Settlement.Seq != 1 {
			t.Errorf("Settlement.Seq: got %d, want 1", c.Settlement.Seq)
		}
		d, err := s.LookupDecision(ctx, c.Key)
		if err != nil {
			t.Fatal(err)
		}
		if d == nil || d.Decision != c.Stored.Decision || d.Digest != c.Stored.Digest || d.Reversal != nil {
			t.Errorf("LookupDecision: got %+v, want %+v", d, c.Stored)
		}
		if spent, err := s.TokenSpent(ctx, tokenID(1)); err != nil || !spent {
			t.Errorf("TokenSpent: got %v, %v, want true", spent, err)
		}
		pending, err := s.PendingSettlements(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 1 || pending[0].ID != c.Settlement.ID || pending[0].Seq != 1 || pending[0].Amount != 1200 {
			t.Errorf("PendingSettlements: got %+v, want %s with seq 1", pending, c.Settlement.ID)
		}
		var got []gateway.AuditRecord
		chain := gateway.AuditChain{}
		err = s.ScanAudit(ctx, 1, func(seq uint64, raw []byte) error {
			rec, err := chain.Add(raw)
			if err != nil {
				return err
			}
			got = append(got, *rec)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Seq != 1 || got[0].AuditEntry != c.Audit || got[0].Prev != strings.Repeat("0", 64) {
			t.Errorf("audit: got %+v, want record 1 of %+v after the genesis hash", got, c.Audit)
		}
	})

	t.Run("Decline", func(t *testing.T) {
		s := MustOpenStore(t)
		c := newDecline("lane-1", "txn-1")
		mustCommit(t, s, c)
		if d, _ := s.LookupDecision(ctx, c.Key); d == nil || d.Decision.Approved {
			t.Errorf("LookupDecision: got %+v, want the decline", d)
		}
		if st := outboxStats(t, s); st.Depth != 0 {
			t.Errorf("outbox depth after a decline: got %d, want 0", st.Depth)
		}
		if n := auditCount(t, s); n != 1 {
			t.Errorf("audit records: got %d, want 1", n)
		}
	})

	t.Run("Absent", func(t *testing.T) {
		s := MustOpenStore(t)
		if d, err := s.LookupDecision(ctx, gateway.IdempotencyKey{Lane: "lane-1", POSTxnID: "nope"}); d != nil || err != nil {
			t.Errorf("LookupDecision of an absent key: got %+v, %v, want nil, nil", d, err)
		}
		if spent, err := s.TokenSpent(ctx, tokenID(9)); spent || err != nil {
			t.Errorf("TokenSpent of an unspent id: got %v, %v, want false, nil", spent, err)
		}
	})

	t.Run("ErrTokenSpent", func(t *testing.T) {
		s := MustOpenStore(t)
		mustCommit(t, s, newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOffline, 1200))
		before := outboxStats(t, s)
		c := newCommit("lane-2", "txn-2", tokenID(1), gateway.ModeOffline, 900)
		if err := s.CommitDecision(ctx, c); err != gateway.ErrTokenSpent {
			t.Fatalf("CommitDecision with a spent token: got %v, want ErrTokenSpent", err)
		}
		if c.Settlement.Seq != 0 {
			t.Errorf("Settlement.Seq of a refused commit: got %d, want 0", c.Settlement.Seq)
		}
		if d, _ := s.LookupDecision(ctx, c.Key); d != nil {
			t.Errorf("decision of a refused commit: got %+v, want none", d)
		}
		if got := outboxStats(t, s); got != before {
			t.Errorf("outbox after a refused commit: got %+v, want %+v", got, before)
		}
		if n := auditCount(t, s); n != 1 {
			t.Errorf("audit records: got %d, want 1", n)
		}
	})

	t.Run("ErrDecisionExists", func(t *testing.T) {
		s := MustOpenStore(t)
		first := newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOnline, 1200)
		mustCommit(t, s, first)
		// A retry of the same sale with the same token: the key wins, so
		// that the caller replays the stored decision.
		for _, tok := range [][]byte{tokenID(1), tokenID(2)} {
			c := newCommit("lane-1", "txn-1", tok, gateway.ModeOnline, 999)
			c.Settlement.ID = "stl-other"
			if err := s.CommitDecision(ctx, c); err != gateway.ErrDecisionExists {
				t.Fatalf("CommitDecision of a stored key: got %v, want ErrDecisionExists", err)
			}
		}
		if spent, _ := s.TokenSpent(ctx, tokenID(2)); spent {
			t.Error("the refused commit's token id was recorded as spent")
		}
		if d, _ := s.LookupDecision(ctx, first.Key); d == nil || d.Decision.Amount != 1200 {
			t.Errorf("stored decision: got %+v, want the first (1200)", d)
		}
		if ids := settlementIDs(t, s); !equalStrings(ids, []string{first.Settlement.ID}) {
			t.Errorf("pending settlements: got %q, want only the first", ids)
		}
		if n := auditCount(t, s); n != 1 {
			t.Errorf("audit records: got %d, want 1", n)
		}
	})

	t.Run("DuplicateSettlementID", func(t *testing.T) {
		s := MustOpenStore(t)
		mustCommit(t, s, newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOnline, 1200))
		c := newCommit("lane-1", "txn-2", tokenID(2), gateway.ModeOnline, 1200)
		c.Settlement.ID = "stl-lane-1-txn-1"
		err := s.CommitDecision(ctx, c)
		wantCode(t, err, gateway.ECONFLICT)
		if d, _ := s.LookupDecision(ctx, c.Key); d != nil {
			t.Errorf("decision of a refused commit: got %+v, want none", d)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		s := MustOpenStore(t)
		short := newCommit("lane-1", "txn-1", []byte("short"), gateway.ModeOnline, 1)
		noExpiry := newCommit("lane-1", "txn-2", tokenID(2), gateway.ModeOnline, 1)
		noExpiry.TokenExpires = time.Time{}
		nul := newCommit("lane\x00x", "txn-3", tokenID(3), gateway.ModeOnline, 1)
		noStlID := newCommit("lane-1", "txn-4", tokenID(4), gateway.ModeOnline, 1)
		noStlID.Settlement.ID = ""
		for name, c := range map[string]*gateway.DecisionCommit{"ShortToken": short, "NoExpiry": noExpiry, "NUL": nul, "NoSettlementID": noStlID, "Nil": nil} {
			if err := s.CommitDecision(ctx, c); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Errorf("%s: got %v, want EINVALID", name, err)
			}
		}
		if _, err := s.TokenSpent(ctx, []byte("short")); gateway.ErrorCode(err) != gateway.EINVALID {
			t.Errorf("TokenSpent of a short id: got %v, want EINVALID", err)
		}
		if n := auditCount(t, s); n != 0 {
			t.Errorf("audit records after invalid commits: got %d, want 0", n)
		}
	})
}

func TestStore_CommitDecision_GroupCommit(t *testing.T) {
	ctx := context.Background()
	const n = 100
	s, g := MustOpenGatedStore(t)

	commits := make([]*gateway.DecisionCommit, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		commits[i] = newCommit(fmt.Sprintf("lane-%d", i%8), fmt.Sprintf("txn-%03d", i), tokenID(i), gateway.ModeOffline, int64(100+i))
		wg.Go(func() { errs[i] = s.CommitDecision(ctx, commits[i]) })
		if i == 0 {
			g.WaitEntered(t) // the committer holds commit 0; the rest queue up
		}
	}
	waitQueued(t, s, n-1)
	g.Release()
	wg.Wait()

	seqs := map[uint64]bool{}
	var exposure int64
	for i, err := range errs {
		if err != nil {
			t.Errorf("commit %d: %v", i, err)
		}
		seqs[commits[i].Settlement.Seq] = true
		exposure += commits[i].Settlement.Amount
	}
	if len(seqs) != n || seqs[0] {
		t.Errorf("settlement seqs: got %d distinct non-zero, want %d", len(seqs), n)
	}
	st := s.Stats()
	if st.Decisions != n || st.Transactions != 1 || st.LargestBatch != n {
		t.Errorf("Stats: got %d decisions in %d transactions (largest %d), want %d in 1", st.Decisions, st.Transactions, st.LargestBatch, n)
	}
	if got, err := s.VerifyAudit(ctx); err != nil || got != n {
		t.Errorf("VerifyAudit: got %d, %v, want %d, nil", got, err, n)
	}
	if got := outboxStats(t, s); got.Depth != n || got.OfflineExposure != exposure {
		t.Errorf("outbox: got %+v, want depth %d, exposure %d", got, n, exposure)
	}
}

func TestStore_CommitDecision_Concurrent(t *testing.T) {
	ctx := context.Background()
	const n = 100
	s := MustOpenStore(t)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.CommitDecision(ctx, newCommit(fmt.Sprintf("lane-%d", i%8), fmt.Sprintf("txn-%03d", i), tokenID(i), gateway.ModeOnline, 100))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("commit %d: %v", i, err)
		}
	}
	if got, err := s.VerifyAudit(ctx); err != nil || got != n {
		t.Errorf("VerifyAudit: got %d, %v, want %d, nil", got, err, n)
	}
	st := s.Stats()
	if st.Decisions != n || st.Transactions > st.Decisions {
		t.Errorf("Stats: got %d decisions in %d transactions, want %d in at most as many", st.Decisions, st.Transactions, n)
	}
	t.Logf("%d decisions in %d transactions, largest batch %d", st.Decisions, st.Transactions, st.LargestBatch)
}

func TestStore_CommitDecision_SameToken(t *testing.T) {
	ctx := context.Background()
	const n = 100

	check := func(t *testing.T, s *storecache.Store, errs []error) {
		t.Helper()
		ok, spent := 0, 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, gateway.ErrTokenSpent):
				spent++
			default:
				t.Errorf("commit %d: got %v, want nil or ErrTokenSpent", i, err)
			}
		}
		if ok != 1 || spent != n-1 {
			t.Errorf("outcomes: got %d committed and %d ErrTokenSpent, want 1 and %d", ok, spent, n-1)
		}
		if st := outboxStats(t, s); st.Depth != 1 {
			t.Errorf("outbox depth: got %d, want 1", st.Depth)
		}
		if got, err := s.VerifyAudit(ctx); err != nil || got != 1 {
			t.Errorf("VerifyAudit: got %d, %v, want 1, nil", got, err)
		}
		if st := s.Stats(); st.Decisions != 1 || st.Rejected != n-1 {
			t.Errorf("Stats: got %d decisions, %d rejected, want 1 and %d", st.Decisions, st.Rejected, n-1)
		}
	}
	commit := func(s *storecache.Store, i int) error {
		return s.CommitDecision(ctx, newCommit(fmt.Sprintf("lane-%d", i%8), fmt.Sprintf("txn-%03d", i), tokenID(7), gateway.ModeOffline, 500))
	}

	t.Run("Racing", func(t *testing.T) {
		s := MustOpenStore(t)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = commit(s, i) })
		}
		wg.Wait()
		check(t, s, errs)
	})

	t.Run("OneBatch", func(t *testing.T) {
		s, g := MustOpenGatedStore(t)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = commit(s, i) })
			if i == 0 {
				g.WaitEntered(t)
			}
		}
		waitQueued(t, s, n-1)
		g.Release()
		wg.Wait()
		check(t, s, errs)
		if errs[0] != nil {
			t.Errorf("the first request of the batch: got %v, want it to win", errs[0])
		}
		if st := s.Stats(); st.Transactions != 1 {
			t.Errorf("transactions: got %d, want 1", st.Transactions)
		}
	})

	t.Run("InOrder", func(t *testing.T) {
		// Two requests for one token in one batch: the first queued wins.
		s, g := MustOpenGatedStore(t)
		errs := make([]error, 3)
		var wg sync.WaitGroup
		wg.Go(func() { errs[0] = s.CommitDecision(ctx, newDecline("lane-0", "txn-0")) })
		g.WaitEntered(t)
		wg.Go(func() {
			errs[1] = s.CommitDecision(ctx, newCommit("lane-1", "txn-1", tokenID(7), gateway.ModeOnline, 1))
		})
		waitQueued(t, s, 1)
		wg.Go(func() {
			errs[2] = s.CommitDecision(ctx, newCommit("lane-2", "txn-2", tokenID(7), gateway.ModeOnline, 2))
		})
		waitQueued(t, s, 2)
		g.Release()
		wg.Wait()
		if errs[0] != nil || errs[1] != nil || errs[2] != gateway.ErrTokenSpent {
			t.Errorf("outcomes: got %v, want nil, nil, ErrTokenSpent", errs)
		}
		if ids := settlementIDs(t, s); !equalStrings(ids, []string{"stl-lane-1-txn-1"}) {
			t.Errorf("pending settlements: got %q, want the first request's", ids)
		}
	})
}

func TestStore_CommitDecision_Cancel(t *testing.T) {
	t.Run("Queued", func(t *testing.T) {
		s, g := MustOpenGatedStore(t)
		var wg sync.WaitGroup
		var holdErr error
		wg.Go(func() { holdErr = s.CommitDecision(context.Background(), newDecline("lane-0", "txn-0")) })
		g.WaitEntered(t)

		ctx, cancel := context.WithCancel(context.Background())
		c := newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOnline, 100)
		done := make(chan error, 1)
		go func() { done <- s.CommitDecision(ctx, c) }()
		waitQueued(t, s, 1)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("CommitDecision withdrawn while queued: got %v, want context.Canceled", err)
		}
		g.Release()
		wg.Wait()
		if holdErr != nil {
			t.Fatal(holdErr)
		}
		if d, _ := s.LookupDecision(context.Background(), c.Key); d != nil {
			t.Errorf("the withdrawn decision was written: %+v", d)
		}
		if spent, _ := s.TokenSpent(context.Background(), tokenID(1)); spent {
			t.Error("the withdrawn decision's token was recorded as spent")
		}
		if st := s.Stats(); st.Decisions != 1 {
			t.Errorf("decisions committed: got %d, want 1", st.Decisions)
		}
	})

	t.Run("Taken", func(t *testing.T) {
		s, g := MustOpenGatedStore(t)
		ctx, cancel := context.WithCancel(context.Background())
		c := newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOnline, 100)
		done := make(chan error, 1)
		go func() { done <- s.CommitDecision(ctx, c) }()
		g.WaitEntered(t) // the committer has taken c
		cancel()
		var err error
		select {
		case err = <-done:
			t.Errorf("CommitDecision returned %v while its batch was still open", err)
		case <-time.After(20 * time.Millisecond):
		}
		g.Release()
		if err == nil {
			err = <-done
		}
		if err != nil {
			t.Errorf("CommitDecision cancelled after it was taken: got %v, want nil (it committed)", err)
		}
		if d, _ := s.LookupDecision(context.Background(), c.Key); d == nil {
			t.Error("the decision is not stored")
		}
		if c.Settlement.Seq != 1 {
			t.Errorf("Settlement.Seq: got %d, want 1", c.Settlement.Seq)
		}
	})

	t.Run("AlreadyDone", func(t *testing.T) {
		s := MustOpenStore(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		c := newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOnline, 100)
		if err := s.CommitDecision(ctx, c); !errors.Is(err, context.Canceled) {
			t.Errorf("CommitDecision with a done context: got %v, want context.Canceled", err)
		}
		if n := auditCount(t, s); n != 0 {
			t.Errorf("audit records: got %d, want 0", n)
		}
	})
}

func TestStore_CommitDecision_DiskFull(t *testing.T) {
	ctx := context.Background()
	s, g := MustOpenGatedStore(t, func(s *storecache.Store) { s.MaxSize = 1 << 20 })

	// The first commit is held in the gate, so that the big ones join its
	// batch: together they need more than the 1 MiB cap.
	const n = 20
	commits := make([]*gateway.DecisionCommit, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		commits[i] = newCommit("lane-1", fmt.Sprintf("txn-%02d", i), tokenID(i), gateway.ModeOffline, 100)
		commits[i].Stored.Decision.Message = strings.Repeat("x", 100<<10)
		wg.Go(func() { errs[i] = s.CommitDecision(ctx, commits[i]) })
		if i == 0 {
			g.WaitEntered(t)
		}
	}
	waitQueued(t, s, n-1)
	g.Release()
	wg.Wait()

	for i, err := range errs {
		if gateway.ErrorCode(err) != gateway.EUNAVAILABLE {
			t.Errorf("commit %d: got %v, want EUNAVAILABLE", i, err)
		}
		if d, _ := s.LookupDecision(ctx, commits[i].Key); d != nil {
			t.Errorf("commit %d is stored although its transaction failed", i)
		}
		if spent, _ := s.TokenSpent(ctx, tokenID(i)); spent {
			t.Errorf("commit %d's token is spent although its transaction failed", i)
		}
	}
	if st := outboxStats(t, s); st.Depth != 0 || st.OfflineExposure != 0 {
		t.Errorf("outbox after the failed batch: got %+v, want empty", st)
	}
	if n := auditCount(t, s); n != 0 {
		t.Errorf("audit records after the failed batch: got %d, want 0", n)
	}
	if st := s.Stats(); st.FailedTransactions != 1 || st.Decisions != 0 {
		t.Errorf("Stats: got %+v, want 1 failed transaction and no decision", st)
	}

	// The store still works for what fits.
	mustCommit(t, s, newCommit("lane-1", "txn-small", tokenID(500), gateway.ModeOffline, 100))
	if got, err := s.VerifyAudit(ctx); err != nil || got != 1 {
		t.Errorf("VerifyAudit: got %d, %v, want 1, nil", got, err)
	}
}

func TestStore_CommitReversal(t *testing.T) {
	ctx := context.Background()
	reversal := func(lane, txn string, amount int64) (gateway.IdempotencyKey, gateway.Reversal, *gateway.Settlement, gateway.AuditEntry) {
		id := "stl-rev-" + lane + "-" + txn
		key := gateway.IdempotencyKey{Lane: lane, POSTxnID: txn}
		rev := gateway.Reversal{ID: id, Amount: amount, Currency: "JPY", Reason: "customer returned goods", CreatedAt: t0.Add(time.Minute)}
		stl := &gateway.Settlement{
			ID: id, Kind: gateway.SettlementReversal, StoreID: "store-0042", Lane: lane, POSTxnID: txn,
			Amount: amount, Currency: "JPY", Mode: gateway.ModeOffline, CreatedAt: rev.CreatedAt,
			ReversesID: "stl-" + lane + "-" + txn,
		}
		audit := gateway.AuditEntry{Time: rev.CreatedAt, Event: gateway.AuditReverse, StoreID: "store-0042", Lane: lane, POSTxnID: txn, Amount: amount, Currency: "JPY", Outcome: "approved", Mode: gateway.ModeLocal, SettlementID: id}
		return key, rev, stl, audit
	}

	t.Run("OK", func(t *testing.T) {
		s := MustOpenStore(t)
		mustCommit(t, s, newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOffline, 1200))
		key, rev, stl, audit := reversal("lane-1", "txn-1", 1200)
		got, already, err := s.CommitReversal(ctx, key, rev, stl, audit)
		if err != nil || already || got != rev {
			t.Fatalf("CommitReversal: got %+v, %v, %v, want %+v, false, nil", got, already, err, rev)
		}
		if stl.Seq != 2 {
			t.Errorf("reversal settlement seq: got %d, want 2", stl.Seq)
		}
		d, _ := s.LookupDecision(ctx, key)
		if d == nil || d.Reversal == nil || *d.Reversal != rev {
			t.Errorf("stored decision: got %+v, want the reversal recorded", d)
		}
		if ids := settlementIDs(t, s); !equalStrings(ids, []string{"stl-lane-1-txn-1", rev.ID}) {
			t.Errorf("pending settlements: got %q, want the capture, then the reversal", ids)
		}
		if n, err := s.VerifyAudit(ctx); err != nil || n != 2 {
			t.Errorf("VerifyAudit: got %d, %v, want 2, nil", n, err)
		}
		if st := s.Stats(); st.Reversals != 1 {
			t.Errorf("Stats.Reversals: got %d, want 1", st.Reversals)
		}
	})

	t.Run("AlreadyReversed", func(t *testing.T) {
		s := MustOpenStore(t)
		mustCommit(t, s, newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOnline, 1200))
		key, rev, stl, audit := reversal("lane-1", "txn-1", 1200)
		if _, _, err := s.CommitReversal(ctx, key, rev, stl, audit); err != nil {
			t.Fatal(err)
		}
		depth, records := outboxStats(t, s).Depth, auditCount(t, s)

		// A retry makes a new settlement id; the stored reversal is the answer.
		_, rev2, stl2, audit2 := reversal("lane-1", "txn-1", 1200)
		rev2.ID, stl2.ID = "stl-rev-retry", "stl-rev-retry"
		got, already, err := s.CommitReversal(ctx, key, rev2, stl2, audit2)
		if err != nil || !already || got.ID != rev.ID {
			t.Errorf("second CommitReversal: got %+v, %v, %v, want the first reversal (%s), true, nil", got, already, err, rev.ID)
		}
		if stl2.Seq != 0 {
			t.Errorf("seq of the unqueued settlement: got %d, want 0", stl2.Seq)
		}
		if got := outboxStats(t, s).Depth; got != depth {
			t.Errorf("outbox depth: got %d, want %d", got, depth)
		}
		if got := auditCount(t, s); got != records {
			t.Errorf("audit records: got %d, want %d", got, records)
		}
		if st := s.Stats(); st.Reversals != 1 {
			t.Errorf("Stats.Reversals after a repeated reversal: got %d, want 1 (the repeat writes nothing)", st.Reversals)
		}
	})

	t.Run("Declined", func(t *testing.T) {
		s := MustOpenStore(t)
		mustCommit(t, s, newDecline("lane-1", "txn-1"))
		key, rev, stl, audit := reversal("lane-1", "txn-1", 1200)
		_, _, err := s.CommitReversal(ctx, key, rev, stl, audit)
		wantCode(t, err, gateway.ECONFLICT)
		if n := auditCount(t, s); n != 1 {
			t.Errorf("audit records: got %d, want 1", n)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := MustOpenStore(t)
		key, rev, stl, audit := reversal("lane-1", "txn-404", 1200)
		_, _, err := s.CommitReversal(ctx, key, rev, stl, audit)
		wantCode(t, err, gateway.ENOTFOUND)
		if n := auditCount(t, s); n != 0 {
			t.Errorf("audit records: got %d, want 0", n)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		s := MustOpenStore(t)
		key, rev, stl, audit := reversal("lane-1", "txn-1", 1200)
		stl.Kind = gateway.SettlementCapture
		_, _, err := s.CommitReversal(ctx, key, rev, stl, audit)
		wantCode(t, err, gateway.EINVALID)
		key, rev, stl, audit = reversal("lane-1", "txn-1", 1200)
		rev.ID = "stl-other"
		_, _, err = s.CommitReversal(ctx, key, rev, stl, audit)
		wantCode(t, err, gateway.EINVALID)
	})
}

func TestStore_PruneSpent(t *testing.T) {
	ctx := context.Background()
	s := MustOpenStore(t)
	// Tokens expiring 1, 2, ... 10 minutes after t0.
	for i := 1; i <= 10; i++ {
		c := newCommit("lane-1", fmt.Sprintf("txn-%02d", i), tokenID(i), gateway.ModeOnline, 100)
		c.TokenExpires = t0.Add(time.Duration(i) * time.Minute)
		mustCommit(t, s, c)
	}

	n, err := s.PruneSpent(ctx, t0.Add(4*time.Minute))
	if err != nil || n != 3 {
		t.Fatalf("PruneSpent(t0+4m): got %d, %v, want 3 (expiries 1 to 3 min), nil", n, err)
	}
	for i := 1; i <= 10; i++ {
		spent, err := s.TokenSpent(ctx, tokenID(i))
		if err != nil {
			t.Fatal(err)
		}
		if want := i >= 4; spent != want {
			t.Errorf("token %d (expires t0+%dm) spent: got %v, want %v", i, i, spent, want)
		}
	}
	if n, err := s.PruneSpent(ctx, t0.Add(4*time.Minute)); err != nil || n != 0 {
		t.Errorf("second PruneSpent(t0+4m): got %d, %v, want 0, nil", n, err)
	}
	if n, err := s.PruneSpent(ctx, t0.Add(time.Hour)); err != nil || n != 7 {
		t.Errorf("PruneSpent(t0+1h): got %d, %v, want 7, nil", n, err)
	}
	// Decisions stay: only the spent ids are forgotten.
	if d, _ := s.LookupDecision(ctx, gateway.IdempotencyKey{Lane: "lane-1", POSTxnID: "txn-01"}); d == nil {
		t.Error("PruneSpent removed a decision")
	}
}

// TestCommitDecision_PagesFilled commits decisions as lanes do, each lane's
// POS transaction ids growing, and checks that the buckets whose keys grow
// fill their pages instead of leaving them half empty, which would double
// the file.
func TestCommitDecision_PagesFilled(t *testing.T) {
	s := MustOpenStore(t)
	ctx := context.Background()
	const lanes, perLane = 8, 250
	var wg sync.WaitGroup
	for lane := range lanes {
		wg.Go(func() {
			for i := range perLane {
				n := lane*perLane + i
				if err := s.CommitDecision(ctx, newCommit(fmt.Sprintf("lane-%02d", lane), fmt.Sprintf("txn-%06d", i), tokenID(n), gateway.ModeOnline, 1200)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, bucket := range []string{"audit", "outbox", "decisions"} {
		fill, err := s.LeafFill(bucket)
		if err != nil {
			t.Fatal(err)
		}
		if fill < 0.7 {
			t.Errorf("bucket %s: leaf pages %.0f%% full, want at least 70%%", bucket, fill*100)
		}
	}
}
