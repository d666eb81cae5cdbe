package storecache_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"storegate/gateway"
	"storegate/internal/groupcommit/committertest"
	"storegate/storecache"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is the tests' clock.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// MustOpenStore opens a new store in a temporary directory. At cleanup it
// runs Check, failing the test on any problem, and closes the store.
func MustOpenStore(tb testing.TB) *storecache.Store {
	tb.Helper()
	return MustOpenStoreAt(tb, filepath.Join(tb.TempDir(), "store.db"))
}

// MustOpenStoreAt is MustOpenStore for a given path, on the tests' clock t0
// unless set changes it; each set function changes the store's fields
// before Open.
func MustOpenStoreAt(tb testing.TB, path string, set ...func(*storecache.Store)) *storecache.Store {
	tb.Helper()
	s, err := openStore(path, append([]func(*storecache.Store){func(s *storecache.Store) { s.Now = func() time.Time { return t0 } }}, set...)...)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Check(); err != nil && !errors.Is(err, storecache.ErrClosed) {
			tb.Errorf("Check at cleanup: %v", err)
		}
		if err := s.Close(context.Background()); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// openStore opens the store file at path, after each set function has
// changed the store's fields.
func openStore(path string, set ...func(*storecache.Store)) (*storecache.Store, error) {
	s := storecache.NewStore(path)
	for _, f := range set {
		f(s)
	}
	if err := s.Open(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// openReadOnly opens the store file at path read-only, waiting at most
// timeout for the lock (zero: the default).
func openReadOnly(path string, timeout time.Duration) (*storecache.Store, error) {
	return openStore(path, func(s *storecache.Store) {
		s.ReadOnly = true
		if timeout != 0 {
			s.Timeout = timeout
		}
	})
}

// tokenID returns a distinct 16-byte token id for n.
func tokenID(n int) []byte {
	id := make([]byte, gateway.TokenIDSize)
	copy(id, fmt.Sprintf("tok-%012d", n))
	return id
}

// newCommit returns an approval of amount on lane/txn with a settlement
// whose id is "stl-"+txn, sized like a real one.
func newCommit(lane, txn string, tok []byte, mode gateway.Mode, amount int64) *gateway.DecisionCommit {
	stlID := "stl-" + lane + "-" + txn
	d := gateway.Decision{
		Approved:         true,
		Reason:           gateway.ReasonNone,
		Rule:             "",
		Mode:             mode,
		AuthorizationID:  "auth-7f3a9c2e4b1d4e8f9a0b1c2d3e4f5a6b",
		SettlementID:     stlID,
		Amount:           amount,
		Currency:         "JPY",
		TokenFingerprint: "fp-3b9d0c1e7a2f4d6b",
		Account:          "acct-0000123456789",
		DecidedAt:        t0,
	}
	return &gateway.DecisionCommit{
		Key:          gateway.IdempotencyKey{Lane: lane, POSTxnID: txn},
		Stored:       gateway.StoredDecision{Decision: d, Digest: [32]byte{1, 2, 3}},
		TokenID:      tok,
		TokenExpires: t0.Add(5 * time.Minute),
		Settlement: &gateway.Settlement{
			ID:              stlID,
			Kind:            gateway.SettlementCapture,
			StoreID:         "store-0042",
			Lane:            lane,
			POSTxnID:        txn,
			AuthorizationID: d.AuthorizationID,
			Account:         d.Account,
			TokenID:         tok,
			Amount:          amount,
			Currency:        "JPY",
			Mode:            mode,
			CreatedAt:       t0,
		},
		Audit: gateway.AuditEntry{
			Time:             t0,
			Event:            gateway.AuditAuthorize,
			StoreID:          "store-0042",
			Lane:             lane,
			POSTxnID:         txn,
			Account:          d.Account,
			TokenFingerprint: d.TokenFingerprint,
			Amount:           amount,
			Currency:         "JPY",
			Outcome:          "approved",
			Reason:           gateway.ReasonNone,
			Mode:             mode,
			SettlementID:     stlID,
			AuthorizationID:  d.AuthorizationID,
		},
	}
}

// newDecline returns a local decline on lane/txn: no settlement, no spent
// token.
func newDecline(lane, txn string) *gateway.DecisionCommit {
	c := newCommit(lane, txn, nil, gateway.ModeLocal, 5000)
	c.Stored.Decision.Approved = false
	c.Stored.Decision.Reason = gateway.ReasonLimitExceeded
	c.Stored.Decision.Rule = "tobacco-per-account"
	c.Stored.Decision.SettlementID = ""
	c.Stored.Decision.AuthorizationID = ""
	c.Settlement = nil
	c.Audit.Outcome = "declined"
	c.Audit.Reason = gateway.ReasonLimitExceeded
	c.Audit.SettlementID = ""
	return c
}

// mustCommit commits c and fails the test on error.
func mustCommit(tb testing.TB, s *storecache.Store, c *gateway.DecisionCommit) {
	tb.Helper()
	if err := s.CommitDecision(context.Background(), c); err != nil {
		tb.Fatalf("CommitDecision(%s): %v", c.Key, err)
	}
}

// MustOpenGatedStore opens a new store whose committer is held in a gate
// the first time it takes a request. The gate opens at the latest at
// cleanup, before the store closes, so that a failing test cannot hang.
func MustOpenGatedStore(tb testing.TB, set ...func(*storecache.Store)) (*storecache.Store, *committertest.Gate) {
	tb.Helper()
	g := committertest.NewGate()
	set = append(set, func(s *storecache.Store) { s.BeforeCommit = g.Hook })
	s := MustOpenStoreAt(tb, filepath.Join(tb.TempDir(), "store.db"), set...)
	tb.Cleanup(g.Release) // runs before the store's cleanup
	return s, g
}

// waitQueued waits until at least n commits wait for the committer.
func waitQueued(tb testing.TB, s *storecache.Store, n int) {
	tb.Helper()
	committertest.WaitAtLeast(tb, "queued commits", n, func() int { return s.Stats().Queued })
}

// wantCode fails the test unless err carries the gateway error code.
func wantCode(tb testing.TB, err error, code string) {
	tb.Helper()
	if got := gateway.ErrorCode(err); got != code {
		tb.Fatalf("error code: got %q (%v), want %q", got, err, code)
	}
}

// auditCount returns the number of audit records.
func auditCount(tb testing.TB, s *storecache.Store) uint64 {
	tb.Helper()
	n, _, err := s.AuditHead(context.Background())
	if err != nil {
		tb.Fatalf("AuditHead: %v", err)
	}
	return n
}

// outboxStats returns the outbox's stats.
func outboxStats(tb testing.TB, s *storecache.Store) gateway.OutboxStats {
	tb.Helper()
	st, err := s.OutboxStats(context.Background())
	if err != nil {
		tb.Fatalf("OutboxStats: %v", err)
	}
	return st
}

// settlementIDs returns the ids of the pending settlements, in order.
func settlementIDs(tb testing.TB, s *storecache.Store) []string {
	tb.Helper()
	pending, err := s.PendingSettlements(context.Background(), 10_000)
	if err != nil {
		tb.Fatalf("PendingSettlements: %v", err)
	}
	ids := make([]string, len(pending))
	for i, p := range pending {
		ids[i] = p.ID
	}
	return ids
}

func wantContains(tb testing.TB, err error, subs ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("error: got nil, want one containing %q", subs)
	}
	for _, sub := range subs {
		if !strings.Contains(err.Error(), sub) {
			tb.Errorf("error %q: want it to contain %q", err, sub)
		}
	}
}
