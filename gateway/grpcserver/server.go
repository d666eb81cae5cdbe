package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/certs"
	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

// DefaultStreamGrace is how long open streams (health watchers above all)
// keep running at shutdown before they are ended, so that a watcher hears
// NOT_SERVING before its stream closes.
const DefaultStreamGrace = 500 * time.Millisecond

// ServedServices are the services of the POS listener whose health the
// server sets besides the whole server's ("").
var ServedServices = []string{
	storegatev1.PaymentService_ServiceDesc.ServiceName,
}

// Server serves PaymentService to the lanes and AdminService to the
// operators over a Gateway, on two listeners: Listener, the POS listener
// (PaymentService, grpc.health.v1 kept truthful by a HealthChecker over
// Probe, reflection), where every PaymentService call is bound to the caller
// its certificate names, and AdminListener, the admin socket (AdminService
// and reflection), a unix socket whose callers the kernel names.
// AdminService is never served on the POS listener. Create it with
// NewServer and set its exported fields; then Open serves both and Close
// drains and stops them. RegisterPayment and RegisterAdmin put one service
// on a grpc.Server of the caller's, which must then be built with
// PaymentServerOptions or AdminServerOptions: without their interceptors,
// every call is refused as unauthenticated.
type Server struct {
	storegatev1.UnimplementedPaymentServiceServer
	storegatev1.UnimplementedAdminServiceServer

	// Gateway decides.
	Gateway *gateway.Gateway
	// Store is read by ExportAudit.
	Store gateway.Store
	// Scans streams the lanes' scanners; nil when the gateway has none.
	Scans gateway.ScanFeed
	// Chain is the trust domain the callers' certificates must name
	// (certs.DevChain in development).
	Chain string
	// InsecureCallers treats every PaymentService caller that presents no
	// certificate as a supervisor of this store, named by its address: for
	// development and tests on loopback, never for a store's lanes. A
	// caller that presents a certificate is checked as ever.
	InsecureCallers bool
	// Version is the daemon's version, for GetStatus.
	Version string
	// StartedAt is when the daemon started, for GetStatus; NewServer sets
	// the time it was called.
	StartedAt time.Time
	// Now is the clock of GetStatus; NewServer sets time.Now.
	Now func() time.Time

	// Listener is the POS listener, where Open serves PaymentService; Open
	// requires it, and Close closes it.
	Listener net.Listener
	// AdminListener, when set, is the admin socket (ListenAdminSocket),
	// where Open serves AdminService; Close closes it.
	AdminListener net.Listener
	// Options are the gRPC settings Open serves with. Their Drain is
	// ignored: Open drains the streams itself at Close.
	Options Options
	// Probe writes to the store and returns once the write is durable
	// (storecache.Store.Probe); Open requires it. Health is SERVING while
	// it succeeds.
	Probe func(ctx context.Context) error
	// HealthInterval is the time between probes; NewServer sets
	// DefaultHealthInterval, and zero means it too.
	HealthInterval time.Duration
	// OnHealthChange, when set, is called with the new health whenever it
	// changes.
	OnHealthChange func(serving bool)
	// StreamGrace is how long Close lets open streams run before it ends
	// them; NewServer sets DefaultStreamGrace, and zero means it too.
	StreamGrace time.Duration
	// Logger receives the health checker's verdicts (as part "health") and,
	// unless Options.Logger is set, the recovered panics (as part "grpc");
	// NewServer sets one that discards them.
	Logger *slog.Logger

	grpc    *grpc.Server
	admin   *grpc.Server
	health  *health.Server
	checker *HealthChecker
	drain   chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// NewServer returns a server of gw's decisions that exports the audit log
// of store, with the default settings. It serves nothing until Open.
func NewServer(gw *gateway.Gateway, store gateway.Store) *Server {
	return &Server{
		Gateway:        gw,
		Store:          store,
		StartedAt:      time.Now(),
		Now:            time.Now,
		HealthInterval: DefaultHealthInterval,
		StreamGrace:    DefaultStreamGrace,
		Logger:         slog.New(slog.DiscardHandler),
	}
}

// RegisterPayment registers PaymentService on s, a server built with
// PaymentServerOptions.
func (srv *Server) RegisterPayment(s grpc.ServiceRegistrar) {
	storegatev1.RegisterPaymentServiceServer(s, srv)
}

// RegisterAdmin registers AdminService on s, a server built with
// AdminServerOptions.
func (srv *Server) RegisterAdmin(s grpc.ServiceRegistrar) {
	storegatev1.RegisterAdminServiceServer(s, srv)
}

// PaymentServerOptions returns the grpc.ServerOption values of the POS
// listener: Options.ServerOptions(), and the interceptors that bind each
// PaymentService call to its caller (a POS terminal acts on its own lane,
// a supervisor on any lane of this store, nobody else on any).
func (srv *Server) PaymentServerOptions() []grpc.ServerOption {
	return append(srv.Options.ServerOptions(),
		grpc.ChainUnaryInterceptor(srv.bindUnary),
		grpc.ChainStreamInterceptor(srv.bindStream))
}

// AdminServerOptions returns the grpc.ServerOption values of the admin
// socket: Options.ServerOptions() with PeerCredentials instead of
// Options.Creds, and the interceptors that take only callers the kernel
// names and log each call with its caller.
func (srv *Server) AdminServerOptions() []grpc.ServerOption {
	o := srv.Options
	o.Creds = PeerCredentials()
	o.Observer = nil
	return append(o.ServerOptions(),
		grpc.ChainUnaryInterceptor(srv.operatorUnary),
		grpc.ChainStreamInterceptor(srv.operatorStream))
}

// log is where the interceptors write: Options.Logger, else Logger as part
// "grpc", else nowhere.
func (srv *Server) log() *slog.Logger {
	switch {
	case srv.Options.Logger != nil:
		return srv.Options.Logger
	case srv.Logger != nil:
		return srv.Logger.With("part", "grpc")
	}
	return slog.New(slog.DiscardHandler)
}

// Open probes the store once under ctx, so that the first verdict is in
// before the first POS can ask, then serves PaymentService, grpc.health.v1
// and reflection on Listener and, when AdminListener is set, AdminService
// and reflection on it (a listener of ListenAdminSocket), in the
// background, and probes the store every HealthInterval. It returns an
// error, and serves nothing, when Listener or Probe is unset, Chain is not
// a valid trust domain while InsecureCallers is off, ctx ends during the
// first probe, or the server was opened before. Close stops it and closes
// the listeners.
func (srv *Server) Open(ctx context.Context) error {
	switch {
	case srv.Probe == nil:
		return errors.New("grpc server: a Probe is required, so that health tells the truth")
	case srv.Listener == nil:
		return errors.New("grpc server: a Listener is required")
	case !srv.InsecureCallers && !certs.ValidChain(srv.Chain):
		return fmt.Errorf("grpc server: chain %q is not a trust domain; no caller could be authenticated", srv.Chain)
	case srv.grpc != nil:
		return errors.New("grpc server: already opened")
	}
	ln := srv.Listener
	logger := srv.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	srv.health = health.NewServer()
	srv.checker = NewHealthChecker(srv.health, srv.Probe)
	srv.checker.Services = ServedServices
	if srv.HealthInterval > 0 {
		srv.checker.Interval = srv.HealthInterval
	}
	srv.checker.Logger = logger.With("part", "health")
	srv.checker.OnChange = srv.OnHealthChange
	srv.checker.Check(ctx)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("grpc server: first store probe: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	srv.cancel = cancel

	srv.drain = make(chan struct{})
	srv.Options.Drain = srv.drain
	if srv.Options.Logger == nil {
		srv.Options.Logger = logger.With("part", "grpc")
	}
	srv.grpc = grpc.NewServer(srv.PaymentServerOptions()...)
	srv.RegisterPayment(srv.grpc)
	healthpb.RegisterHealthServer(srv.grpc, srv.health)
	reflection.Register(srv.grpc)
	serve := func(s *grpc.Server, l net.Listener) {
		srv.wg.Add(1)
		go func() {
			defer srv.wg.Done()
			if err := s.Serve(l); err != nil {
				srv.Options.Logger.Error("grpc server stopped", "err", err)
			}
		}()
	}
	serve(srv.grpc, ln)
	if srv.AdminListener != nil {
		srv.admin = grpc.NewServer(srv.AdminServerOptions()...)
		srv.RegisterAdmin(srv.admin)
		reflection.Register(srv.admin)
		serve(srv.admin, srv.AdminListener)
	}
	srv.wg.Add(1)
	go func() {
		defer srv.wg.Done()
		srv.checker.Run(runCtx)
	}()
	return nil
}

// Healthy reports whether the store was recently written by the health
// checker (HealthChecker.Healthy); false before Open.
func (srv *Server) Healthy() bool {
	return srv.checker != nil && srv.checker.Healthy()
}

// Close stops serving in the order a POS can live with: health goes
// NOT_SERVING so that a POS or load balancer that watches it stops sending,
// new calls are refused, unary calls in flight (a decision commits before it
// answers) finish until ctx ends, and open streams end after StreamGrace.
// When ctx ends first, the remaining calls' connections are closed and Close
// returns an error saying so; the server is stopped either way. Close before
// Open does nothing, and a second Close returns the first one's error.
func (srv *Server) Close(ctx context.Context) error {
	if srv.grpc == nil {
		return nil
	}
	srv.closeOnce.Do(func() { srv.closeErr = srv.shutdown(ctx) })
	return srv.closeErr
}

func (srv *Server) shutdown(ctx context.Context) error {
	srv.health.Shutdown()
	servers := []*grpc.Server{srv.grpc}
	if srv.admin != nil {
		servers = append(servers, srv.admin)
	}
	stopped := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, s := range servers {
			wg.Go(s.GracefulStop)
		}
		wg.Wait()
		close(stopped)
	}()
	grace := srv.StreamGrace
	if grace <= 0 {
		grace = DefaultStreamGrace
	}
	// New calls are refused from here on; unary calls in flight finish.
	// Streams would hold GracefulStop forever: they end after a moment's
	// grace.
	t := time.NewTimer(grace)
	select {
	case <-stopped:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	close(srv.drain)
	var err error
	select {
	case <-stopped:
	case <-ctx.Done():
		for _, s := range servers {
			s.Stop()
		}
		<-stopped
		err = fmt.Errorf("grpc server: in-flight calls did not finish in time; their connections were closed: %w", ctx.Err())
	}
	srv.cancel()
	srv.wg.Wait()
	return err
}

// Authorize decides a basket.
func (srv *Server) Authorize(ctx context.Context, in *storegatev1.AuthorizeRequest) (*storegatev1.AuthorizeResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, wire.Status(err)
	}
	req := wire.AuthorizeRequestFromProto(in)
	req.Caller = c
	res, err := srv.Gateway.Authorize(ctx, req)
	if err != nil {
		return nil, wire.Status(err)
	}
	return wire.AuthorizeResultToProto(res), nil
}

// Reverse reverses an approved sale, for its lane's POS or a supervisor.
func (srv *Server) Reverse(ctx context.Context, in *storegatev1.ReverseRequest) (*storegatev1.ReverseResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, wire.Status(err)
	}
	req := wire.ReverseRequestFromProto(in)
	req.Caller = c
	res, err := srv.Gateway.Reverse(ctx, req)
	if err != nil {
		return nil, wire.Status(err)
	}
	return wire.ReverseResultToProto(res), nil
}

// GetStatus reports the gateway's state, to any POS terminal or supervisor
// of the store.
func (srv *Server) GetStatus(ctx context.Context, _ *storegatev1.GetStatusRequest) (*storegatev1.GetStatusResponse, error) {
	if _, err := callerFrom(ctx); err != nil {
		return nil, wire.Status(err)
	}
	st, err := srv.Gateway.Status(ctx)
	if err != nil {
		return nil, wire.Status(err)
	}
	now := time.Now
	if srv.Now != nil {
		now = srv.Now
	}
	out := wire.GatewayStatusToProto(st, now())
	out.Version = srv.Version
	out.StartedAt = timestamppb.New(srv.StartedAt)
	if srv.Scans != nil {
		for _, sc := range srv.Scans.Scanners() {
			out.Scanners = append(out.Scanners, wire.ScannerToProto(sc))
		}
	}
	return out, nil
}

// WatchScans streams a lane's scans to its POS. Payment credentials travel
// only as a scan id and a masked fingerprint.
func (srv *Server) WatchScans(in *storegatev1.WatchScansRequest, stream grpc.ServerStreamingServer[storegatev1.WatchScansResponse]) error {
	if c, err := callerFrom(stream.Context()); err != nil {
		return wire.Status(err)
	} else if err := srv.checkLane(c, in); err != nil {
		return wire.Status(err)
	}
	if srv.Scans == nil {
		return status.Error(codes.FailedPrecondition, "this gateway has no scanners configured")
	}
	if !gateway.ValidID(in.GetLane()) {
		return status.Error(codes.InvalidArgument, "lane: malformed")
	}
	events, err := srv.Scans.WatchScans(stream.Context(), in.GetLane())
	if err != nil {
		return wire.Status(err)
	}
	// Headers go out once the subscription exists, so a client that waits
	// for them knows no scan from now on can be missed.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for ev := range events {
		if err := stream.Send(&storegatev1.WatchScansResponse{Scan: wire.ScanToProto(ev)}); err != nil {
			return err
		}
	}
	return stream.Context().Err()
}

// ApplyKeyset installs a keyset signed by the root key.
func (srv *Server) ApplyKeyset(ctx context.Context, in *storegatev1.ApplyKeysetRequest) (*storegatev1.ApplyKeysetResponse, error) {
	if err := operatorFrom(ctx); err != nil {
		return nil, err
	}
	version, changed, err := srv.Gateway.ApplyKeyset(ctx, in.GetDocument().GetCoseSign1())
	if err != nil {
		return nil, wire.Status(err)
	}
	return &storegatev1.ApplyKeysetResponse{Applied: wire.AppliedToProto(gateway.DocumentKeyset, version, changed)}, nil
}

// ExportAudit streams the audit log as stored, full account ids included,
// so the client verifies the chain itself: to operators only.
func (srv *Server) ExportAudit(in *storegatev1.ExportAuditRequest, stream grpc.ServerStreamingServer[storegatev1.ExportAuditResponse]) error {
	ctx := stream.Context()
	if err := operatorFrom(ctx); err != nil {
		return err
	}
	from := max(in.GetFromSeq(), 1)
	// Records are copied out in pages and sent outside the read
	// transaction, so that a slow client never holds the store open.
	const page = 256
	for {
		var recs []*storegatev1.AuditRecord
		err := srv.Store.ScanAudit(ctx, from, func(seq uint64, raw []byte) error {
			if len(recs) == page {
				return errStopScan
			}
			recs = append(recs, wire.AuditRecordToProto(seq, raw))
			return nil
		})
		if err != nil && err != errStopScan {
			return wire.Status(err)
		}
		for _, r := range recs {
			if err := stream.Send(&storegatev1.ExportAuditResponse{Record: r}); err != nil {
				return err
			}
		}
		if len(recs) < page {
			return nil
		}
		from = recs[len(recs)-1].Seq + 1
	}
}
