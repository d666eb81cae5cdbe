//go:build linux

package storecache_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"storegate/gateway"
	"storegate/internal/diskfault"
)

// The disk stops taking writes under an open store (full, or remounted
// read-only): every write fails as a whole and leaves nothing behind, reads
// go on, and once the disk takes writes again the same store works without a
// restart and its file is sound.
func TestStore_DiskRefusesWrites(t *testing.T) {
	if !diskfault.InChild(t) {
		return
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := MustOpenStoreAt(t, path)
	first := newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOffline, 100)
	mustCommit(t, s, first)

	// Only the two meta pages lie below the limit: every data page a
	// transaction writes fails.
	restore := diskfault.LimitFileSize(t, uint64(2*os.Getpagesize()))
	c := newCommit("lane-1", "txn-2", tokenID(2), gateway.ModeOffline, 200)
	wantCode(t, s.CommitDecision(ctx, c), gateway.EUNAVAILABLE)
	if d, err := s.LookupDecision(ctx, c.Key); err != nil || d != nil {
		t.Errorf("LookupDecision of the failed commit: got %v, %v, want nothing stored", d, err)
	}
	if spent, err := s.TokenSpent(ctx, tokenID(2)); err != nil || spent {
		t.Errorf("TokenSpent of the failed commit: got %v, %v, want false", spent, err)
	}
	if d, err := s.LookupDecision(ctx, first.Key); err != nil || d == nil {
		t.Errorf("LookupDecision of the earlier commit: got %v, %v, want it read", d, err)
	}
	if st := outboxStats(t, s); st.Depth != 1 || st.OfflineExposure != 100 {
		t.Errorf("outbox: got %+v, want the first settlement only", st)
	}
	if n := auditCount(t, s); n != 1 {
		t.Errorf("audit records: got %d, want 1", n)
	}
	if _, err := s.PruneSpent(ctx, t0.Add(time.Hour)); err == nil {
		t.Error("PruneSpent succeeded on a disk that takes no writes")
	}
	if err := s.AckSettlements(ctx, []gateway.SettlementAck{{ID: first.Settlement.ID, Status: gateway.SettlementAccepted}}); err == nil {
		t.Error("AckSettlements succeeded on a disk that takes no writes")
	}
	if _, err := s.SaveDocument(ctx, gateway.DocumentKeyset, 1, []byte("keyset")); err == nil {
		t.Error("SaveDocument succeeded on a disk that takes no writes")
	}
	if spent, _ := s.TokenSpent(ctx, tokenID(1)); !spent {
		t.Error("a failed prune forgot a spent id")
	}
	if st := outboxStats(t, s); st.Depth != 1 {
		t.Errorf("outbox depth after a failed ack: got %d, want 1", st.Depth)
	}

	restore()
	mustCommit(t, s, c)
	if n, err := s.VerifyAudit(ctx); err != nil || n != 2 {
		t.Errorf("VerifyAudit after recovery: got %d, %v, want 2, nil", n, err)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check after recovery: %v", err)
	}
	// Two transactions failed: the decision's and the acknowledgement's
	// (acknowledgements share the committer with decisions).
	if st := s.Stats(); st.FailedTransactions != 2 || st.Decisions != 2 {
		t.Errorf("Stats: got %+v, want 2 failed transactions and 2 decisions", st)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = MustOpenStoreAt(t, path)
	if d, _ := s.LookupDecision(ctx, c.Key); d == nil {
		t.Error("the decision committed after recovery is gone after a reopen")
	}
}
