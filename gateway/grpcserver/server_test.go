package grpcserver_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"storegate/central"
	"storegate/gateway"
	"storegate/gateway/centralclient"
	"storegate/gateway/grpcserver"
	"storegate/hqkeys"
	storegatev1 "storegate/proto/storegate/v1"
	"storegate/storecache"
)

// serve starts a gRPC server on a loopback port and returns a client
// connection to it.
func serve(t *testing.T, register func(s *grpc.Server)) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// stack is a gateway behind its gRPC face, talking to the reference central
// service over loopback, each on bbolt files in t.TempDir().
type stack struct {
	payments  storegatev1.PaymentServiceClient
	admin     storegatev1.AdminServiceClient
	keys      *hqkeys.Keys
	ledger    *central.Ledger
	publisher *central.Publisher
	gw        *gateway.Gateway
}

func newStack(t *testing.T) *stack {
	t.Helper()
	dir := t.TempDir()
	keys, err := hqkeys.Init(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := central.OpenLedger(filepath.Join(dir, "central.db"), central.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ledger.Close() })
	if err := ledger.EnsureAccount("acct-0001", 100000); err != nil {
		t.Fatal(err)
	}
	pub, err := central.NewPublisher(ledger, keys.RootPublic)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	svc := central.NewService(ledger, pub, func() *gateway.Keyring { return keys.Keyring })
	hqConn := serve(t, func(s *grpc.Server) { storegatev1.RegisterCentralServiceServer(s, svc) })

	st, err := storecache.Open(filepath.Join(dir, "storegate.db"), storecache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Errorf("bbolt check: %v", err)
		}
		st.Close()
	})
	gw := &gateway.Gateway{StoreID: "store-0001", Store: st, Central: centralclient.New(hqConn), RootKey: keys.RootPublic, CentralTimeout: 5 * time.Second}
	if err := gw.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gw.ApplyKeyset(context.Background(), keys.Keyset); err != nil {
		t.Fatal(err)
	}
	srv := &grpcserver.Server{Gateway: gw, Store: st, StartedAt: time.Now()}
	conn := serve(t, func(s *grpc.Server) { srv.Register(s) })
	return &stack{payments: storegatev1.NewPaymentServiceClient(conn), admin: storegatev1.NewAdminServiceClient(conn),
		keys: keys, ledger: ledger, publisher: pub, gw: gw}
}

func (s *stack) mint(t *testing.T) string {
	t.Helper()
	id, _ := gateway.NewTokenID()
	now := time.Now()
	tok, err := gateway.MintToken(s.keys.Token, gateway.Claims{Issuer: "hq", Account: "acct-0001", IssuedAt: now, Expires: now.Add(time.Minute), TokenID: id, Device: "d", Assurance: 2})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func request(lane, txn, token string) *storegatev1.AuthorizeRequest {
	return &storegatev1.AuthorizeRequest{
		Lane: lane, PosTransactionId: txn, Currency: "JPY", Total: 580,
		Lines:      []*storegatev1.BasketLine{{Sku: "4901234567894", Category: "tobacco", Quantity: 1, UnitPrice: 580}},
		Credential: &storegatev1.AuthorizeRequest_Token{Token: token},
	}
}

// 100 lanes at once with one token, over gRPC, against the real central
// service: exactly one approval, and exactly one debit in central's books.
func TestServer_ConcurrentSameToken(t *testing.T) {
	s := newStack(t)
	tok := s.mint(t)
	var approved atomic.Int64
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.payments.Authorize(context.Background(), request(fmt.Sprint(i%8+1), fmt.Sprintf("t%d", i), tok))
			if err != nil {
				t.Error(err)
				return
			}
			if res.GetDecision().GetOutcome() == storegatev1.Outcome_OUTCOME_APPROVED {
				approved.Add(1)
			}
		}()
	}
	wg.Wait()
	if got := approved.Load(); got != 1 {
		t.Fatalf("approvals = %d, want exactly 1", got)
	}
	if bal, err := s.ledger.Balance("acct-0001"); err != nil || bal != 100000-580 {
		t.Fatalf("central balance = %d, %v; want one debit of 580", bal, err)
	}
}

func TestServer_Errors(t *testing.T) {
	s := newStack(t)
	t.Run("InvalidArgument", func(t *testing.T) {
		req := request("1", "t1", s.mint(t))
		req.Total = 1
		_, err := s.payments.Authorize(context.Background(), req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "total") {
			t.Fatalf("err = %v, want InvalidArgument naming the total", err)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		_, err := s.payments.Reverse(context.Background(), &storegatev1.ReverseRequest{Lane: "1", PosTransactionId: "never"})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("err = %v, want NotFound", err)
		}
	})
	t.Run("TokenNeverEchoed", func(t *testing.T) {
		tok := s.mint(t)
		res, err := s.payments.Authorize(context.Background(), request("1", "t2", tok))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.String(), tok) || strings.Contains(res.String(), "acct-0001") {
			t.Fatalf("response carries the token or the full account id: %v", res)
		}
		if res.GetDecision().GetAccountHint() != "*****0001" {
			t.Fatalf("account hint = %q, want *****0001", res.GetDecision().GetAccountHint())
		}
	})
}
