package storecache_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
	"storegate/storecache"
)

// offlineCommit returns an offline approval of amount for account on
// lane/txn, charged against caps.
func offlineCommit(lane, txn, account string, tok []byte, amount int64, caps gateway.OfflineCaps) *gateway.DecisionCommit {
	c := newCommit(lane, txn, tok, gateway.ModeOffline, amount)
	c.Stored.Decision.AuthorizationID, c.Settlement.AuthorizationID, c.Audit.AuthorizationID = "", "", ""
	c.Stored.Decision.Account, c.Settlement.Account, c.Audit.Account = account, account, account
	c.Offline = &gateway.OfflineCharge{Account: account, Amount: amount, Caps: caps}
	return c
}

func offlineTotal(tb testing.TB, s *storecache.Store, account string) int64 {
	tb.Helper()
	n, err := s.OfflineTotal(context.Background(), account)
	if err != nil {
		tb.Fatalf("OfflineTotal(%s): %v", account, err)
	}
	return n
}

// wantLimit fails the test unless err is an OfflineLimitError for cap.
func wantLimit(tb testing.TB, err error, cap string) *gateway.OfflineLimitError {
	tb.Helper()
	var lim *gateway.OfflineLimitError
	if !errors.As(err, &lim) || lim.Cap != cap {
		tb.Fatalf("error: got %v, want an OfflineLimitError for %s", err, cap)
	}
	return lim
}

var testCaps = gateway.OfflineCaps{MaxAmountPerTransaction: 3000, MaxAmountPerAccount: 5000, MaxStoreExposure: 8000}

func TestStore_CommitDecision_OfflineCharge(t *testing.T) {
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		s := MustOpenStore(t)
		mustCommit(t, s, offlineCommit("lane-1", "txn-1", "acct-a", tokenID(1), 3000, testCaps))
		mustCommit(t, s, offlineCommit("lane-2", "txn-2", "acct-a", tokenID(2), 2000, testCaps))
		mustCommit(t, s, offlineCommit("lane-3", "txn-3", "acct-b", tokenID(3), 3000, testCaps))
		if got := offlineTotal(t, s, "acct-a"); got != 5000 {
			t.Errorf("acct-a offline total: got %d, want 5000", got)
		}
		if got := offlineTotal(t, s, "acct-b"); got != 3000 {
			t.Errorf("acct-b offline total: got %d, want 3000", got)
		}
		if st := outboxStats(t, s); st.OfflineExposure != 8000 || st.Depth != 3 {
			t.Errorf("outbox: got %+v, want exposure 8000 at the cap, depth 3", st)
		}
	})

	for _, tt := range []struct {
		name string
		// before are committed first: account and amount.
		before  []int64
		account string
		amount  int64
		cap     string
	}{
		{"ErrPerTransaction", nil, "acct-a", 3001, gateway.CapPerTransaction},
		{"ErrPerAccount", []int64{3000}, "acct-a", 2001, gateway.CapPerAccount},
		{"ErrStoreExposure", []int64{3000, 3000}, "acct-c", 2001, gateway.CapStoreExposure},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := MustOpenStore(t)
			for i, amount := range tt.before {
				// The first is acct-a's; the others other accounts'.
				acct := map[bool]string{true: "acct-a", false: fmt.Sprintf("acct-other-%d", i)}[i == 0]
				mustCommit(t, s, offlineCommit("lane-1", fmt.Sprintf("before-%d", i), acct, tokenID(100+i), amount, testCaps))
			}
			audits, exposure := auditCount(t, s), outboxStats(t, s).OfflineExposure
			c := offlineCommit("lane-9", "txn-9", tt.account, tokenID(9), tt.amount, testCaps)
			lim := wantLimit(t, s.CommitDecision(ctx, c), tt.cap)
			if lim.Amount != tt.amount || lim.Rule() != "offline."+tt.cap {
				t.Errorf("limit error: got %+v (rule %s), want amount %d", lim, lim.Rule(), tt.amount)
			}
			// Nothing of the refused commit is stored.
			if d, _ := s.LookupDecision(ctx, c.Key); d != nil {
				t.Errorf("the refused decision is stored: %+v", d)
			}
			if spent, _ := s.TokenSpent(ctx, tokenID(9)); spent {
				t.Error("the refused commit spent its token")
			}
			if got := auditCount(t, s); got != audits {
				t.Errorf("audit records: got %d, want %d", got, audits)
			}
			if got := outboxStats(t, s).OfflineExposure; got != exposure {
				t.Errorf("exposure: got %d, want %d unchanged", got, exposure)
			}
		})
	}

	t.Run("ErrChargeNotTheSettlement", func(t *testing.T) {
		s := MustOpenStore(t)
		for name, mutate := range map[string]func(c *gateway.DecisionCommit){
			"account": func(c *gateway.DecisionCommit) { c.Offline.Account = "acct-z" },
			"amount":  func(c *gateway.DecisionCommit) { c.Offline.Amount = 1 },
			"online":  func(c *gateway.DecisionCommit) { c.Settlement.Mode = gateway.ModeOnline },
			"none":    func(c *gateway.DecisionCommit) { c.Settlement = nil },
		} {
			c := offlineCommit("lane-1", "txn-"+name, "acct-a", tokenID(1), 100, testCaps)
			mutate(c)
			if err := s.CommitDecision(ctx, c); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Errorf("%s: got %v, want EINVALID", name, err)
			}
		}
		if n := auditCount(t, s); n != 0 {
			t.Errorf("audit records: got %d, want 0", n)
		}
	})

	t.Run("ErrOfflineWithoutAccount", func(t *testing.T) {
		s := MustOpenStore(t)
		c := newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOffline, 100)
		c.Settlement.Account = ""
		wantCode(t, s.CommitDecision(ctx, c), gateway.EINVALID)
	})
}

// Lanes committing offline sales at once share transactions (group commit):
// the caps hold across the batch, because each commit is checked against the
// totals the ones before it in the same transaction left.
func TestStore_CommitDecision_OfflineChargeBatched(t *testing.T) {
	ctx := context.Background()
	s, g := MustOpenGatedStore(t)
	caps := gateway.OfflineCaps{MaxAmountPerTransaction: 1000, MaxAmountPerAccount: 1000, MaxStoreExposure: 2500}
	const n = 40
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		c := offlineCommit(fmt.Sprintf("lane-%d", i%8), fmt.Sprintf("txn-%02d", i), fmt.Sprintf("acct-%d", i%4), tokenID(i), 300, caps)
		wg.Go(func() { errs[i] = s.CommitDecision(ctx, c) })
		if i == 0 {
			g.WaitEntered(t)
		}
	}
	waitQueued(t, s, n-1)
	g.Release()
	wg.Wait()

	ok := 0
	for i, err := range errs {
		var lim *gateway.OfflineLimitError
		switch {
		case err == nil:
			ok++
		case !errors.As(err, &lim):
			t.Errorf("commit %d: got %v, want nil or an OfflineLimitError", i, err)
		}
	}
	// 2500 / 300 = 8 sales fit the store; each account's 1000 fits 3.
	if ok != 8 {
		t.Errorf("approved: got %d, want 8", ok)
	}
	if st := outboxStats(t, s); st.OfflineExposure != 2400 || st.Depth != 8 {
		t.Errorf("outbox: got %+v, want exposure 2400, depth 8", st)
	}
	for a := range 4 {
		if got := offlineTotal(t, s, fmt.Sprintf("acct-%d", a)); got > 1000 {
			t.Errorf("acct-%d offline total %d exceeds its cap 1000", a, got)
		}
	}
	if st := s.Stats(); st.LargestBatch < 2 {
		t.Errorf("largest batch: got %d, want the commits grouped", st.LargestBatch)
	}
}

func TestStore_OfflineTotal_Released(t *testing.T) {
	ctx := context.Background()
	s := MustOpenStore(t)
	c1 := offlineCommit("lane-1", "txn-1", "acct-a", tokenID(1), 1000, testCaps)
	c2 := offlineCommit("lane-1", "txn-2", "acct-a", tokenID(2), 700, testCaps)
	c3 := offlineCommit("lane-1", "txn-3", "acct-a", tokenID(3), 500, testCaps)
	for _, c := range []*gateway.DecisionCommit{c1, c2, c3} {
		mustCommit(t, s, c)
	}
	if got := offlineTotal(t, s, "acct-a"); got != 2200 {
		t.Fatalf("offline total: got %d, want 2200", got)
	}

	t.Run("ReversalOfQueuedCapture", func(t *testing.T) {
		key := gateway.IdempotencyKey{Lane: "lane-1", POSTxnID: "txn-3"}
		rev := gateway.Reversal{ID: "rev-3", Amount: 500, Currency: "JPY", CreatedAt: t0}
		stl := &gateway.Settlement{ID: "rev-3", Kind: gateway.SettlementReversal, StoreID: "store-0042", Lane: "lane-1", POSTxnID: "txn-3",
			Account: "acct-a", Amount: 500, Currency: "JPY", Mode: gateway.ModeOffline, CreatedAt: t0, ReversesID: c3.Settlement.ID}
		if _, _, err := s.CommitReversal(ctx, key, rev, stl, gateway.AuditEntry{Time: t0, Event: gateway.AuditReverse}); err != nil {
			t.Fatal(err)
		}
		if got := offlineTotal(t, s, "acct-a"); got != 1700 {
			t.Errorf("offline total after the reversal: got %d, want 1700", got)
		}
		if got := outboxStats(t, s).OfflineExposure; got != 1700 {
			t.Errorf("exposure after the reversal: got %d, want 1700", got)
		}
	})
	t.Run("AckAccepted", func(t *testing.T) {
		if err := s.AckSettlements(ctx, []gateway.SettlementAck{{ID: c1.Settlement.ID, Status: gateway.SettlementAccepted}}); err != nil {
			t.Fatal(err)
		}
		if got := offlineTotal(t, s, "acct-a"); got != 700 {
			t.Errorf("offline total: got %d, want 700", got)
		}
	})
	t.Run("AckRefusedKeptDisputed", func(t *testing.T) {
		if err := s.AckSettlements(ctx, []gateway.SettlementAck{{ID: c2.Settlement.ID, Status: gateway.SettlementRefused, Message: "insufficient funds"}}); err != nil {
			t.Fatal(err)
		}
		if got := offlineTotal(t, s, "acct-a"); got != 0 {
			t.Errorf("offline total: got %d, want 0", got)
		}
		d, err := s.DisputedSettlements(ctx, 10)
		if err != nil || len(d) != 1 || d[0].Settlement.ID != c2.Settlement.ID || d[0].Message != "insufficient funds" {
			t.Errorf("disputed: got %+v, %v, want %s kept with central's message", d, err, c2.Settlement.ID)
		}
	})
	t.Run("AckReversedCapture", func(t *testing.T) {
		if err := s.AckSettlements(ctx, []gateway.SettlementAck{
			{ID: c3.Settlement.ID, Status: gateway.SettlementAccepted}, {ID: "rev-3", Status: gateway.SettlementAccepted},
		}); err != nil {
			t.Fatal(err)
		}
		if got := offlineTotal(t, s, "acct-a"); got != 0 {
			t.Errorf("offline total: got %d, want 0", got)
		}
		if st := outboxStats(t, s); st.OfflineExposure != 0 || st.Depth != 0 {
			t.Errorf("outbox: got %+v, want empty with no exposure", st)
		}
	})
}

// A schema 1 file, written before the offline_accounts bucket (and the other
// schema 2 buckets) existed: a read-only open reads it as empty, and the
// first read-write open upgrades it and fills it from the outbox.
func TestOpen_OfflineTotalsMigrated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, offlineCommit("lane-1", "txn-1", "acct-a", tokenID(1), 1200, testCaps))
	mustCommit(t, s, offlineCommit("lane-1", "txn-2", "acct-b", tokenID(2), 800, testCaps))
	mustCommit(t, s, newCommit("lane-1", "txn-3", tokenID(3), gateway.ModeOnline, 999))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	makeSchema1(t, path)

	t.Run("ReadOnly", func(t *testing.T) {
		ro, err := openReadOnly(path, time.Second)
		if err != nil {
			t.Fatalf("OpenReadOnly of an older file: %v", err)
		}
		defer ro.Close(context.Background())
		if got := offlineTotal(t, ro, "acct-a"); got != 0 {
			t.Errorf("offline total: got %d, want 0 (no bucket yet)", got)
		}
		// This older file does hold offline exposure (no real build before
		// the bucket approved offline): Check must say so.
		wantContains(t, ro.Check(), "offline_accounts is missing")
	})

	s = MustOpenStoreAt(t, path)
	if got := offlineTotal(t, s, "acct-a"); got != 1200 {
		t.Errorf("acct-a after migration: got %d, want 1200", got)
	}
	if got := offlineTotal(t, s, "acct-b"); got != 800 {
		t.Errorf("acct-b after migration: got %d, want 800", got)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check after migration: %v", err)
	}
}

func TestCheck_OfflineTotalWrong(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, offlineCommit("lane-1", "txn-1", "acct-a", tokenID(1), 1200, testCaps))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		v := make([]byte, 8)
		v[7] = 1
		return tx.Bucket([]byte("offline_accounts")).Put([]byte("acct-a"), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	ro, err := openReadOnly(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close(context.Background())
	wantContains(t, ro.Check(), `offline_accounts "acct-a" is 1`, "holds 1200")
}

// dropBucket deletes a bucket from a closed store file, as an older build
// would have left it.
// makeSchema1 turns a store file into what a schema 1 build wrote: without
// the buckets schema 2 added, and saying schema 1.
func makeSchema1(tb testing.TB, path string) {
	tb.Helper()
	for _, name := range []string{"offline_accounts", "counters", "charges", "frozen"} {
		dropBucket(tb, path, name)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), binary.BigEndian.AppendUint64(nil, 1))
	}); err != nil {
		tb.Fatal(err)
	}
}

func dropBucket(tb testing.TB, path, name string) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte(name)) }); err != nil {
		tb.Fatal(err)
	}
}
