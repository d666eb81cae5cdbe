package grpcserver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"storegate/central"
	"storegate/gateway"
	"storegate/gateway/centralclient"
	"storegate/gateway/gatewaytest"
	"storegate/gateway/grpcserver"
	"storegate/hqkeys"
	storegatev1 "storegate/proto/storegate/v1"
)

// listenAndServe starts a gRPC server built with opts on a loopback port,
// registers its services, and returns its address; the server stops when
// the test ends.
func listenAndServe(t *testing.T, opts []grpc.ServerOption, register func(s grpc.ServiceRegistrar)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts...)
	register(s)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// serve starts a gRPC server on a loopback port and returns a client
// connection to it.
func serve(t *testing.T, register func(s grpc.ServiceRegistrar)) *grpc.ClientConn {
	t.Helper()
	return dialT(t, listenAndServe(t, nil, register))
}

// servePayments serves srv's PaymentService on a loopback port the way
// Open does (PaymentServerOptions, then opts), plaintext, and returns a
// client connection to it. srv takes callers without certificates as
// supervisors of its store.
func servePayments(t *testing.T, srv *grpcserver.Server, opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	srv.InsecureCallers = true
	return dialT(t, listenAndServe(t, append(srv.PaymentServerOptions(), opts...), srv.RegisterPayment))
}

// serveAdmin serves srv's AdminService on a unix socket in t.TempDir(), the
// way Open does (AdminServerOptions, then opts), and returns a client
// connection to it.
func serveAdmin(t *testing.T, srv *grpcserver.Server, opts ...grpc.ServerOption) *grpc.ClientConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := grpcserver.ListenAdminSocket(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(append(srv.AdminServerOptions(), opts...)...)
	srv.RegisterAdmin(s)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return dialT(t, "unix://"+path)
}

// dialT connects to target with plaintext credentials until the test ends.
func dialT(t *testing.T, target string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
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
	keys := mustInitKeys(t, dir)
	ledger := mustOpenLedger(t, dir)
	if err := ledger.EnsureAccount(context.Background(), "acct-0001", 100000); err != nil {
		t.Fatal(err)
	}
	pub := mustOpenPublisher(t, ledger, keys.RootPublic)
	svc := central.NewService(ledger, pub, func() *gateway.Keyring { return keys.Keyring })
	hqConn := serve(t, func(s grpc.ServiceRegistrar) { storegatev1.RegisterCentralServiceServer(s, svc) })

	st := mustOpenStore(t, dir)
	gw := gateway.NewGateway("store-0001", st, centralclient.New(hqConn), keys.RootPublic)
	gw.CentralTimeout = 5 * time.Second
	if err := gw.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gw.ApplyKeyset(context.Background(), keys.Keyset); err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.NewServer(gw, st)
	return &stack{payments: storegatev1.NewPaymentServiceClient(servePayments(t, srv)), admin: storegatev1.NewAdminServiceClient(serveAdmin(t, srv)),
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
	if bal, err := s.ledger.Balance(context.Background(), "acct-0001"); err != nil || bal != 100000-580 {
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
		_, err := s.payments.Reverse(context.Background(), &storegatev1.ReverseRequest{Lane: "1", PosTransactionId: "never", Reason: "returned"})
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

// opened is a Server opened on a loopback port 0 over a gateway whose
// central holds every decision until released.
type opened struct {
	srv     *grpcserver.Server
	central *gatewaytest.HeldCentral
	conn    *grpc.ClientConn
	admin   *grpc.ClientConn
	keys    *hqkeys.Keys
}

func openServer(t *testing.T) *opened {
	t.Helper()
	dir := t.TempDir()
	keys := mustInitKeys(t, dir)
	st := mustOpenStore(t, dir)
	hq := gatewaytest.NewHeldCentral(1)
	gw := gateway.NewGateway("store-0001", st, hq, keys.RootPublic)
	gw.CentralTimeout = time.Minute
	if err := gw.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gw.ApplyKeyset(context.Background(), keys.Keyset); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminPath := filepath.Join(dir, "admin.sock")
	adminLn, err := grpcserver.ListenAdminSocket(adminPath, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpcserver.NewServer(gw, st)
	srv.Listener, srv.AdminListener = ln, adminLn
	srv.Probe, srv.HealthInterval, srv.InsecureCallers = st.Probe, time.Hour, true
	if err := srv.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	return &opened{srv: srv, central: hq, conn: dialT(t, ln.Addr().String()), admin: dialT(t, "unix://"+adminPath), keys: keys}
}

func (o *opened) mint(t *testing.T) string {
	t.Helper()
	return (&stack{keys: o.keys}).mint(t)
}

// authorizeInFlight starts an Authorize and returns once it waits on
// central; the answer arrives on the channel.
func (o *opened) authorizeInFlight(t *testing.T, txn string) <-chan error {
	t.Helper()
	tok := o.mint(t)
	answer := make(chan error, 1)
	go func() {
		res, err := storegatev1.NewPaymentServiceClient(o.conn).Authorize(context.Background(), request("1", txn, tok))
		if err == nil && res.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
			err = fmt.Errorf("decision %v, want approved", res.GetDecision())
		}
		answer <- err
	}()
	select {
	case <-o.central.Entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the decision never reached central")
	}
	return answer
}

func TestServer_Open(t *testing.T) {
	o := openServer(t)
	ctx := context.Background()
	health := healthpb.NewHealthClient(o.conn)
	for _, svc := range append([]string{""}, grpcserver.ServedServices...) {
		if got := healthOf(t, health, svc); got != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v, want SERVING", svc, got)
		}
	}
	if !o.srv.Healthy() {
		t.Error("Healthy = false after Open, want true: the first probe wrote the store")
	}
	if st, err := storegatev1.NewPaymentServiceClient(o.conn).GetStatus(ctx, &storegatev1.GetStatusRequest{}); err != nil || st.GetStoreId() != "store-0001" {
		t.Fatalf("GetStatus = %v, %v; want store-0001", st, err)
	}
	stream, err := reflectionpb.NewServerReflectionClient(o.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range append([]string{"grpc.health.v1.Health"}, grpcserver.ServedServices...) {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, want %s among them", names, want)
		}
	}
	t.Run("ErrOpenTwice", func(t *testing.T) {
		if err := o.srv.Open(context.Background()); err == nil {
			t.Fatal("second Open: nil error, want one")
		}
	})
	t.Run("ErrNoProbe", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		srv := grpcserver.NewServer(nil, nil)
		srv.Listener = ln
		if err := srv.Open(context.Background()); err == nil {
			t.Fatal("Open without a Probe: nil error, want one")
		}
	})
	t.Run("ErrNoListener", func(t *testing.T) {
		srv := grpcserver.NewServer(nil, nil)
		srv.Probe = func(context.Context) error { return nil }
		if err := srv.Open(context.Background()); err == nil {
			t.Fatal("Open without a Listener: nil error, want one")
		}
	})
}

// Close says NOT_SERVING at once, refuses new calls, lets the decision in
// flight finish and ends a health watch.
func TestServer_CloseDrainsInFlight(t *testing.T) {
	o := openServer(t)
	watch, err := healthpb.NewHealthClient(o.conn).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := watch.Recv(); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before Close: %v, %v; want SERVING", res, err)
	}
	answer := o.authorizeInFlight(t, "pos-1")

	closed := make(chan error, 1)
	go func() { closed <- o.srv.Close(context.Background()) }()
	if res, err := watch.Recv(); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health after Close began: %v, %v; want NOT_SERVING", res, err)
	}
	if _, err := watch.Recv(); status.Code(err) == codes.OK {
		t.Fatalf("health watch after the grace: %v, want the stream ended", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v with a decision in flight", err)
	case err := <-answer:
		t.Fatalf("the decision was answered (%v) before central answered", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(o.central.Release)
	if err := <-answer; err != nil {
		t.Fatalf("in-flight decision: %v; want it finished and approved", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v, want nil: every call finished", err)
	}
	_, err = storegatev1.NewPaymentServiceClient(o.conn).GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("a call after Close: %v, want Unavailable", err)
	}
}

// A decision that outlives Close's context has its connection closed, and
// Close says so.
func TestServer_CloseDeadline(t *testing.T) {
	o := openServer(t)
	answer := o.authorizeInFlight(t, "pos-2")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := o.srv.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the deadline exceeded", err)
	}
	if err := <-answer; status.Code(err) != codes.Unavailable {
		t.Fatalf("the decision cut off by Close: %v, want Unavailable", err)
	}
	close(o.central.Release)
}
