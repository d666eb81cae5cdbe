package central_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/central/storetest"
	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

// Authorize over gRPC: the answer carries the ledger's decision, a replay
// its reason, and a malformed request is InvalidArgument.
func TestService_Authorize(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	tok := f.Mint(t, "acct-1")
	ctx := context.Background()

	res, err := f.Client.Authorize(ctx, wire.CentralRequestToProto(storetest.Sale(tok, "txn-1", 3_000)))
	if err != nil || !res.GetApproved() || res.GetAuthorizationId() == "" || res.GetAccount() != "acct-1" {
		t.Fatalf("Authorize: got %v, %v, want approved for acct-1 with an authorization id", res, err)
	}
	if got := f.MustBalance(t, "acct-1"); got != 7_000 {
		t.Errorf("balance: got %d, want 7000", got)
	}
	t.Run("Replayed", func(t *testing.T) {
		res, err := f.Client.Authorize(ctx, wire.CentralRequestToProto(storetest.Sale(tok, "txn-2", 3_000)))
		if err != nil || res.GetApproved() || res.GetReason() != storegatev1.DeclineReason_DECLINE_REASON_REPLAYED || res.GetMessage() == "" {
			t.Errorf("Authorize: got %v, %v, want declined REPLAYED with a message", res, err)
		}
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		req := storetest.Sale(f.Mint(t, "acct-1"), "txn-3", 100)
		req.Currency = "USD"
		_, err := f.Client.Authorize(ctx, wire.CentralRequestToProto(req))
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Errorf("got %v (%v), want InvalidArgument", got, err)
		}
	})
}

// SubmitSettlements over gRPC: each recorded settlement is acknowledged
// with its status, a reversal waiting for its capture is not, and a batch
// without a store is InvalidArgument.
func TestService_SubmitSettlements(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	ctx := context.Background()
	submit := func(stls ...gateway.Settlement) map[string]*storegatev1.SettlementAck {
		t.Helper()
		res, err := f.Client.SubmitSettlements(ctx, wire.SubmitSettlementsToProto("store-1", stls))
		if err != nil {
			t.Fatalf("SubmitSettlements: %v", err)
		}
		acks := make(map[string]*storegatev1.SettlementAck)
		for _, a := range res.GetAcks() {
			acks[a.GetSettlementId()] = a
		}
		return acks
	}
	acks := submit(storetest.OfflineCapture("stl-1", "acct-1", 4_000), storetest.OfflineCapture("stl-2", "acct-1", 1_000_000),
		storetest.Reversal("rev-9", "stl-9", 100))
	if len(acks) != 2 || acks["stl-1"].GetStatus() != accepted || acks["stl-2"].GetStatus() != refused || acks["stl-2"].GetMessage() == "" {
		t.Errorf("acks: got %v, want stl-1 accepted, stl-2 refused with why, and none for rev-9", acks)
	}
	if a := submit(storetest.OfflineCapture("stl-1", "acct-1", 4_000))["stl-1"]; a.GetStatus() != duplicate {
		t.Errorf("resend: got %v, want duplicate", a)
	}
	t.Run("ErrNoStore", func(t *testing.T) {
		_, err := f.Client.SubmitSettlements(ctx, wire.SubmitSettlementsToProto("", []gateway.Settlement{storetest.OfflineCapture("stl-x", "acct-1", 100)}))
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Errorf("got %v (%v), want InvalidArgument", got, err)
		}
	})
}
