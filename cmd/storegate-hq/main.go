// Command storegate-hq runs the reference central service (HQ): prepaid
// accounts, online authorization, settlement intake and policy publishing,
// for development, the demo and the end-to-end tests. See README.md.
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"storegate/central"
	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) || errors.Is(err, errExitOK) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "storegate-hq:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "storegate-hq:", err)
		m.Close()
		os.Exit(1)
	}
	<-ctx.Done()
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "storegate-hq:", err)
		os.Exit(1)
	}
}

var errExitOK = errors.New("done")

// Main is the HQ process.
type Main struct {
	Listen         string
	InsecureListen bool
	DataDir        string
	KeysDir        string
	Currency       string
	AddrFile       string
	// HoldExpiry is how long an uncaptured hold stands before it is voided
	// and its amount given back.
	HoldExpiry time.Duration
	// Accounts are opened with these balances when they do not exist yet.
	Accounts map[string]int64
	Stdout   io.Writer
	Stderr   io.Writer

	logger    *slog.Logger
	cancel    context.CancelFunc
	ledger    *central.Ledger
	publisher *central.Publisher
	server    *grpc.Server
	health    *health.Server
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewMain returns a Main with defaults.
func NewMain() *Main {
	return &Main{Listen: "127.0.0.1:7444", Currency: gateway.DefaultCurrency, HoldExpiry: central.DefaultHoldExpiry,
		Accounts: map[string]int64{}, Stdout: os.Stdout, Stderr: os.Stderr}
}

// accountFlag parses repeated --account ID=BALANCE.
type accountFlag map[string]int64

func (a accountFlag) String() string { return fmt.Sprint(map[string]int64(a)) }

func (a accountFlag) Set(v string) error {
	id, bal, ok := strings.Cut(v, "=")
	if !ok || id == "" {
		return fmt.Errorf("want ID=BALANCE, got %q", v)
	}
	n, err := strconv.ParseInt(bal, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("balance %q: want a non-negative integer in minor units", bal)
	}
	a[id] = n
	return nil
}

// ParseFlags reads the command line.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("storegate-hq", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "storegate-hq: the reference central service (HQ).\n\nUsage: storegate-hq --data DIR --keys DIR [flags]\n\nKeys come from `storegatectl keys init --dir DIR`.\n\n")
		fs.PrintDefaults()
	}
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.StringVar(&m.Listen, "listen", m.Listen, "gRPC listen address")
	fs.BoolVar(&m.InsecureListen, "insecure-listen", false, "allow a non-loopback listen address without TLS")
	fs.StringVar(&m.DataDir, "data", "", "directory for the ledger file, central.db")
	fs.StringVar(&m.KeysDir, "keys", "", "directory of HQ's keys (root, token, keyset.cose)")
	fs.StringVar(&m.Currency, "currency", m.Currency, "the currency the ledger books")
	fs.StringVar(&m.AddrFile, "addr-file", "", "write the bound listen address to this file once serving")
	fs.Var(accountFlag(m.Accounts), "account", "open account ID with BALANCE minor units if it does not exist (ID=BALANCE, repeat)")
	fs.DurationVar(&m.HoldExpiry, "hold-expiry", m.HoldExpiry, "void holds no store has captured after this long, giving the amount back")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *showVersion {
		fmt.Fprintln(m.Stdout, "storegate-hq", Version)
		return errExitOK
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if m.DataDir == "" || m.KeysDir == "" {
		return errors.New("--data and --keys are required")
	}
	if m.HoldExpiry <= 0 {
		return fmt.Errorf("--hold-expiry %s: must be positive", m.HoldExpiry)
	}
	host, _, err := net.SplitHostPort(m.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) && !m.InsecureListen {
		return fmt.Errorf("--listen %s is not a loopback address; serving it without TLS needs --insecure-listen", m.Listen)
	}
	return nil
}

// Run opens the ledger, publishes the keyset and serves.
func (m *Main) Run(ctx context.Context) error {
	m.logger = slog.New(slog.NewJSONHandler(m.Stderr, nil))
	keys, err := central.LoadHQKeys(m.KeysDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
		return err
	}
	m.ledger, err = central.OpenLedger(filepath.Join(m.DataDir, "central.db"), central.LedgerOptions{Currency: m.Currency})
	if err != nil {
		return err
	}
	for id, bal := range m.Accounts {
		if err := m.ledger.EnsureAccount(id, bal); err != nil {
			return fmt.Errorf("account %s: %w", id, err)
		}
	}
	m.publisher, err = central.NewPublisher(m.ledger)
	if err != nil {
		return err
	}
	if err := m.publisher.Publish(storegatev1.DocumentKind_DOCUMENT_KIND_KEYSET, keys.Keyring.Version, keys.Keyset); err != nil && gateway.ErrorCode(err) != gateway.ESTALE {
		return fmt.Errorf("publish keyset: %w", err)
	}
	svc := central.NewService(m.ledger, m.publisher, func() *gateway.Keyring { return keys.Keyring })
	svc.Logger = m.logger

	ln, err := net.Listen("tcp", m.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.server = grpc.NewServer()
	storegatev1.RegisterCentralServiceServer(m.server, svc)
	m.health = health.NewServer()
	healthpb.RegisterHealthServer(m.server, m.health)
	reflection.Register(m.server)
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(2)
	go func() {
		defer m.wg.Done()
		if err := m.server.Serve(ln); err != nil {
			m.logger.Error("grpc server stopped", "err", err)
		}
	}()
	go func() {
		defer m.wg.Done()
		m.voidLoop(runCtx)
	}()
	if m.AddrFile != "" {
		tmp := m.AddrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, m.AddrFile); err != nil {
			return err
		}
	}
	m.logger.Info("storegate-hq serving", "version", Version, "listen", ln.Addr().String(), "ledger", m.ledger.Path())
	return nil
}

// voidLoop voids stale holds every tenth of the hold expiry (at least every
// second, at most every minute), so a customer whose sale never completed
// gets the amount back within about HoldExpiry.
func (m *Main) voidLoop(ctx context.Context) {
	every := min(max(m.HoldExpiry/10, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := m.ledger.VoidStaleHolds(time.Now(), m.HoldExpiry)
			if err != nil {
				m.logger.Error("void stale holds", "err", err)
			} else if n > 0 {
				m.logger.Info("voided stale holds", "count", n, "older_than", m.HoldExpiry.String())
			}
		}
	}
}

// Close stops serving and closes the ledger.
func (m *Main) Close() error {
	var err error
	m.closeOnce.Do(func() {
		if m.health != nil {
			m.health.Shutdown()
		}
		if m.publisher != nil {
			m.publisher.Close()
		}
		if m.server != nil {
			done := make(chan struct{})
			go func() { m.server.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				m.server.Stop()
			}
		}
		if m.cancel != nil {
			m.cancel()
		}
		m.wg.Wait()
		if m.ledger != nil {
			err = m.ledger.Close()
		}
	})
	return err
}
