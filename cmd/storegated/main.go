// Command storegated is storegate's in-store payment gateway daemon: one per
// store, on the register host. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"

	"storegate/certs"
	"storegate/devices"
	"storegate/gateway"
	"storegate/gateway/centralclient"
	"storegate/gateway/grpcserver"
	"storegate/metrics"
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

// laneFlags collects repeated --lane LANE=DEVICE flags.
type laneFlags []LaneConfig

func (l *laneFlags) String() string { return fmt.Sprint(len(*l), " lanes") }

func (l *laneFlags) Set(v string) error {
	lane, dev, ok := strings.Cut(v, "=")
	if !ok || lane == "" || dev == "" {
		return fmt.Errorf("want LANE=DEVICE, got %q", v)
	}
	*l = append(*l, LaneConfig{Lane: lane, Device: dev})
	return nil
}

// setMetricsListen applies --metrics-listen when it was given. An empty
// value is refused: it is most often a shell variable that was never set,
// and taking it for "off" (or for the default) would silently change what
// Prometheus sees; off says so on purpose.
func setMetricsListen(fs *flag.FlagSet, mc *MetricsConfig, v string) error {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "metrics-listen" })
	switch {
	case !given:
	case v == "":
		return fmt.Errorf("--metrics-listen: empty; give HOST:PORT, or %s to serve no metrics", MetricsOff)
	default:
		mc.Listen = v
	}
	return nil
}

// errExitOK ends the program successfully after a flag such as --version.
var errExitOK = errors.New("done")

// Main is the daemon: configuration, then the running parts.
type Main struct {
	Config Config
	// AddrFile, if set, receives the bound listen address once serving.
	AddrFile string
	// MetricsAddrFile, if set, receives the bound metrics address.
	MetricsAddrFile string
	Stdout          io.Writer
	Stderr          io.Writer

	logger      *slog.Logger
	store       *storecache.Store
	scanners    *devices.Manager
	gw          *gateway.Gateway
	central     *centralclient.Client
	server      *grpcserver.Server
	metrics     *metrics.Metrics
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	closeOnce   sync.Once
	notifyReady bool
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
		tlsCert, tlsKey, tlsClientCA, metricsListen                      string
		centralCA, centralCert, centralKey, centralServerName            string
		chain, adminSocket                                               string
		insecureListen, centralInsecure, insecureCallers                 bool
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
	var healthInterval time.Duration
	fs.DurationVar(&healthInterval, "health-interval", 0, "how often the gateway proves it can write its store (health.check_interval)")
	fs.StringVar(&tlsCert, "tls-cert", "", "listener certificate, PEM (tls.cert_file)")
	fs.StringVar(&tlsKey, "tls-key", "", "listener private key, PEM (tls.key_file)")
	fs.StringVar(&tlsClientCA, "tls-client-ca", "", "CA that POS and supervisor certificates must chain to; makes TLS mutual (tls.client_ca_file)")
	fs.StringVar(&chain, "chain", "", "the chain's trust domain, which every POS certificate names (chain; default "+certs.DevChain+")")
	fs.BoolVar(&insecureCallers, "insecure-callers", false, "development: take every caller without a certificate as a supervisor of this store; loopback only (insecure_callers)")
	fs.StringVar(&adminSocket, "admin-socket", "", "unix socket for AdminService, the operators' interface (admin.socket; default DATA/admin.sock)")
	fs.StringVar(&centralCA, "central-tls-ca", "", "CA that central's certificate must chain to (central.tls.ca_file)")
	fs.StringVar(&centralCert, "central-tls-cert", "", "the gateway's client certificate toward central (central.tls.cert_file)")
	fs.StringVar(&centralKey, "central-tls-key", "", "the gateway's client key toward central (central.tls.key_file)")
	fs.StringVar(&centralServerName, "central-tls-server-name", "", "name central's certificate must carry (central.tls.server_name)")
	fs.BoolVar(&centralInsecure, "central-insecure", false, "allow plaintext to a non-loopback central address, for development (central.insecure)")
	fs.StringVar(&metricsListen, "metrics-listen", "", "Prometheus /metrics HTTP address, or "+MetricsOff+" to serve none (metrics.listen; default "+DefaultMetricsListen+")")
	fs.StringVar(&logLevel, "log-level", "", "debug, info, warn or error (log_level)")
	var lanes laneFlags
	fs.Var(&lanes, "lane", "a lane's scanner, LANE=DEVICE (repeat; adds to the config file's lanes)")
	fs.StringVar(&m.AddrFile, "addr-file", "", "write the bound listen address to this file once serving")
	fs.StringVar(&m.MetricsAddrFile, "metrics-addr-file", "", "write the bound metrics address to this file once serving")
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
	m.Config.Lanes = append(m.Config.Lanes, lanes...)
	set(&m.Config.TLS.CertFile, tlsCert)
	set(&m.Config.TLS.KeyFile, tlsKey)
	set(&m.Config.TLS.ClientCAFile, tlsClientCA)
	set(&m.Config.Central.TLS.CAFile, centralCA)
	set(&m.Config.Central.TLS.CertFile, centralCert)
	set(&m.Config.Central.TLS.KeyFile, centralKey)
	set(&m.Config.Central.TLS.ServerName, centralServerName)
	if err := setMetricsListen(fs, &m.Config.Metrics, metricsListen); err != nil {
		return err
	}
	set(&m.Config.Chain, chain)
	set(&m.Config.Admin.Socket, adminSocket)
	if insecureCallers {
		m.Config.InsecureCallers = true
	}
	if insecureListen {
		m.Config.InsecureListen = true
	}
	if centralInsecure {
		m.Config.Central.Insecure = true
	}
	if centralTimeout != 0 {
		m.Config.Central.Timeout = centralTimeout
	}
	if healthInterval != 0 {
		m.Config.Health.CheckInterval = healthInterval
	}
	if err := m.Config.Validate(); err != nil {
		return err
	}
	if *checkOnly {
		// Beyond the fields: the files they name must be readable too.
		if _, err := m.Config.LoadRootKey(); err != nil {
			return err
		}
		if m.Config.KeysetFile != "" {
			if _, err := os.Stat(m.Config.KeysetFile); err != nil {
				return fmt.Errorf("config: keyset_file: %w", err)
			}
		}
		if _, _, err := m.Config.LoadTLS(); err != nil {
			return err
		}
		if _, err := m.Config.Reversal.ReversalWindow(); err != nil {
			return fmt.Errorf("config: reversal: %w", err)
		}
		fmt.Fprintln(m.Stdout, "configuration OK")
		return errExitOK
	}
	return nil
}

// Run opens the store, starts the gateway, the forwarder, the policy
// watcher, the pruner, the scanners, the metrics endpoint and the gRPC
// server, tells systemd it is ready, and returns once serving. Close stops
// them.
func (m *Main) Run(ctx context.Context) error {
	m.logger = newLogger(m.Stderr, m.Config.LogLevel)
	root, err := m.Config.LoadRootKey()
	if err != nil {
		return err
	}
	listenTLS, centralTLS, err := m.Config.LoadTLS()
	if err != nil {
		return err
	}
	reversals, err := m.Config.Reversal.ReversalWindow()
	if err != nil {
		return fmt.Errorf("config: reversal: %w", err)
	}
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	m.store = storecache.NewStore(m.Config.StorePath())
	m.store.Logger = m.logger
	if err := m.store.Open(ctx); err != nil {
		return err
	}
	m.central = centralclient.NewClient(m.Config.Central.Address)
	if centralTLS != nil {
		m.central.Creds = credentials.NewTLS(centralTLS)
	}
	m.central.MaxReconnect = m.Config.Central.BreakerCooldown
	if err := m.central.Open(); err != nil {
		return fmt.Errorf("central.address: %w", err)
	}
	fwd := gateway.NewForwarder(m.Config.StoreID, m.store, m.central)
	fwd.Batch = m.Config.Forward.Batch
	fwd.BatchWait = m.Config.Forward.BatchWait
	fwd.Interval = m.Config.Forward.Interval
	fwd.MaxBackoff = m.Config.Forward.MaxBackoff
	fwd.Logger = m.logger.With("part", "forwarder")
	m.gw = gateway.NewGateway(m.Config.StoreID, m.store, m.central, root)
	m.gw.Currency = m.Config.Currency
	m.gw.CentralTimeout = m.Config.Central.Timeout
	m.gw.Breaker = &gateway.Breaker{
		Failures: m.Config.Central.BreakerFailures,
		Cooldown: m.Config.Central.BreakerCooldown,
	}
	m.gw.Offline = gateway.FixedOffline{Caps: m.Config.Offline.Caps()}
	m.gw.ReversalWindow = reversals
	m.gw.Logger = m.logger.With("part", "decision")
	m.gw.Committed = fwd.Notify
	fwd.Contact = m.gw.NoteCentral
	if len(m.Config.Lanes) > 0 {
		m.scanners, err = m.Config.NewScanners(m.logger.With("part", "scanner"))
		if err != nil {
			return err
		}
		m.gw.Scans = m.scanners
	}
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
	held := m.gw.DocumentVersions()
	m.logger.Info("policy held", "keyset", held.Keyset, "policy", held.Policy, "store_policy", held.StorePolicy,
		"freeze", held.Freeze, "mode", m.gw.Policy().Mode().String())

	m.metrics = metrics.NewMetrics(Version)
	m.metrics.Status = m.gw.Status
	m.metrics.Logger = m.logger.With("part", "metrics")
	if m.scanners != nil {
		m.metrics.Scanners = m.scanners.Scanners
	}
	if err := m.registerCertificates(); err != nil {
		return err
	}
	m.server = grpcserver.NewServer(m.gw, m.store)
	m.server.Chain = m.Config.Chain
	m.server.InsecureCallers = m.Config.InsecureCallers
	m.server.Version = Version
	m.server.Options = grpcserver.Options{
		MaxRecvMsgSize: m.Config.GRPC.MaxMessageBytes,
		CallTimeout:    m.Config.GRPC.DefaultDeadline,
		Observer:       m.metrics,
	}
	m.server.Probe = m.store.Probe
	m.server.HealthInterval = m.Config.Health.CheckInterval
	m.server.OnHealthChange = m.metrics.SetStoreWritable
	m.server.Logger = m.logger
	if listenTLS != nil {
		m.server.Options.Creds = certs.ServerCredentials(listenTLS, certs.LogRefused(m.logger.With("part", "tls")))
	}
	if m.scanners != nil {
		// A nil *devices.Manager in the interface would look configured.
		m.server.Scans = m.scanners
	}
	if m.Config.InsecureCallers {
		m.logger.Warn("INSECURE CALLERS: every PaymentService caller without a certificate is taken as a supervisor of this store, " +
			"free to pay, watch and reverse on any lane; for development on loopback only (insecure_callers)")
	}
	// After the store is open: its lock says no other storegated of this
	// data_dir runs, so a socket file left behind is stale.
	adminLn, err := grpcserver.ListenAdminSocket(m.Config.AdminSocketPath(), 0)
	if err != nil {
		return fmt.Errorf("admin.socket: %w", err)
	}
	ln, err := net.Listen("tcp", m.Config.Listen)
	if err != nil {
		adminLn.Close()
		return fmt.Errorf("listen: %w", err)
	}
	m.server.Listener, m.server.AdminListener = ln, adminLn
	if err := m.server.Open(ctx); err != nil {
		ln.Close()
		adminLn.Close()
		return err
	}
	var metricsLn net.Listener
	if m.Config.Metrics.Enabled() {
		if metricsLn, err = net.Listen("tcp", m.Config.Metrics.Listen); err != nil {
			return fmt.Errorf("metrics.listen: %w", err)
		}
		m.metrics.Listener = metricsLn
		if err := m.metrics.Open(); err != nil {
			metricsLn.Close()
			return err
		}
	}
	if m.scanners != nil {
		if err := m.scanners.Open(); err != nil {
			return fmt.Errorf("scanners: %w", err)
		}
	}

	watcher := gateway.NewPolicyWatcher(m.gw, m.central)
	watcher.MinBackoff = m.Config.Central.WatchMinBackoff
	watcher.MaxBackoff = m.Config.Central.WatchMaxBackoff
	watcher.Logger = m.logger.With("part", "policy")
	pruner := gateway.NewPruner(m.gw)
	pruner.Logger = m.logger.With("part", "prune")
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.goDo(func() { fwd.Run(runCtx) })
	m.goDo(func() { watcher.Run(runCtx) })
	m.goDo(func() { pruner.Run(runCtx) })
	m.goDo(func() { m.watchdog(runCtx) })

	// The metrics address is written first: a reader that sees the listen
	// address finds the metrics address already there.
	metricsAddr := ""
	if metricsLn != nil {
		metricsAddr = metricsLn.Addr().String()
		if m.MetricsAddrFile != "" {
			if err := writeFileAtomic(m.MetricsAddrFile, []byte(metricsAddr+"\n")); err != nil {
				return fmt.Errorf("metrics-addr-file: %w", err)
			}
		}
	}
	addr := ln.Addr().String()
	if m.AddrFile != "" {
		if err := writeFileAtomic(m.AddrFile, []byte(addr+"\n")); err != nil {
			return fmt.Errorf("addr-file: %w", err)
		}
	}
	m.logger.Info("storegated serving", "version", Version, "store_id", m.Config.StoreID, "listen", addr,
		"tls", m.Config.TLS.Enabled(), "mutual_tls", m.Config.TLS.Mutual(), "chain", m.Config.Chain,
		"insecure_callers", m.Config.InsecureCallers, "admin_socket", m.Config.AdminSocketPath(), "metrics", metricsAddr,
		"store", m.Config.StorePath(), "central", m.Config.Central.Address, "central_tls", centralTLS != nil,
		"offline_enabled", m.Config.Offline.Caps().Enabled())
	m.notifyReady = true
	m.notify(fmt.Sprintf("READY=1\nSTATUS=serving on %s", addr))
	return nil
}

// goDo runs fn in a goroutine that Close waits for.
func (m *Main) goDo(fn func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn()
	}()
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

// Close stops serving, in the order a POS can live with: systemd hears
// STOPPING=1, health goes NOT_SERVING so that a POS or load balancer that
// watches it stops sending, in-flight calls finish (each decision commits
// before it answers) within shutdown_timeout, the background work stops, and
// the store file is closed cleanly, every committed decision and queued
// settlement on disk for the next start.
func (m *Main) Close() error {
	var err error
	m.closeOnce.Do(func() {
		if m.notifyReady {
			m.notify("STOPPING=1\nSTATUS=stopping: finishing in-flight decisions")
		}
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		defer cancel()
		if m.server != nil {
			if serr := m.server.Close(ctx); serr != nil {
				m.logger.Warn("in-flight calls did not finish in time; their connections were closed", "shutdown_timeout", m.Config.ShutdownTimeout, "err", serr)
			}
		}
		if m.gw != nil {
			if gerr := m.gw.Close(ctx); gerr != nil {
				m.logger.Warn("decisions still running at shutdown; the store waits for their commits", "err", gerr)
			}
		}
		if m.metrics != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			m.metrics.Close(ctx)
			cancel()
		}
		if m.cancel != nil {
			m.cancel()
		}
		if m.scanners != nil {
			m.scanners.Close(context.Background())
		}
		m.wg.Wait()
		if m.central != nil {
			m.central.Close(context.Background())
		}
		if m.store != nil {
			if st, serr := m.store.OutboxStats(context.Background()); serr == nil && st.Depth > 0 {
				m.logger.Info("settlements kept on disk for central", "outbox_depth", st.Depth, "offline_exposure", st.OfflineExposure)
			}
			err = m.store.Close(context.Background())
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
