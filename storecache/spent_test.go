package storecache_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"storegate/gateway"
	"storegate/storecache"
)

// Once PruneSpent has forgotten an id, a token expiring no later than it can
// never be spent again, even after a restart: the store cannot tell it from
// the forgotten one, and a host clock stepped back would call it valid.
func TestStore_PruneSpent_ForgottenNeverSpendable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := openStore(path, func(s *storecache.Store) { s.Now = func() time.Time { return t0 } })
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		c := newCommit("lane-1", fmt.Sprintf("txn-%d", i), tokenID(i), gateway.ModeOnline, 100)
		c.TokenExpires = t0.Add(time.Duration(i) * time.Minute)
		mustCommit(t, s, c)
	}
	if n, err := s.PruneSpent(ctx, t0.Add(150*time.Second)); err != nil || n != 2 {
		t.Fatalf("PruneSpent: got %d, %v, want 2 (expiries 1 and 2 min)", n, err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = MustOpenStoreAt(t, path)
	records := auditCount(t, s)

	for _, c := range []struct {
		name    string
		id      []byte
		expires time.Time
		want    error
	}{
		{"ForgottenID", tokenID(1), t0.Add(time.Minute), gateway.ErrTokenSpent},
		{"SameExpiryAsForgotten", tokenID(10), t0.Add(2 * time.Minute), gateway.ErrTokenSpent},
		{"EarlierExpiry", tokenID(11), t0.Add(-time.Hour), gateway.ErrTokenSpent},
		{"StillHeld", tokenID(3), t0.Add(3 * time.Minute), gateway.ErrTokenSpent},
		{"LaterExpiry", tokenID(12), t0.Add(2*time.Minute + time.Second), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			cm := newCommit("lane-2", c.name, c.id, gateway.ModeOffline, 100)
			cm.TokenExpires = c.expires
			err := s.CommitDecision(ctx, cm)
			if !errors.Is(err, c.want) {
				t.Fatalf("CommitDecision: got %v, want %v", err, c.want)
			}
			if c.want == nil {
				records++
			} else if d, _ := s.LookupDecision(ctx, cm.Key); d != nil {
				t.Fatal("a refused commit stored its decision")
			}
			if got := auditCount(t, s); got != records {
				t.Fatalf("audit records: got %d, want %d", got, records)
			}
		})
	}

	// A decision without a token (a payment code) is not affected.
	mustCommit(t, s, newDecline("lane-3", "code-1"))
}
