package storecache_test

import (
	"context"
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

// giftCharge is a charge of amount to the store-wide gift-card counter,
// capped at limit per hour, made at at.
func giftCharge(amount, limit int64, at time.Time) gateway.CounterCharge {
	return gateway.CounterCharge{
		Rule: "gift-cards", Counter: "store/chain/gift-cards/amount", Window: time.Hour,
		Cap: limit, Amount: amount, At: at, Limit: fmt.Sprintf("%d JPY per store per 1h", limit),
	}
}

// chargedCommit is an approval on lane/txn that charges c.
func chargedCommit(n int, c ...gateway.CounterCharge) *gateway.DecisionCommit {
	dc := newCommit("lane-1", fmt.Sprintf("txn-%d", n), tokenID(n), gateway.ModeOnline, 1000)
	dc.Charges = c
	return dc
}

func sums(tb testing.TB, s *storecache.Store, now time.Time, windows ...gateway.CounterWindow) []int64 {
	tb.Helper()
	got, err := s.CounterSums(context.Background(), now, windows)
	if err != nil {
		tb.Fatalf("CounterSums: %v", err)
	}
	return got
}

var giftWindow = gateway.CounterWindow{Counter: "store/chain/gift-cards/amount", Window: time.Hour}

func TestStore_Charges(t *testing.T) {
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		s := MustOpenStore(t)
		mustCommit(t, s, chargedCommit(1, giftCharge(30000, 100000, t0)))
		mustCommit(t, s, chargedCommit(2, giftCharge(70000, 100000, t0.Add(10*time.Minute))))
		if got := sums(t, s, t0.Add(10*time.Minute), giftWindow); got[0] != 100000 {
			t.Fatalf("window sum at the cap: got %d, want 100000", got[0])
		}
		other := gateway.CounterWindow{Counter: "store/chain/gift-cards/amoun", Window: time.Hour}
		if got := sums(t, s, t0, other); got[0] != 0 {
			t.Errorf("a counter whose name is a prefix of another: got %d, want 0", got[0])
		}
	})

	t.Run("ErrLimitExceeded", func(t *testing.T) {
		s := MustOpenStore(t)
		mustCommit(t, s, chargedCommit(1, giftCharge(99999, 100000, t0)))
		over := chargedCommit(2, giftCharge(2, 100000, t0.Add(time.Minute)))
		err := s.CommitDecision(ctx, over)
		var lerr *gateway.LimitError
		if !errors.As(err, &lerr) {
			t.Fatalf("CommitDecision one over the cap: got %v, want a *gateway.LimitError", err)
		}
		if lerr.Held != 99999 || lerr.Charge.Rule != "gift-cards" {
			t.Errorf("LimitError: got held %d rule %q, want 99999 gift-cards", lerr.Held, lerr.Charge.Rule)
		}
		wantContains(t, err, "rule gift-cards", "100000 JPY per store per 1h", "would make 100001")
		if d, _ := s.LookupDecision(ctx, over.Key); d != nil {
			t.Error("the refused decision was stored")
		}
		if spent, _ := s.TokenSpent(ctx, over.TokenID); spent {
			t.Error("the refused decision spent its token")
		}
		if n := auditCount(t, s); n != 1 {
			t.Errorf("audit records: got %d, want 1", n)
		}
		// Exactly at the cap is fine.
		mustCommit(t, s, chargedCommit(3, giftCharge(1, 100000, t0.Add(time.Minute))))
	})

	t.Run("WindowExpiry", func(t *testing.T) {
		s := MustOpenStore(t)
		at := t0.Add(30 * time.Second) // mid-bucket
		mustCommit(t, s, chargedCommit(1, giftCharge(100000, 100000, at)))
		for _, c := range []struct {
			now  time.Time
			want int64
		}{
			{at.Add(time.Hour - time.Second), 100000},      // inside the window
			{at.Add(time.Hour + 29*time.Second), 100000},   // still in the bucket the window overlaps
			{at.Add(time.Hour + 30*time.Second), 0},        // the bucket is over
			{at.Add(time.Hour + time.Minute), 0},           // and stays over
			{at.Add(-time.Hour), 100000},                   // a clock behind still counts it
			{t0.Add(time.Hour + gateway.CounterBucket), 0}, // bucket start + window + one bucket
			{t0.Add(time.Hour + time.Minute - time.Nanosecond), 100000},
		} {
			if got := sums(t, s, c.now, giftWindow); got[0] != c.want {
				t.Errorf("sum at %s: got %d, want %d", c.now.Sub(at), got[0], c.want)
			}
		}
		mustCommit(t, s, chargedCommit(2, giftCharge(100000, 100000, at.Add(time.Hour+30*time.Second))))
	})

	t.Run("SameBatch", func(t *testing.T) {
		// Eight commits, each within the cap alone, reach the committer in
		// one batch: the re-check inside the transaction counts the ones
		// before it, so exactly the first four are written.
		const n = 8
		s, g := MustOpenGatedStore(t)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			c := chargedCommit(i, giftCharge(25000, 100000, t0))
			wg.Go(func() { errs[i] = s.CommitDecision(ctx, c) })
			if i == 0 {
				g.WaitEntered(t)
				waitQueued(t, s, 0)
			} else {
				waitQueued(t, s, i)
			}
		}
		g.Release()
		wg.Wait()
		var ok, refused int
		for i, err := range errs {
			var lerr *gateway.LimitError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &lerr):
				refused++
			default:
				t.Errorf("commit %d: %v", i, err)
			}
		}
		if ok != 4 || refused != 4 {
			t.Errorf("got %d written and %d refused, want 4 and 4", ok, refused)
		}
		if got := sums(t, s, t0, giftWindow); got[0] != 100000 {
			t.Errorf("window sum: got %d, want 100000", got[0])
		}
		if st := s.Stats(); st.Transactions != 1 {
			t.Errorf("transactions: got %d, want 1 (one batch)", st.Transactions)
		}
	})

	t.Run("ReversalGivesBack", func(t *testing.T) {
		s := MustOpenStore(t)
		acct := gateway.CounterCharge{Rule: "tobacco", Counter: "acct/chain/tobacco/qty/acct-1", Window: 24 * time.Hour,
			Cap: 20, Amount: 12, At: t0, Limit: "20 per account per 24h"}
		c := chargedCommit(1, giftCharge(40000, 100000, t0), acct)
		mustCommit(t, s, c)
		mustCommit(t, s, chargedCommit(2, giftCharge(10000, 100000, t0)))
		acctWindow := gateway.CounterWindow{Counter: acct.Counter, Window: acct.Window}
		if got := sums(t, s, t0, giftWindow, acctWindow); got[0] != 50000 || got[1] != 12 {
			t.Fatalf("sums before the reversal: got %v, want [50000 12]", got)
		}
		id := "stl-rev-1"
		stl := &gateway.Settlement{ID: id, Kind: gateway.SettlementReversal, StoreID: "store-0042", Lane: "lane-1", POSTxnID: "txn-1",
			Amount: 1000, Currency: "JPY", Mode: gateway.ModeOnline, CreatedAt: t0, ReversesID: c.Settlement.ID}
		rev := gateway.Reversal{ID: id, Amount: 1000, Currency: "JPY", CreatedAt: t0}
		if _, _, err := s.CommitReversal(ctx, c.Key, rev, stl, gateway.AuditEntry{Event: gateway.AuditReverse}); err != nil {
			t.Fatal(err)
		}
		if got := sums(t, s, t0, giftWindow, acctWindow); got[0] != 10000 || got[1] != 0 {
			t.Errorf("sums after the reversal: got %v, want [10000 0]", got)
		}
		// A second reversal gives nothing back twice.
		if _, already, err := s.CommitReversal(ctx, c.Key, rev, stl, gateway.AuditEntry{Event: gateway.AuditReverse}); err != nil || !already {
			t.Fatalf("second reversal: got %v, %v, want already reversed", already, err)
		}
		if got := sums(t, s, t0, giftWindow); got[0] != 10000 {
			t.Errorf("sum after a repeated reversal: got %d, want 10000", got[0])
		}
	})

	t.Run("ReversalAfterPrune", func(t *testing.T) {
		s := MustOpenStore(t)
		c := chargedCommit(1, giftCharge(40000, 100000, t0))
		mustCommit(t, s, c)
		// Charging the counter two hours later prunes the old bucket.
		mustCommit(t, s, chargedCommit(2, giftCharge(5000, 100000, t0.Add(2*time.Hour))))
		id := "stl-rev-1"
		stl := &gateway.Settlement{ID: id, Kind: gateway.SettlementReversal, StoreID: "store-0042", Lane: "lane-1", POSTxnID: "txn-1",
			Amount: 1000, Currency: "JPY", Mode: gateway.ModeOnline, CreatedAt: t0, ReversesID: c.Settlement.ID}
		if _, _, err := s.CommitReversal(ctx, c.Key, gateway.Reversal{ID: id, Amount: 1000, Currency: "JPY"}, stl, gateway.AuditEntry{}); err != nil {
			t.Fatal(err)
		}
		if got := sums(t, s, t0.Add(2*time.Hour), giftWindow); got[0] != 5000 {
			t.Errorf("sum: got %d, want 5000 (the later charge untouched)", got[0])
		}
	})

	t.Run("PruneCounters", func(t *testing.T) {
		s := MustOpenStore(t)
		for i := range 5 {
			mustCommit(t, s, chargedCommit(i, giftCharge(1000, 100000, t0.Add(time.Duration(i)*10*time.Minute))))
		}
		n, err := s.PruneCounters(ctx, gateway.BucketStart(t0.Add(25*time.Minute)))
		if err != nil || n != 3 {
			t.Fatalf("PruneCounters: got %d, %v, want 3 buckets", n, err)
		}
		if got := sums(t, s, t0.Add(40*time.Minute), giftWindow); got[0] != 2000 {
			t.Errorf("sum after pruning: got %d, want 2000", got[0])
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		s := MustOpenStore(t)
		for name, c := range map[string]gateway.CounterCharge{
			"NoCounter":   {Counter: "", Window: time.Hour, Cap: 1, Amount: 1, At: t0},
			"NUL":         {Counter: "a\x00b", Window: time.Hour, Cap: 1, Amount: 1, At: t0},
			"ShortWindow": {Counter: "c", Window: time.Second, Cap: 1, Amount: 1, At: t0},
			"Negative":    {Counter: "c", Window: time.Hour, Cap: 1, Amount: -1, At: t0},
			"NoTime":      {Counter: "c", Window: time.Hour, Cap: 1, Amount: 1},
		} {
			t.Run(name, func(t *testing.T) {
				wantCode(t, s.CommitDecision(ctx, chargedCommit(1, c)), gateway.EINVALID)
			})
		}
	})
}

func TestStore_Check_Counters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, chargedCommit(1, giftCharge(1000, 100000, t0)))
	if err := s.Check(); err != nil {
		t.Fatalf("Check of a sound store: %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("counters")).Put([]byte("no-separator"), []byte{1}); err != nil {
			return err
		}
		return tx.Bucket([]byte("charges")).Put([]byte("lane\x00ghost"), []byte("[]"))
	})
	s, err = openReadOnly(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	wantContains(t, s.Check(), "counters", "malformed key", "charges", "no decision")
}
