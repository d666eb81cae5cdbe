package grpcserver_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	"storegate/gateway/grpcserver"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

// fakePayments answers PaymentService calls with the functions it holds.
type fakePayments struct {
	storegatev1.UnimplementedPaymentServiceServer
	authorize func(ctx context.Context, in *storegatev1.AuthorizeRequest) (*storegatev1.AuthorizeResponse, error)
	getStatus func(ctx context.Context) (*storegatev1.GetStatusResponse, error)
}

func (f *fakePayments) Authorize(ctx context.Context, in *storegatev1.AuthorizeRequest) (*storegatev1.AuthorizeResponse, error) {
	return f.authorize(ctx, in)
}

func (f *fakePayments) GetStatus(ctx context.Context, _ *storegatev1.GetStatusRequest) (*storegatev1.GetStatusResponse, error) {
	return f.getStatus(ctx)
}

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu     sync.Mutex
	calls  []wire.AuthorizeObservation
	panics []string
}

func (r *recorder) ObserveAuthorize(o wire.AuthorizeObservation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, o)
}

func (r *recorder) ObservePanic(method string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.panics = append(r.panics, method)
}

// lockedBuffer is a log sink the server writes while the test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serveFake serves f with the daemon's options on a loopback port.
func serveFake(t *testing.T, opts grpcserver.Options, f *fakePayments) storegatev1.PaymentServiceClient {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opts.ServerOptions()...)
	storegatev1.RegisterPaymentServiceServer(s, f)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(4<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return storegatev1.NewPaymentServiceClient(conn)
}

func TestOptions_RecoversPanic(t *testing.T) {
	rec := &recorder{}
	logs := &lockedBuffer{}
	tok := "SGP1:6BFOXN*TS0BI$ZDFRH%7QDN*Q4I"
	calls := 0
	f := &fakePayments{getStatus: func(ctx context.Context) (*storegatev1.GetStatusResponse, error) {
		calls++
		if calls == 1 {
			panic("handler bug while holding " + tok)
		}
		return &storegatev1.GetStatusResponse{StoreId: "s1"}, nil
	}}
	client := serveFake(t, grpcserver.Options{Observer: rec, Logger: slog.New(slog.NewJSONHandler(logs, nil))}, f)

	_, err := client.GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
	if status.Code(err) != codes.Internal {
		t.Fatalf("panicking call: %v, want Internal", err)
	}
	res, err := client.GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
	if err != nil || res.GetStoreId() != "s1" {
		t.Fatalf("the call after the panic: %v, %v; want served", res, err)
	}
	if want := storegatev1.PaymentService_GetStatus_FullMethodName; len(rec.panics) != 1 || rec.panics[0] != want {
		t.Fatalf("panics observed = %q, want [%s]", rec.panics, want)
	}
	log := logs.String()
	if !strings.Contains(log, "handler panicked") || !strings.Contains(log, storegatev1.PaymentService_GetStatus_FullMethodName) {
		t.Fatalf("log does not name the panic and its method:\n%s", log)
	}
	if strings.Contains(log, tok) || !strings.Contains(log, gateway.Fingerprint(tok)) {
		t.Fatalf("log shows the token instead of its fingerprint:\n%s", log)
	}
}

func TestOptions_DefaultDeadline(t *testing.T) {
	var got time.Duration
	var had bool
	f := &fakePayments{getStatus: func(ctx context.Context) (*storegatev1.GetStatusResponse, error) {
		var dl time.Time
		dl, had = ctx.Deadline()
		got = time.Until(dl)
		return &storegatev1.GetStatusResponse{}, nil
	}}
	client := serveFake(t, grpcserver.Options{CallTimeout: 3 * time.Second}, f)
	t.Run("NoneSent", func(t *testing.T) {
		if _, err := client.GetStatus(context.Background(), &storegatev1.GetStatusRequest{}); err != nil {
			t.Fatal(err)
		}
		if !had || got <= 2*time.Second || got > 3*time.Second {
			t.Fatalf("handler deadline in %s (set %v), want about 3s", got, had)
		}
	})
	t.Run("ClientsKept", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.GetStatus(ctx, &storegatev1.GetStatusRequest{}); err != nil {
			t.Fatal(err)
		}
		if got <= 20*time.Second {
			t.Fatalf("handler deadline in %s, want the client's 30s", got)
		}
	})
}

func TestOptions_MaxMessageSize(t *testing.T) {
	f := &fakePayments{authorize: func(context.Context, *storegatev1.AuthorizeRequest) (*storegatev1.AuthorizeResponse, error) {
		return &storegatev1.AuthorizeResponse{}, nil
	}}
	client := serveFake(t, grpcserver.Options{}, f)
	req := request("1", "big", strings.Repeat("A", grpcserver.DefaultMaxRecvMsgSize))
	if _, err := client.Authorize(context.Background(), req); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a request over %d bytes: %v, want ResourceExhausted", grpcserver.DefaultMaxRecvMsgSize, err)
	}
	if _, err := client.Authorize(context.Background(), request("1", "small", "SGP1:AB")); err != nil {
		t.Fatalf("a small request: %v", err)
	}
}

func TestOptions_ObservesAuthorize(t *testing.T) {
	rec := &recorder{}
	f := &fakePayments{authorize: func(_ context.Context, in *storegatev1.AuthorizeRequest) (*storegatev1.AuthorizeResponse, error) {
		switch in.GetPosTransactionId() {
		case "ok":
			return &storegatev1.AuthorizeResponse{Decision: &storegatev1.Decision{
				Outcome: storegatev1.Outcome_OUTCOME_APPROVED, Mode: storegatev1.DecisionMode_DECISION_MODE_ONLINE}}, nil
		case "replay":
			return &storegatev1.AuthorizeResponse{Replayed: true, Decision: &storegatev1.Decision{
				Outcome: storegatev1.Outcome_OUTCOME_DECLINED, Reason: storegatev1.DeclineReason_DECLINE_REASON_REPLAYED, Mode: storegatev1.DecisionMode_DECISION_MODE_LOCAL}}, nil
		default:
			return nil, status.Error(codes.InvalidArgument, "bad basket")
		}
	}}
	client := serveFake(t, grpcserver.Options{Observer: rec}, f)
	for _, txn := range []string{"ok", "replay", "bad"} {
		client.Authorize(context.Background(), request("1", txn, "SGP1:AB"))
	}
	want := []wire.AuthorizeObservation{
		{Code: codes.OK, Outcome: "approved", Reason: "none", Mode: "online"},
		{Code: codes.OK, Outcome: "declined", Reason: "replayed", Mode: "local", Replayed: true},
		{Code: codes.InvalidArgument},
	}
	if len(rec.calls) != len(want) {
		t.Fatalf("observed %d calls, want %d: %+v", len(rec.calls), len(want), rec.calls)
	}
	for i, w := range want {
		got := rec.calls[i]
		if got.Took <= 0 {
			t.Errorf("call %d: duration %s, want > 0", i, got.Took)
		}
		got.Took = 0
		if got != w {
			t.Errorf("call %d: got %+v, want %+v", i, got, w)
		}
	}
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, gone string }{
		{"token SGP1:6BFOXN*TS0BI$ZDFRH%7QDN*Q4I at lane 1", "SGP1:6BFOXN"},
		{"code 12345678901234567 scanned", "12345678901234567"},
	} {
		got := grpcserver.Redact(c.in)
		if strings.Contains(got, c.gone) || !strings.Contains(got, "fp=") {
			t.Errorf("Redact(%q) = %q, want the credential replaced by its fingerprint", c.in, got)
		}
	}
	if got := grpcserver.Redact("lane 12 txn pos-1001"); got != "lane 12 txn pos-1001" {
		t.Errorf("Redact changed text without a credential: %q", got)
	}
}

func TestOptions_DrainEndsStreams(t *testing.T) {
	drain := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpcserver.Options{Drain: drain}.ServerOptions()...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	watch, err := healthpb.NewHealthClient(conn).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := watch.Recv(); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first watch answer: %v, %v; want SERVING", res, err)
	}
	stopped := make(chan struct{})
	go func() { s.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("GracefulStop returned with a watch open before Drain: the test proves nothing")
	case <-time.After(200 * time.Millisecond):
	}
	close(drain)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("GracefulStop still waits for the watch 5s after Drain was closed")
	}
}
