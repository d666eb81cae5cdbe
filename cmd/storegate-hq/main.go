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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"

	"storegate/central"
	"storegate/certs"
	"storegate/gateway"
	"storegate/hqkeys"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "books" {
		os.Exit(runBooks(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "migrate" {
		os.Exit(runMigrate(os.Args[2:], os.Stdout, os.Stderr))
	}
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

// DefaultAdminListen is where HQAdminService listens unless told otherwise.
const DefaultAdminListen = "127.0.0.1:7445"

// ShutdownTimeout bounds the wait for calls in flight at shutdown.
const ShutdownTimeout = 10 * time.Second

// Main is the HQ process.
type Main struct {
	Listen         string
	InsecureListen bool
	// AdminListen serves HQAdminService, where operators publish signed
	// documents; it is loopback only.
	AdminListen string
	// DataDir holds the bbolt ledger, central.db, unless DB is set.
	DataDir string
	// DB, a postgres:// URL, keeps the books in PostgreSQL instead;
	// Migrate applies the schema migrations it lacks at start.
	DB            string
	Migrate       bool
	KeysDir       string
	Currency      string
	AddrFile      string
	AdminAddrFile string
	// TLSCert and TLSKey make the listener serve TLS; TLSClientCA makes
	// it mutual: every gateway must present a certificate from that CA.
	TLSCert     string
	TLSKey      string
	TLSClientCA string
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
	server    *central.Server
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// NewMain returns a Main with defaults.
func NewMain() *Main {
	return &Main{Listen: "127.0.0.1:7444", AdminListen: DefaultAdminListen, Currency: gateway.DefaultCurrency, HoldExpiry: central.DefaultHoldExpiry,
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
		fmt.Fprintf(fs.Output(), "storegate-hq: the reference central service (HQ).\n\nUsage: storegate-hq --data DIR --keys DIR [flags]\n       storegate-hq --db postgres://… [--migrate] --keys DIR [flags]\n       storegate-hq migrate --db postgres://…\n       storegate-hq books --data DIR|--db postgres://… [--json]\n\nKeys come from `storegatectl keys init --dir DIR`. Stores connect to --listen;\nstoregatectl publishes signed policies, freeze lists and keysets on --admin-listen.\n\n")
		fs.PrintDefaults()
	}
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.StringVar(&m.Listen, "listen", m.Listen, "gRPC listen address")
	fs.BoolVar(&m.InsecureListen, "insecure-listen", false, "allow a non-loopback listen address without TLS")
	fs.StringVar(&m.DataDir, "data", "", "directory for the ledger file, central.db (without --db)")
	fs.StringVar(&m.DB, "db", "", "keep the books in this PostgreSQL database (postgres://USER@HOST:PORT/DB) instead of --data")
	fs.BoolVar(&m.Migrate, "migrate", false, "with --db: apply the schema migrations the database lacks before serving")
	fs.StringVar(&m.KeysDir, "keys", "", "directory of HQ's keys (root, token, keyset.cose)")
	fs.StringVar(&m.Currency, "currency", m.Currency, "the currency the ledger books")
	fs.StringVar(&m.AddrFile, "addr-file", "", "write the bound listen address to this file once serving")
	fs.StringVar(&m.TLSCert, "tls-cert", "", "listener certificate, PEM")
	fs.StringVar(&m.TLSKey, "tls-key", "", "listener private key, PEM")
	fs.StringVar(&m.TLSClientCA, "tls-client-ca", "", "CA that gateways' client certificates must chain to (mutual TLS)")
	fs.StringVar(&m.AdminListen, "admin-listen", m.AdminListen, "HQAdminService listen address (loopback only): where storegatectl publishes")
	fs.StringVar(&m.AdminAddrFile, "admin-addr-file", "", "write the bound admin address to this file once serving (before --addr-file)")
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
	if (m.DataDir == "" && m.DB == "") || m.KeysDir == "" {
		return errors.New("--keys and one of --data or --db are required")
	}
	if m.Migrate && !isPostgres(m.DB) {
		return errors.New("--migrate goes with --db postgres://…")
	}
	if _, _, err := newStorage(m.DB, m.DataDir, false); err != nil {
		return err
	}
	if m.HoldExpiry <= 0 {
		return fmt.Errorf("--hold-expiry %s: must be positive", m.HoldExpiry)
	}
	host, _, err := net.SplitHostPort(m.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	if (m.TLSCert == "") != (m.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if m.TLSClientCA != "" && m.TLSCert == "" {
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	}
	mutual := m.TLSCert != "" && m.TLSClientCA != ""
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) && !m.InsecureListen && !mutual {
		return fmt.Errorf("--listen %s is not a loopback address; serving it needs mutual TLS (--tls-cert, --tls-key, --tls-client-ca) or --insecure-listen", m.Listen)
	}
	host, _, err = net.SplitHostPort(m.AdminListen)
	if err != nil {
		return fmt.Errorf("--admin-listen: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--admin-listen %s is not a loopback address: HQ's publishing interface is for operators on this host only", m.AdminListen)
	}
	return nil
}

// Run opens the ledger, publishes the keyset, serves the stores and HQ's
// operators, and starts voiding stale holds; it returns once serving. Close
// stops them.
func (m *Main) Run(ctx context.Context) error {
	m.logger = slog.New(slog.NewJSONHandler(m.Stderr, nil))
	keys, err := hqkeys.Load(m.KeysDir)
	if err != nil {
		return err
	}
	var creds credentials.TransportCredentials
	if m.TLSCert != "" {
		cfg, err := certs.ServerConfig(m.TLSCert, m.TLSKey, m.TLSClientCA)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		creds = certs.ServerCredentials(cfg, certs.LogRefused(m.logger.With("part", "tls")))
	}
	storage, where, err := newStorage(m.DB, m.DataDir, m.Migrate)
	if err != nil {
		return err
	}
	if m.DB == "" {
		if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
			return err
		}
	}
	ledger := central.NewLedger(storage)
	ledger.Currency = m.Currency
	if err := ledger.Open(ctx); err != nil {
		return err
	}
	m.ledger = ledger
	for id, bal := range m.Accounts {
		if err := m.ledger.EnsureAccount(ctx, id, bal); err != nil {
			return fmt.Errorf("account %s: %w", id, err)
		}
	}
	m.publisher = central.NewPublisher(m.ledger, keys.RootPublic)
	if err := m.publisher.Open(ctx); err != nil {
		return err
	}
	if _, _, err := m.publisher.Publish(ctx, gateway.DocumentKeyset, keys.Keyset); err != nil && gateway.ErrorCode(err) != gateway.ESTALE {
		return fmt.Errorf("publish keyset: %w", err)
	}
	// Tokens are checked against the latest published keyset, so that a
	// retired key's tokens are refused here as at the stores.
	svc := central.NewService(m.ledger, m.publisher, func() *gateway.Keyring {
		if k := m.publisher.Keyring(); k != nil {
			return k
		}
		return keys.Keyring
	})
	svc.Logger = m.logger

	adminLn, err := net.Listen("tcp", m.AdminListen)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	ln, err := net.Listen("tcp", m.Listen)
	if err != nil {
		adminLn.Close()
		return fmt.Errorf("listen: %w", err)
	}
	admin := central.NewAdminService(m.publisher, m.ledger)
	admin.Logger = m.logger.With("part", "admin")
	m.server = central.NewServer(svc, admin)
	m.server.Listener, m.server.AdminListener = ln, adminLn
	m.server.Creds = creds
	m.server.Logger = m.logger
	if err := m.server.Open(); err != nil {
		ln.Close()
		adminLn.Close()
		return err
	}
	voider := central.NewHoldVoider(m.ledger)
	voider.Expiry = m.HoldExpiry
	voider.Logger = m.logger
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		voider.Run(runCtx)
	}()

	// The admin address is written first: a reader that sees the listen
	// address finds the admin address already there.
	if m.AdminAddrFile != "" {
		if err := writeAddr(m.AdminAddrFile, adminLn.Addr().String()); err != nil {
			return err
		}
	}
	if m.AddrFile != "" {
		if err := writeAddr(m.AddrFile, ln.Addr().String()); err != nil {
			return err
		}
	}
	m.logger.Info("storegate-hq serving", "version", Version, "listen", ln.Addr().String(), "admin", adminLn.Addr().String(), "ledger", where,
		"tls", m.TLSCert != "", "mutual_tls", m.TLSClientCA != "")
	return nil
}

// writeAddr writes a bound address through a rename, so that a reader
// never sees half of it.
func writeAddr(path, addr string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(addr+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Close stops serving (calls in flight get ShutdownTimeout to finish), stops
// voiding holds and closes the ledger.
func (m *Main) Close() error {
	var err error
	m.closeOnce.Do(func() {
		if m.server != nil {
			ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
			if serr := m.server.Close(ctx); serr != nil {
				m.logger.Warn("stopped before every call finished", "err", serr)
			}
			cancel()
		} else if m.publisher != nil {
			_ = m.publisher.Close(context.Background()) // never fails
		}
		if m.cancel != nil {
			m.cancel()
		}
		m.wg.Wait()
		if m.ledger != nil {
			ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
			err = m.ledger.Close(ctx)
			cancel()
		}
	})
	return err
}
