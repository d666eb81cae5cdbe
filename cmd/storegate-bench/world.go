package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"storegate/central"
	"storegate/central/boltstore"
	"storegate/gateway"
	"storegate/gateway/centralclient"
	"storegate/gateway/grpcserver"
	"storegate/hqkeys"
	storegatev1 "storegate/proto/storegate/v1"
	"storegate/storecache"
)

// Figures of the harness's world.
const (
	benchStoreID = "store-0001"
	// accountBalance funds each account at central far beyond what a run
	// can spend, so that no payment is declined for funds.
	accountBalance int64 = 1 << 50
	// offlineAllowance is the "ofl" claim of every token the harness mints.
	offlineAllowance int64 = 10_000
	// basketTotal is the total of basketLines.
	basketTotal int64 = 1_200
)

// basketLines is every sale's basket: two lines, like a real small sale.
var basketLines = []*storegatev1.BasketLine{
	{Sku: "4901234567894", Category: "food", Quantity: 2, UnitPrice: 300},
	{Sku: "4909876543210", Category: "drink", Quantity: 1, UnitPrice: 600},
}

// accountID names the harness's i-th account at central.
func accountID(i int) string { return fmt.Sprintf("acct-%04d", i) }

// hq is the reference central service on a loopback listener, over a ledger
// in its own bbolt file (durable, as storegate-hq runs it).
type hq struct {
	keys    *hqkeys.Keys
	keysDir string
	ledger  *central.Ledger
	pub     *central.Publisher
	srv     *grpc.Server
	addr    string
	served  chan struct{}
}

// startHQ makes HQ's keys in dir/keys, opens dir/central.db, funds accounts
// accounts, and serves CentralService on 127.0.0.1.
func startHQ(dir string, accounts int) (*hq, error) {
	h := &hq{keysDir: filepath.Join(dir, "keys"), served: make(chan struct{})}
	var err error
	if h.keys, err = hqkeys.Init(h.keysDir); err != nil {
		return nil, err
	}
	ctx := context.Background()
	h.ledger = central.NewLedger(boltstore.New(filepath.Join(dir, "central.db")))
	if err := h.ledger.Open(ctx); err != nil {
		return nil, err
	}
	for i := range accounts {
		if err := h.ledger.EnsureAccount(ctx, accountID(i), accountBalance); err != nil {
			h.ledger.Close(ctx)
			return nil, err
		}
	}
	h.pub = central.NewPublisher(h.ledger, h.keys.RootPublic)
	if err := h.pub.Open(ctx); err != nil {
		h.ledger.Close(ctx)
		return nil, err
	}
	svc := central.NewService(h.ledger, h.pub, func() *gateway.Keyring { return h.keys.Keyring })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.pub.Close(ctx)
		h.ledger.Close(ctx)
		return nil, err
	}
	h.addr = lis.Addr().String()
	h.srv = grpc.NewServer()
	storegatev1.RegisterCentralServiceServer(h.srv, svc)
	go func() {
		defer close(h.served)
		_ = h.srv.Serve(lis)
	}()
	return h, nil
}

// Close stops serving and closes the ledger.
func (h *hq) Close() {
	h.pub.Close(context.Background())
	h.srv.Stop()
	<-h.served
	h.ledger.Close(context.Background())
}

// store is one gateway wired as cmd/storegated wires it: storecache on a
// bbolt file (fsync on), the decision, the forwarder, and the gRPC face with
// grpc.health.v1 on a loopback listener.
type store struct {
	st      *storecache.Store
	gw      *gateway.Gateway
	fwd     *gateway.Forwarder
	conn    *grpc.ClientConn // to central
	srv     *grpc.Server
	addr    string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	offline bool
}

// storeOptions say how startStore wires a gateway.
type storeOptions struct {
	// CentralAddr is where the gateway finds central.
	CentralAddr string
	// CentralTimeout bounds each call to central; zero is the gateway's
	// default.
	CentralTimeout time.Duration
	// Offline enables the offline caps (see enableOfflineCaps).
	Offline bool
}

// startStore opens a store file in dir and serves a gateway over it.
func startStore(ctx context.Context, dir string, h *hq, opts storeOptions) (*store, error) {
	s := &store{st: storecache.NewStore(filepath.Join(dir, "storegate.db"))}
	if err := s.st.Open(ctx); err != nil {
		return nil, err
	}
	var err error
	if s.conn, err = grpc.NewClient(opts.CentralAddr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		s.st.Close(ctx)
		return nil, err
	}
	// Decisions are logged as storegated logs them (JSON, info), to a sink
	// that throws them away: the formatting is part of the cost.
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	cc := centralclient.New(s.conn)
	s.fwd = gateway.NewForwarder(benchStoreID, s.st, cc)
	s.fwd.Logger = logger
	s.gw = gateway.NewGateway(benchStoreID, s.st, cc, h.keys.RootPublic)
	s.gw.CentralTimeout = opts.CentralTimeout
	s.gw.Logger = logger
	s.gw.Committed = s.fwd.Notify
	s.fwd.Contact = s.gw.NoteCentral
	if opts.Offline {
		s.offline = enableOfflineCaps(s.gw)
	}
	if err := s.gw.Open(ctx); err != nil {
		s.close()
		return nil, err
	}
	if _, _, err := s.gw.ApplyKeyset(ctx, h.keys.Keyset); err != nil {
		s.close()
		return nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.close()
		return nil, err
	}
	s.addr = lis.Addr().String()
	// As storegated serves the POS listener, but plaintext: every lane is
	// a development caller (a supervisor of the store).
	face := grpcserver.NewServer(s.gw, s.st)
	face.Version = "bench"
	face.InsecureCallers = true
	s.srv = grpc.NewServer(face.PaymentServerOptions()...)
	face.RegisterPayment(s.srv)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(s.srv, hs)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(lis)
	}()
	go func() {
		defer s.wg.Done()
		s.fwd.Run(runCtx)
	}()
	return s, nil
}

// close stops the gateway and closes its store.
func (s *store) close() {
	if s.srv != nil {
		s.srv.Stop()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.conn.Close()
	s.st.Close(context.Background())
}

// dialLoopback is the POS side's connection: one client connection that
// every lane shares, plaintext on loopback as storegatectl dials.
func dialLoopback(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// tokenClaims returns the claims of the i-th token of a run: a fresh token
// id, a 300 s lifetime (the most a gateway accepts), an offline allowance.
func tokenClaims(i, accounts int, now time.Time) (gateway.Claims, error) {
	id, err := gateway.NewTokenID()
	if err != nil {
		return gateway.Claims{}, err
	}
	return gateway.Claims{
		Issuer:           "storegate-hq",
		Account:          accountID(i % accounts),
		IssuedAt:         now,
		Expires:          now.Add(gateway.DefaultMaxTokenLifetime),
		TokenID:          id,
		Device:           fmt.Sprintf("phone-%d", i%accounts),
		Assurance:        gateway.AssuranceDeviceBound,
		OfflineAllowance: offlineAllowance,
	}, nil
}

// mintTokens signs n fresh tokens, on every core, before a timed section.
func mintTokens(key ed25519.PrivateKey, n, accounts int) ([]string, error) {
	out := make([]string, n)
	now := time.Now()
	workers := runtime.GOMAXPROCS(0)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				c, err := tokenClaims(i, accounts, now)
				if err == nil {
					out[i], err = gateway.MintToken(key, c)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("mint tokens: %w", err)
	}
	return out, nil
}
