package central_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"storegate/central"
	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// MustOpenLedger opens a ledger at path and, at cleanup, checks the bbolt
// file and that the books balance, then closes it.
func MustOpenLedger(t testing.TB, path string) *central.Ledger {
	t.Helper()
	l := central.NewLedger(path)
	if err := l.Open(context.Background()); err != nil {
		t.Fatalf("Open ledger: %v", err)
	}
	t.Cleanup(func() { MustClose(t, l) })
	return l
}

// MustClose checks a ledger's file and that its books balance, then closes
// it.
func MustClose(t testing.TB, l *central.Ledger) {
	t.Helper()
	if err := l.Check(); err != nil {
		t.Errorf("ledger Check: %v", err)
	}
	books, err := l.Books()
	if err != nil {
		t.Errorf("Books: %v", err)
	} else if err := books.Verify(); err != nil {
		t.Errorf("books do not balance:\n%v", err)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// MustOpenPublisher opens a publisher over l trusting root, and closes it at
// cleanup.
func MustOpenPublisher(t testing.TB, l *central.Ledger, root ed25519.PublicKey) *central.Publisher {
	t.Helper()
	p := central.NewPublisher(l, root)
	if err := p.Open(context.Background()); err != nil {
		t.Fatalf("Open publisher: %v", err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

// fixture is a central service over a real ledger, served over a loopback
// listener, with a token-signing key the service trusts.
type fixture struct {
	Ledger    *central.Ledger
	Publisher *central.Publisher
	Service   *central.Service
	Client    storegatev1.CentralServiceClient
	// Admin is HQ's administration client, served beside Client.
	Admin    storegatev1.HQAdminServiceClient
	TokenKey ed25519.PrivateKey
	// RootKey is HQ's root key, which the publisher trusts.
	RootKey ed25519.PrivateKey
	Keyring *gateway.Keyring
	// Now is the service's clock, fixed for the test.
	Now time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{Now: time.Now().Truncate(time.Second)}
	f.Ledger = MustOpenLedger(t, filepath.Join(t.TempDir(), "central.db"))

	pub, priv, err := gateway.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f.TokenKey = priv
	f.Keyring, err = gateway.NewKeyring(1, []gateway.TrustedKey{{ID: gateway.KeyID(pub), Public: pub, Use: gateway.KeyUseToken}})
	if err != nil {
		t.Fatal(err)
	}

	rootPub, rootKey, err := gateway.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f.RootKey = rootKey
	f.Publisher = central.NewPublisher(f.Ledger, rootPub)
	if err := f.Publisher.Open(context.Background()); err != nil {
		t.Fatalf("Open publisher: %v", err)
	}
	f.Service = central.NewService(f.Ledger, f.Publisher, func() *gateway.Keyring { return f.Keyring })
	f.Service.Now = func() time.Time { return f.Now }

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	storegatev1.RegisterCentralServiceServer(srv, f.Service)
	storegatev1.RegisterHQAdminServiceServer(srv, central.NewAdminService(f.Publisher, f.Ledger))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(lis); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		f.Publisher.Close(context.Background())
		srv.Stop()
		<-done
	})

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	f.Client = storegatev1.NewCentralServiceClient(conn)
	f.Admin = storegatev1.NewHQAdminServiceClient(conn)
	return f
}

// MustBookADay opens acct-1 with 10000 and books a day of its sales: a hold
// of 1000 never captured (txn-1), a sale of 2000 captured as stl-2, an
// offline capture of 3000 reversed (stl-3 by rev-3), and an offline capture
// refused for want of funds (stl-4). It returns the held and the captured
// authorization ids.
func (f *fixture) MustBookADay(t testing.TB) (held, captured string) {
	t.Helper()
	f.MustAccount(t, "acct-1", 10_000)
	held = f.MustApprove(t, sale(f.Mint(t, "acct-1"), "txn-1", 1_000)).GetAuthorizationId()
	captured = f.MustApprove(t, sale(f.Mint(t, "acct-1"), "txn-2", 2_000)).GetAuthorizationId()
	wantStatus(t, f.MustSubmit(t, capture("stl-2", captured, "acct-1", 2_000)), "stl-2", accepted)
	wantStatus(t, f.MustSubmit(t, offlineCapture("stl-3", "acct-1", 3_000)), "stl-3", accepted)
	wantStatus(t, f.MustSubmit(t, reversal("rev-3", "stl-3", 3_000)), "rev-3", accepted)
	wantStatus(t, f.MustSubmit(t, offlineCapture("stl-4", "acct-1", 1_000_000)), "stl-4", refused)
	return held, captured
}

// MustAccount creates an account with a balance.
func (f *fixture) MustAccount(t testing.TB, id string, balance int64) {
	t.Helper()
	if err := f.Ledger.SetAccount(id, balance); err != nil {
		t.Fatalf("SetAccount(%s): %v", id, err)
	}
}

// MustBalance returns an account's balance.
func (f *fixture) MustBalance(t testing.TB, id string) int64 {
	t.Helper()
	b, err := f.Ledger.Balance(id)
	if err != nil {
		t.Fatalf("Balance(%s): %v", id, err)
	}
	return b
}

// Mint returns a fresh token for account, issued 10 s ago and valid for
// 60 s more, signed by the fixture's token key.
func (f *fixture) Mint(t testing.TB, account string) string {
	t.Helper()
	return f.MintAt(t, f.TokenKey, account, f.Now.Add(-10*time.Second), f.Now.Add(60*time.Second))
}

// MintAt returns a token for account with the given key and times.
func (f *fixture) MintAt(t testing.TB, key ed25519.PrivateKey, account string, iat, exp time.Time) string {
	t.Helper()
	id, err := gateway.NewTokenID()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := gateway.MintToken(key, gateway.Claims{
		Issuer: "hq", Account: account, IssuedAt: iat, Expires: exp,
		TokenID: id, Device: "phone-1", Assurance: gateway.AssuranceDeviceBound,
	})
	if err != nil {
		t.Fatalf("MintToken: %v", err)
	}
	return tok
}

// sale returns a well-formed request for amount at store-1, lane-1.
func sale(token, txn string, amount int64) *storegatev1.CentralServiceAuthorizeRequest {
	return &storegatev1.CentralServiceAuthorizeRequest{
		StoreId: "store-1", Lane: "lane-1", PosTransactionId: txn,
		Token: token, Amount: amount, Currency: "JPY",
	}
}

// MustAuthorize calls Authorize and fails the test on a gRPC error.
func (f *fixture) MustAuthorize(t testing.TB, req *storegatev1.CentralServiceAuthorizeRequest) *storegatev1.CentralServiceAuthorizeResponse {
	t.Helper()
	resp, err := f.Client.Authorize(context.Background(), req)
	if err != nil {
		t.Fatalf("Authorize(%s/%s): %v", req.GetLane(), req.GetPosTransactionId(), err)
	}
	return resp
}

// MustApprove authorizes req and fails the test unless it is approved.
func (f *fixture) MustApprove(t testing.TB, req *storegatev1.CentralServiceAuthorizeRequest) *storegatev1.CentralServiceAuthorizeResponse {
	t.Helper()
	resp := f.MustAuthorize(t, req)
	if !resp.GetApproved() {
		t.Fatalf("Authorize(%s): declined %v (%s), want approved", req.GetPosTransactionId(), resp.GetReason(), resp.GetMessage())
	}
	return resp
}

// MustSubmit submits settlements from store-1 and returns the acks by
// settlement id.
func (f *fixture) MustSubmit(t testing.TB, stls ...*storegatev1.Settlement) map[string]*storegatev1.SettlementAck {
	t.Helper()
	resp, err := f.Client.SubmitSettlements(context.Background(), &storegatev1.SubmitSettlementsRequest{StoreId: "store-1", Settlements: stls})
	if err != nil {
		t.Fatalf("SubmitSettlements: %v", err)
	}
	acks := make(map[string]*storegatev1.SettlementAck)
	for _, a := range resp.GetAcks() {
		if _, dup := acks[a.GetSettlementId()]; dup {
			t.Fatalf("SubmitSettlements: two acks for %q", a.GetSettlementId())
		}
		acks[a.GetSettlementId()] = a
	}
	return acks
}

// wantStatus fails the test unless the ack for id has the status want.
func wantStatus(t testing.TB, acks map[string]*storegatev1.SettlementAck, id string, want storegatev1.SettlementStatus) *storegatev1.SettlementAck {
	t.Helper()
	a, ok := acks[id]
	if !ok {
		t.Fatalf("no ack for %s, want %v", id, want)
	}
	if got := a.GetStatus(); got != want {
		t.Fatalf("ack %s: got %v (%q), want %v", id, got, a.GetMessage(), want)
	}
	return a
}

// capture returns a capture settlement of store-1.
func capture(id, authID, account string, amount int64) *storegatev1.Settlement {
	return &storegatev1.Settlement{
		Id: id, StoreId: "store-1", Kind: storegatev1.SettlementKind_SETTLEMENT_KIND_CAPTURE,
		Lane: "lane-1", PosTransactionId: "txn-" + id, AuthorizationId: authID,
		Account: account, Amount: amount, Currency: "JPY",
		Mode: storegatev1.DecisionMode_DECISION_MODE_ONLINE,
	}
}

// offlineCapture returns a capture the store approved offline, with a token
// id derived from its id (a resend carries the same one).
func offlineCapture(id, account string, amount int64) *storegatev1.Settlement {
	s := capture(id, "", account, amount)
	s.Mode = storegatev1.DecisionMode_DECISION_MODE_OFFLINE
	sum := sha256.Sum256([]byte("token of " + id))
	s.TokenId = sum[:gateway.TokenIDSize]
	return s
}

// reversal returns a reversal of the capture capID.
func reversal(id, capID string, amount int64) *storegatev1.Settlement {
	return &storegatev1.Settlement{
		Id: id, StoreId: "store-1", Kind: storegatev1.SettlementKind_SETTLEMENT_KIND_REVERSAL,
		Lane: "lane-1", PosTransactionId: "txn-" + capID, Amount: amount, Currency: "JPY",
		ReversesId: capID,
	}
}

// txn returns the i-th POS transaction id.
func txn(i int) string { return fmt.Sprintf("txn-%04d", i) }
