//go:build linux

package main_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"storegate/internal/diskfault"
	storegatev1 "storegate/proto/storegate/v1"
)

// The running daemon's disk stops taking writes (full, or remounted
// read-only): a payment that cannot be committed is Unavailable, never
// approved; the daemon keeps running and answering; and when the disk takes
// writes again the POS's retry is approved and settled once.
// waitHealth polls grpc.health.v1 until it reports want; the store probe runs
// every 100ms here, so 10s is a generous bound.
func waitHealth(t *testing.T, h healthpb.HealthClient, want healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	var got healthpb.HealthCheckResponse_ServingStatus
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		res, err := h.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "storegate.v1.PaymentService"})
		if err == nil {
			if got = res.GetStatus(); got == want {
				return
			}
		}
	}
	t.Fatalf("health = %v, want %v within 10s", got, want)
}

func TestStoregated_DiskRefusesWrites(t *testing.T) {
	w := newWorld(t, "--health-interval", "100ms")
	health := healthpb.NewHealthClient(dial(t, w.gw.addr))
	before := w.authorize(t, sale("1", "before", w.mint(t, w.keys.Token, "acct-0001", time.Now(), 2*time.Minute)))
	if before.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
		t.Fatalf("before the disk trouble: %v, want approved", before.GetDecision())
	}
	w.waitDrained(t)
	tok := w.mint(t, w.keys.Token, "acct-0001", time.Now(), 2*time.Minute)

	restore := diskfault.LimitProcessFileSize(t, w.gw.cmd.Process.Pid, uint64(2*os.Getpagesize()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, req := range []*storegatev1.AuthorizeRequest{sale("1", "disk-1", tok), sale("2", "disk-2", tok)} {
		if res, err := w.payments.Authorize(ctx, req); status.Code(err) != codes.Unavailable {
			t.Fatalf("Authorize %s/%s with the disk refusing writes: %v, %v; want Unavailable", req.Lane, req.PosTransactionId, res, err)
		}
	}
	st, err := w.payments.GetStatus(ctx, &storegatev1.GetStatusRequest{})
	if err != nil || st.GetAuditRecords() != 1 || st.GetOutboxDepth() != 0 {
		t.Fatalf("status with the disk refusing writes: %v, %v; want the daemon answering, 1 audit record, nothing queued", st, err)
	}
	if !strings.Contains(w.gw.log.String(), "commit transaction failed") {
		t.Fatalf("the daemon did not log the failed commit:\n%s", w.gw.log)
	}
	waitHealth(t, health, healthpb.HealthCheckResponse_NOT_SERVING)

	restore()
	waitHealth(t, health, healthpb.HealthCheckResponse_SERVING)
	res := w.authorize(t, sale("1", "disk-1", tok))
	if res.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED || res.GetReplayed() {
		t.Fatalf("the POS's retry once the disk is back: %v, want a new approval", res)
	}
	wantReason(t, w.authorize(t, sale("2", "disk-2", tok)), storegatev1.DeclineReason_DECLINE_REASON_REPLAYED)
	w.waitDrained(t)
	w.gw.stop()
	w.hq.stop()

	// Central debited the sale once, though it was asked twice.
	books := mustHQBooks(t, w.hqData)
	if a := books.Accounts["acct-0001"]; a.Debited != 2400 || a.Captured != 2400 || len(books.Settlements) != 2 {
		t.Fatalf("acct-0001 books %+v with %d settlements, want two sales of 1200 debited and captured once each", a, len(books.Settlements))
	}
}
