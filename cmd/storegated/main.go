// Command storegated is storegate's in-store payment gateway daemon: one per
// store, on the register host. See README.md.
package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"storegate/gateway"
	"storegate/gateway/centralclient"
	"storegate/gateway/grpcserver"
	"storegate/storecache"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		if errors.Is(err, errExitOK) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "storegated:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "storegated:", err)
		m.Close()
		os.Exit(1)
	}
	<-ctx.Done()
	stop()
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "storegated:", err)
		os.Exit(1)
	}
}

// errExitOK ends the program successfully after a flag such as --version.
var errExitOK = errors.New("done")

// Main is the daemon: configuration, then the running parts.
type Main struct {
	Config Config
	// AddrFile, if set, receives the bound listen address once serving.
	AddrFile string
	Stdout   io.Writer
	Stderr   io.Writer

	logger    *slog.Logger
	store     *storecache.Store
	gw        *gateway.Gateway
	conn      *grpc.ClientConn
	server    *grpc.Server
	health    *health.Server
	listener  net.Listener
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Stdout: os.Stdout, Stderr: os.Stderr}
}

// ParseFlags reads the config file named by --config, then lets flags
// override it, then validates.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("storegated", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `storegated: the in-store payment gateway.

Usage: storegated [--config FILE] [flags]

Flags override the config file; see systemd/storegated.yaml for every field.

`)
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "config file (YAML)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	checkOnly := fs.Bool("check-config", false, "validate the configuration and exit")
	var (
		storeID, listen, dataDir, rootKey, keyset, centralAddr, logLevel string
		insecureListen                                                   bool
		centralTimeout                                                   time.Duration
	)
	fs.StringVar(&storeID, "store-id", "", "this store's id (store_id)")
	fs.StringVar(&listen, "listen", "", "gRPC listen address (listen; default "+DefaultListen+")")
	fs.BoolVar(&insecureListen, "insecure-listen", false, "allow a non-loopback listen address without TLS")
	fs.StringVar(&dataDir, "data", "", "state directory holding storegate.db (data_dir)")
	fs.StringVar(&rootKey, "root-key", "", "HQ root public key, PEM (root_public_key)")
	fs.StringVar(&keyset, "keyset", "", "signed keyset to apply at start (keyset_file)")
	fs.StringVar(&centralAddr, "central", "", "central service address (central.address)")
	fs.DurationVar(&centralTimeout, "central-timeout", 0, "deadline for central authorizations (central.timeout)")
	fs.StringVar(&logLevel, "log-level", "", "debug, info, warn or error (log_level)")
	fs.StringVar(&m.AddrFile, "addr-file", "", "write the bound listen address to this file once serving")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *showVersion {
		fmt.Fprintln(m.Stdout, "storegated", Version)
		return errExitOK
	}
	if *configPath != "" {
		if err := m.Config.LoadConfigFile(*configPath); err != nil {
			return err
		}
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&m.Config.StoreID, storeID)
	set(&m.Config.Listen, listen)
	set(&m.Config.DataDir, dataDir)
	set(&m.Config.RootPublicKey, rootKey)
	set(&m.Config.KeysetFile, keyset)
	set(&m.Config.Central.Address, centralAddr)
	set(&m.Config.LogLevel, logLevel)
	if insecureListen {
		m.Config.InsecureListen = true
	}
	if centralTimeout != 0 {
		m.Config.Central.Timeout = centralTimeout
	}
	if err := m.Config.Validate(); err != nil {
		return err
	}
	if *checkOnly {
		fmt.Fprintln(m.Stdout, "configuration OK")
		return errExitOK
	}
	return nil
}

// Run opens the store, starts the gateway, the forwarder and the gRPC server,
// and returns once serving. Close stops them.
func (m *Main) Run(ctx context.Context) error {
	m.logger = newLogger(m.Stderr, m.Config.LogLevel)
	rootPEM, err := os.ReadFile(m.Config.RootPublicKey)
	if err != nil {
		return fmt.Errorf("root_public_key: %w", err)
	}
	root, err := gateway.ParsePublicKeyPEM(rootPEM)
	if err != nil {
		return fmt.Errorf("root_public_key %s: %w", m.Config.RootPublicKey, err)
	}
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	m.store, err = storecache.Open(m.Config.StorePath(), storecache.Options{Logger: m.logger})
	if err != nil {
		return err
	}
	// gRPC's default reconnect backoff grows to two minutes during a long
	// outage: the gateway would stay offline that long after central is
	// back. Reconnect at least as often as the breaker probes.
	reconnect := min(max(m.Config.Central.BreakerCooldown, time.Second), 30*time.Second)
	m.conn, err = grpc.NewClient(m.Config.Central.Address, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: reconnect,
		}, MinConnectTimeout: 10 * time.Second}))
	if err != nil {
		return fmt.Errorf("central.address: %w", err)
	}
	central := centralclient.New(m.conn)
	fwd := &gateway.Forwarder{
		StoreID:    m.Config.StoreID,
		Store:      m.store,
		Central:    central,
		Batch:      m.Config.Forward.Batch,
		BatchWait:  m.Config.Forward.BatchWait,
		Interval:   m.Config.Forward.Interval,
		MaxBackoff: m.Config.Forward.MaxBackoff,
		Logger:     m.logger.With("part", "forwarder"),
	}
	m.gw = &gateway.Gateway{
		StoreID:        m.Config.StoreID,
		Currency:       m.Config.Currency,
		Store:          m.store,
		Central:        central,
		RootKey:        ed25519.PublicKey(root),
		CentralTimeout: m.Config.Central.Timeout,
		Breaker: &gateway.Breaker{
			Failures: m.Config.Central.BreakerFailures,
			Cooldown: m.Config.Central.BreakerCooldown,
		},
		Offline:   gateway.FixedOffline{Caps: m.Config.Offline.Caps()},
		Logger:    m.logger.With("part", "decision"),
		Committed: fwd.Notify,
	}
	fwd.Contact = m.gw.NoteCentral
	if err := m.gw.Open(ctx); err != nil {
		return err
	}
	if m.Config.KeysetFile != "" {
		if err := m.applyKeysetFile(ctx); err != nil {
			return err
		}
	}
	if m.gw.Keyring() == nil {
		m.logger.Warn("no keyset held: every token will be declined as unknown_key until HQ applies one")
	}

	m.listener, err = net.Listen("tcp", m.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.server = grpc.NewServer()
	srv := &grpcserver.Server{Gateway: m.gw, Store: m.store, Version: Version, StartedAt: time.Now()}
	srv.Register(m.server)
	m.health = health.NewServer()
	healthpb.RegisterHealthServer(m.server, m.health)
	reflection.Register(m.server)
	m.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	m.health.SetServingStatus("storegate.v1.PaymentService", healthpb.HealthCheckResponse_SERVING)

	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(3)
	go func() {
		defer m.wg.Done()
		if err := m.server.Serve(m.listener); err != nil {
			m.logger.Error("grpc server stopped", "err", err)
		}
	}()
	go func() {
		defer m.wg.Done()
		fwd.Run(runCtx)
	}()
	go func() {
		defer m.wg.Done()
		m.pruneLoop(runCtx)
	}()
	addr := m.listener.Addr().String()
	if m.AddrFile != "" {
		if err := writeFileAtomic(m.AddrFile, []byte(addr+"\n")); err != nil {
			return fmt.Errorf("addr-file: %w", err)
		}
	}
	m.logger.Info("storegated serving", "version", Version, "store_id", m.Config.StoreID, "listen", addr,
		"store", m.Config.StorePath(), "central", m.Config.Central.Address,
		"offline_enabled", m.Config.Offline.Caps().Enabled())
	return nil
}

func (m *Main) applyKeysetFile(ctx context.Context) error {
	raw, err := os.ReadFile(m.Config.KeysetFile)
	if err != nil {
		return fmt.Errorf("keyset_file: %w", err)
	}
	version, changed, err := m.gw.ApplyKeyset(ctx, raw)
	if gateway.ErrorCode(err) == gateway.ESTALE {
		m.logger.Info("keyset file is older than the keyset held; keeping the held one", "file", m.Config.KeysetFile, "held", version)
		return nil
	}
	if err != nil {
		return fmt.Errorf("keyset_file %s: %w", m.Config.KeysetFile, err)
	}
	if changed {
		m.logger.Info("keyset file applied", "version", version)
	}
	return nil
}

// pruneLoop forgets spent token ids long past their expiry.
func (m *Main) pruneLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// The hour of margin keeps ids well past any clock step.
			if n, err := m.gw.PruneSpent(ctx, time.Hour); err != nil {
				m.logger.Error("prune spent tokens", "err", err)
			} else if n > 0 {
				m.logger.Debug("pruned spent tokens", "count", n)
			}
		}
	}
}

// Close stops serving: health goes NOT_SERVING, in-flight calls finish, the
// background work stops, and the store is closed.
func (m *Main) Close() error {
	var err error
	m.closeOnce.Do(func() {
		if m.health != nil {
			m.health.Shutdown()
		}
		if m.server != nil {
			stopped := make(chan struct{})
			go func() { m.server.GracefulStop(); close(stopped) }()
			select {
			case <-stopped:
			case <-time.After(10 * time.Second):
				m.server.Stop()
			}
		}
		if m.cancel != nil {
			m.cancel()
		}
		m.wg.Wait()
		if m.conn != nil {
			m.conn.Close()
		}
		if m.store != nil {
			err = m.store.Close()
		}
		if m.logger != nil {
			m.logger.Info("storegated stopped")
		}
	})
	return err
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// writeFileAtomic writes through a temporary file and a rename, so a reader
// never sees half an address.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
