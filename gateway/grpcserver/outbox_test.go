package grpcserver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	"storegate/gateway/centralclient"
	"storegate/gateway/grpcserver"
	"storegate/hqkeys"
	storegatev1 "storegate/proto/storegate/v1"
	"storegate/storecache"
)

// offlineStack is a gateway with offline caps whose central service does
// not answer: nothing listens where it dials.
type offlineStack struct {
	payments storegatev1.PaymentServiceClient
	admin    storegatev1.AdminServiceClient
	store    *storecache.Store
	keys     *hqkeys.Keys
}

var offlineCaps = gateway.OfflineCaps{MaxAmountPerTransaction: 2000, MaxAmountPerAccount: 3000, MaxStoreExposure: 5000}

func newOfflineStack(t *testing.T) *offlineStack {
	t.Helper()
	dir := t.TempDir()
	keys := mustInitKeys(t, dir)
	// Nothing listens on port 1: every call to central is refused.
	conn, err := grpc.NewClient("127.0.0.1:1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	st := mustOpenStore(t, dir)
	gw := gateway.NewGateway("store-0001", st, centralclient.New(conn), keys.RootPublic)
	gw.CentralTimeout, gw.Offline = time.Second, gateway.FixedOffline{Caps: offlineCaps}
	if err := gw.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gw.ApplyKeyset(context.Background(), keys.Keyset); err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.NewServer(gw, st)
	return &offlineStack{payments: storegatev1.NewPaymentServiceClient(servePayments(t, srv)), admin: storegatev1.NewAdminServiceClient(serveAdmin(t, srv)), store: st, keys: keys}
}

func (s *offlineStack) mint(t *testing.T, account string) string {
	t.Helper()
	id, _ := gateway.NewTokenID()
	now := time.Now()
	tok, err := gateway.MintToken(s.keys.Token, gateway.Claims{Issuer: "hq", Account: account, IssuedAt: now, Expires: now.Add(time.Minute),
		TokenID: id, Device: "d", Assurance: 2, OfflineAllowance: 2000})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestServer_OfflineVisible(t *testing.T) {
	ctx := context.Background()
	s := newOfflineStack(t)
	var ids []string
	for i := range 4 {
		res, err := s.payments.Authorize(ctx, request("1", fmt.Sprint("t", i), s.mint(t, fmt.Sprintf("acct-000%d", i))))
		if err != nil {
			t.Fatal(err)
		}
		d := res.GetDecision()
		if d.GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED || d.GetMode() != storegatev1.DecisionMode_DECISION_MODE_OFFLINE {
			t.Fatalf("decision = %v, want APPROVED OFFLINE", d)
		}
		ids = append(ids, d.GetSettlementId())
	}
	if err := s.store.AckSettlements(ctx, []gateway.SettlementAck{{ID: ids[0], Status: gateway.SettlementRefused, Message: "insufficient funds"}}); err != nil {
		t.Fatal(err)
	}

	t.Run("GetStatus", func(t *testing.T) {
		st, err := s.payments.GetStatus(ctx, &storegatev1.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetCentralState() != storegatev1.CentralState_CENTRAL_STATE_OFFLINE || st.GetBreakerOpened() != 1 || st.GetCentralStateSince() == nil {
			t.Errorf("central state %v since %v, opened %d; want OFFLINE after the breaker opened once", st.GetCentralState(), st.GetCentralStateSince(), st.GetBreakerOpened())
		}
		if st.GetCentralReachable() || st.GetLastCentralContact() != nil {
			t.Errorf("central reachable %v, last contact %v; want false, never", st.GetCentralReachable(), st.GetLastCentralContact())
		}
		if st.GetOutboxDepth() != 3 || st.GetOfflineExposure() != 3*580 || st.GetDisputedSettlements() != 1 || st.GetOutboxOldestAge() == nil {
			t.Errorf("outbox depth %d exposure %d disputed %d oldest %v; want 3, %d, 1, an age", st.GetOutboxDepth(), st.GetOfflineExposure(), st.GetDisputedSettlements(), st.GetOutboxOldestAge(), 3*580)
		}
		if st.GetOfflineMaxAmountPerTransaction() != 2000 || st.GetOfflineMaxAmountPerAccount() != 3000 || st.GetOfflineMaxStoreExposure() != 5000 {
			t.Errorf("caps %d/%d/%d, want 2000/3000/5000", st.GetOfflineMaxAmountPerTransaction(), st.GetOfflineMaxAmountPerAccount(), st.GetOfflineMaxStoreExposure())
		}
	})
	t.Run("ListOutbox", func(t *testing.T) {
		res, err := s.admin.ListOutbox(ctx, &storegatev1.ListOutboxRequest{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetPendingTotal() != 3 || len(res.GetPending()) != 2 || res.GetDisputedTotal() != 1 || len(res.GetDisputed()) != 1 {
			t.Fatalf("listing = %v, want 2 of 3 pending and 1 disputed", res)
		}
		p := res.GetPending()[0]
		if p.GetSettlementId() != ids[1] || p.GetMode() != storegatev1.DecisionMode_DECISION_MODE_OFFLINE || p.GetKind() != storegatev1.SettlementKind_SETTLEMENT_KIND_CAPTURE ||
			p.GetAmount() != 580 || p.GetAccountHint() != "*****0001" || p.GetLane() != "1" || p.GetPosTransactionId() != "t1" {
			t.Errorf("first pending = %v, want %s: an offline capture of 580, masked account", p, ids[1])
		}
		if res.GetPending()[1].GetSettlementId() != ids[2] {
			t.Errorf("second pending = %s, want %s: queue order", res.GetPending()[1].GetSettlementId(), ids[2])
		}
		d := res.GetDisputed()[0]
		if d.GetSettlement().GetSettlementId() != ids[0] || d.GetMessage() != "insufficient funds" || d.GetRefusedAt() == nil {
			t.Errorf("disputed = %v, want %s refused with central's message", d, ids[0])
		}
		if strings.Contains(res.String(), "acct-000") {
			t.Errorf("listing names a full account id: %v", res)
		}
	})
	t.Run("ErrNegativeLimit", func(t *testing.T) {
		_, err := s.admin.ListOutbox(ctx, &storegatev1.ListOutboxRequest{Limit: -1})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("err = %v, want InvalidArgument", err)
		}
	})
}
