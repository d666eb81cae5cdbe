//go:build linux

package grpcserver_test

import (
	"context"
	"os"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/internal/diskfault"
	storegatev1 "storegate/proto/storegate/v1"
)

// The disk stops taking writes while lanes pay. Central approves, but an
// approval whose commit cannot be written is never given: the POS gets
// Unavailable, nothing is stored, and the token is not spent. When the disk
// takes writes again the POS's retry is approved, once, under central's
// first authorization.
func TestServer_DiskRefusesWrites(t *testing.T) {
	if !diskfault.InChild(t) {
		return
	}
	ctx := context.Background()
	s := newAbuseStack(t)
	if res, err := s.payments.Authorize(ctx, request("1", "before", s.mint(t))); err != nil || res.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
		t.Fatalf("before the disk trouble: %v, %v; want approved", res, err)
	}
	tok, id := s.mintID(t)

	restore := diskfault.LimitFileSize(t, uint64(2*os.Getpagesize()))
	for _, req := range []*storegatev1.AuthorizeRequest{request("1", "disk-1", tok), request("2", "disk-2", tok)} {
		res, err := s.payments.Authorize(ctx, req)
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("Authorize %s/%s with the disk refusing writes: %v, %v; want Unavailable", req.Lane, req.PosTransactionId, res, err)
		}
	}
	if n, depth := s.stored(t); n != 1 || depth != 1 {
		t.Fatalf("with the disk refusing writes: %d audit records, outbox depth %d; want the first sale's only", n, depth)
	}
	if spent, err := s.store.TokenSpent(ctx, id); err != nil || spent {
		t.Fatalf("token spent = %v, %v, want not spent: nothing was committed", spent, err)
	}

	restore()
	res, err := s.payments.Authorize(ctx, request("1", "disk-1", tok))
	if err != nil || res.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED || res.GetReplayed() {
		t.Fatalf("the POS's retry once the disk is back: %v, %v; want a new approval", res, err)
	}
	if got := res.GetDecision().GetAuthorizationId(); got != "auth-2" {
		t.Fatalf("authorization id %q, want central's first answer for this sale, auth-2", got)
	}
	res, err = s.payments.Authorize(ctx, request("2", "disk-2", tok))
	if err != nil || res.GetDecision().GetReason() != storegatev1.DeclineReason_DECLINE_REASON_REPLAYED {
		t.Fatalf("the other lane's retry: %v, %v; want declined as replayed", res, err)
	}
	if n, depth := s.stored(t); n != 3 || depth != 2 {
		t.Fatalf("after recovery: %d audit records, outbox depth %d; want 3 and 2", n, depth)
	}
}
