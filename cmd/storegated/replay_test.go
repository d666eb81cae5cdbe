package main_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	storegatev1 "storegate/proto/storegate/v1"
)

// A token spent before the daemon restarts is refused after it by the
// gateway alone: HQ is down by then, so a gateway that had forgotten the
// token could only say central_unavailable.
func TestStoregated_ReplayAfterRestart(t *testing.T) {
	w := newWorld(t)
	tok := w.mint(t, w.keys.Token, "acct-0001", time.Now(), 2*time.Minute)
	first := w.authorize(t, sale("1", "pos-1", tok))
	if first.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
		t.Fatalf("first use: %v, want approved", first.GetDecision())
	}
	w.waitDrained(t)

	w.gw.stop()
	w.hq.stop()
	w.startGateway()

	fresh := w.mint(t, w.keys.Token, "acct-0001", time.Now(), 2*time.Minute)
	wantReason(t, w.authorize(t, sale("3", "pos-3", fresh)), storegatev1.DeclineReason_DECLINE_REASON_CENTRAL_UNAVAILABLE)
	wantReason(t, w.authorize(t, sale("2", "pos-2", tok)), storegatev1.DeclineReason_DECLINE_REASON_REPLAYED)
	again := w.authorize(t, sale("1", "pos-1", tok))
	if !again.GetReplayed() || again.GetDecision().GetSettlementId() != first.GetDecision().GetSettlementId() {
		t.Fatalf("the POS's retry after the restart: %v, want the stored approval", again)
	}
}

// Two POS terminals, each on its own connection, present the same token at
// the same moment, round after round: exactly one approval per token.
func TestStoregated_SameTokenTwoLanesAtOnce(t *testing.T) {
	w := newWorld(t)
	lanes := []storegatev1.PaymentServiceClient{
		storegatev1.NewPaymentServiceClient(dial(t, w.gw.addr)),
		storegatev1.NewPaymentServiceClient(dial(t, w.gw.addr)),
	}
	const rounds = 10
	for round := range rounds {
		tok := w.mint(t, w.keys.Token, "acct-0001", time.Now(), 2*time.Minute)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			res   [2]*storegatev1.AuthorizeResponse
			errs  [2]error
		)
		for i, pos := range lanes {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				<-start
				res[i], errs[i] = pos.Authorize(ctx, sale(fmt.Sprint(i+1), fmt.Sprintf("r%d-lane%d", round, i+1), tok))
			})
		}
		close(start)
		wg.Wait()
		approved := 0
		for i := range lanes {
			if errs[i] != nil {
				t.Fatalf("round %d lane %d: %v", round, i+1, errs[i])
			}
			switch d := res[i].GetDecision(); {
			case d.GetOutcome() == storegatev1.Outcome_OUTCOME_APPROVED:
				approved++
			case d.GetReason() != storegatev1.DeclineReason_DECLINE_REASON_REPLAYED:
				t.Fatalf("round %d lane %d: declined %v (%s), want replayed", round, i+1, d.GetReason(), d.GetMessage())
			}
		}
		if approved != 1 {
			t.Fatalf("round %d: %d approvals for one token, want exactly 1", round, approved)
		}
	}
	w.waitDrained(t)
	st, err := w.payments.GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
	if err != nil || st.GetAuditRecords() != 2*rounds {
		t.Fatalf("status %v, %v; want %d audited decisions", st, err, 2*rounds)
	}
}
