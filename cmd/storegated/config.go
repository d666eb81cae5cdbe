package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"storegate/certs"
	"storegate/devices"
	"storegate/gateway"
	"storegate/gateway/grpcserver"
)

// Config is storegated's configuration file (YAML). systemd/storegated.yaml
// documents every field; TestExampleConfig checks that it names them all.
type Config struct {
	// StoreID names this store to the central service.
	StoreID string `yaml:"store_id"`
	// Currency is the only currency the store takes (ISO 4217).
	Currency string `yaml:"currency"`
	// Listen is the gRPC address for the lanes' POS terminals.
	Listen string `yaml:"listen"`
	// InsecureListen allows a non-loopback Listen address without mutual
	// TLS, and a non-loopback metrics address.
	InsecureListen bool `yaml:"insecure_listen"`
	// TLS is the POS-facing listener's TLS.
	TLS TLSConfig `yaml:"tls"`
	// Chain is the chain's trust domain: the POS and supervisor
	// certificates the listener takes name spiffe://<chain>/store/<store_id>/….
	Chain string `yaml:"chain"`
	// InsecureCallers takes every PaymentService caller that presents no
	// certificate as a supervisor of this store: development and tests on
	// loopback only.
	InsecureCallers bool `yaml:"insecure_callers"`
	// Admin is the operators' listener (AdminService).
	Admin AdminConfig `yaml:"admin"`
	// Reversal says until when a sale may be reversed at the store.
	Reversal ReversalConfig `yaml:"reversal"`
	// DataDir holds the store file, storegate.db.
	DataDir string `yaml:"data_dir"`
	// RootPublicKey is the path of HQ's root public key (PEM, PKIX).
	RootPublicKey string `yaml:"root_public_key"`
	// KeysetFile, if set, is a keyset signed by the root key, applied at
	// start when newer than the one held.
	KeysetFile string        `yaml:"keyset_file"`
	Central    CentralConfig `yaml:"central"`
	Offline    OfflineConfig `yaml:"offline"`
	Forward    ForwardConfig `yaml:"forward"`
	// Lanes maps each lane to its barcode scanner's serial port.
	Lanes []LaneConfig `yaml:"lanes"`
	// ScanTTL is how long a scanned payment credential is held for the POS
	// to authorize by scan id.
	ScanTTL time.Duration `yaml:"scan_ttl"`
	GRPC    GRPCConfig    `yaml:"grpc"`
	Metrics MetricsConfig `yaml:"metrics"`
	Health  HealthConfig  `yaml:"health"`
	// ShutdownTimeout bounds the wait for in-flight calls at shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
}

// TLSConfig is the TLS of the gateway's gRPC listener.
type TLSConfig struct {
	// CertFile and KeyFile are the server's certificate and key (PEM).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, makes TLS mutual: every POS must present a
	// certificate that chains to a CA in this file (the POS CA: pos-ca.crt
	// of the development set), naming its holder (see Chain).
	ClientCAFile string `yaml:"client_ca_file"`
}

// Enabled reports whether the listener serves TLS.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" }

// Mutual reports whether the listener requires client certificates.
func (t TLSConfig) Mutual() bool { return t.Enabled() && t.ClientCAFile != "" }

// AdminConfig is the operators' listener: AdminService on a unix socket,
// never on the POS listener.
type AdminConfig struct {
	// Socket is the socket's path; empty means admin.sock in systemd's
	// RuntimeDirectory, or in DataDir outside systemd (AdminSocketPath).
	Socket string `yaml:"socket"`
}

// ReversalConfig says until when the store may reverse a sale; HQ reverses
// it after that.
type ReversalConfig struct {
	// Window, when set, allows a reversal that long after the sale; zero
	// means until the end of the sale's business day.
	Window time.Duration `yaml:"window"`
	// BusinessDayStart is when the business day starts, HH:MM in the
	// host's time zone.
	BusinessDayStart string `yaml:"business_day_start"`
}

// ReversalWindow returns the configured window as the domain's type; the
// business day is in the host's time zone (TZ, or /etc/localtime).
func (r ReversalConfig) ReversalWindow() (gateway.ReversalWindow, error) {
	start, err := parseClock(r.BusinessDayStart)
	if err != nil {
		return gateway.ReversalWindow{}, err
	}
	return gateway.ReversalWindow{Within: r.Window, DayStart: start, Location: time.Local}, nil
}

// parseClock reads HH:MM (00:00 to 23:59) as the time after midnight; ""
// is midnight.
func parseClock(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != len("15:04") {
		return 0, fmt.Errorf("%s: want HH:MM, 00:00 to 23:59", gateway.QuoteInput(s))
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// CentralConfig is how to reach the central service.
type CentralConfig struct {
	// Address is the central service's gRPC address.
	Address string `yaml:"address"`
	// Timeout bounds each authorization call to central.
	Timeout time.Duration `yaml:"timeout"`
	// BreakerFailures is how many calls in a row must fail before decisions
	// are made offline at once.
	BreakerFailures int `yaml:"breaker_failures"`
	// BreakerCooldown is how long decisions are made offline at once before
	// one call probes central again.
	BreakerCooldown time.Duration `yaml:"breaker_cooldown"`
	// WatchMinBackoff and WatchMaxBackoff bound the wait before the policy
	// stream (WatchPolicy) is reopened: exponential, with full jitter.
	WatchMinBackoff time.Duration `yaml:"watch_min_backoff"`
	WatchMaxBackoff time.Duration `yaml:"watch_max_backoff"`
	// TLS is the link's TLS; required for a central address that is not
	// loopback unless Insecure is set.
	TLS CentralTLSConfig `yaml:"tls"`
	// Insecure allows plaintext to a non-loopback central address
	// (development only).
	Insecure bool `yaml:"insecure"`
}

// CentralTLSConfig is the gateway's TLS toward the central service.
type CentralTLSConfig struct {
	// CAFile holds the CA(s) central's certificate must chain to.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the gateway's client certificate and key,
	// for central's mutual TLS.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName, when set, is the name central's certificate must carry
	// instead of the host in Address.
	ServerName string `yaml:"server_name"`
}

// OfflineConfig holds the store's own offline caps, in minor units. HQ's
// policy may lower each (gateway.Gateway combines the two); with neither set,
// nothing is approved offline.
type OfflineConfig struct {
	MaxAmountPerTransaction int64 `yaml:"max_amount_per_transaction"`
	MaxAmountPerAccount     int64 `yaml:"max_amount_per_account"`
	MaxStoreExposure        int64 `yaml:"max_store_exposure"`
}

// Caps returns the configured caps as the domain's type.
func (o OfflineConfig) Caps() gateway.OfflineCaps {
	return gateway.OfflineCaps{
		MaxAmountPerTransaction: o.MaxAmountPerTransaction,
		MaxAmountPerAccount:     o.MaxAmountPerAccount,
		MaxStoreExposure:        o.MaxStoreExposure,
	}
}

// ForwardConfig tunes the settlement forwarder.
type ForwardConfig struct {
	Batch      int           `yaml:"batch"`
	BatchWait  time.Duration `yaml:"batch_wait"`
	Interval   time.Duration `yaml:"interval"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// LaneConfig is one lane's scanner.
type LaneConfig struct {
	// Lane is the lane's id, as its POS names it.
	Lane string `yaml:"lane"`
	// Device is the scanner's serial port, best a stable udev name.
	Device string `yaml:"device"`
	// Baud is the port speed; 0 means 9600.
	Baud int `yaml:"baud"`
	// Terminator ends a frame: any (CR, LF or CRLF), cr, lf or crlf.
	Terminator string `yaml:"terminator"`
	// MaxFrame caps a frame's length in bytes; 0 means 4096.
	MaxFrame int `yaml:"max_frame"`
}

// GRPCConfig holds the gRPC server's limits.
type GRPCConfig struct {
	// MaxMessageBytes bounds one request.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// DefaultDeadline is given to a call whose client set no deadline.
	DefaultDeadline time.Duration `yaml:"default_deadline"`
}

// MetricsConfig is the Prometheus endpoint.
type MetricsConfig struct {
	// Listen is the HTTP address of /metrics; MetricsOff (or, in the
	// file, empty) serves no metrics.
	Listen string `yaml:"listen"`
}

// MetricsOff as metrics.listen (or --metrics-listen) serves no metrics.
const MetricsOff = "off"

// Enabled reports whether metrics are served.
func (m MetricsConfig) Enabled() bool { return m.Listen != "" && m.Listen != MetricsOff }

// HealthConfig tunes the store health probe.
type HealthConfig struct {
	// CheckInterval is the time between two probes of the store.
	CheckInterval time.Duration `yaml:"check_interval"`
}

// Defaults.
const (
	DefaultListen          = "127.0.0.1:7443"
	DefaultMetricsListen   = "127.0.0.1:9464"
	DefaultDataDir         = "/var/lib/storegate"
	DefaultShutdownTimeout = 10 * time.Second
	// MaxReversalWindow bounds reversal.window: after a month a sale is
	// HQ's to reverse.
	MaxReversalWindow = 31 * 24 * time.Hour
	storeFileName     = "storegate.db"
	adminSocketName   = "admin.sock"
)

// DefaultConfig returns the configuration used where the file and flags are
// silent.
func DefaultConfig() Config {
	return Config{
		Currency: gateway.DefaultCurrency,
		Listen:   DefaultListen,
		DataDir:  DefaultDataDir,
		Chain:    certs.DevChain,
		Reversal: ReversalConfig{BusinessDayStart: "00:00"},
		Central: CentralConfig{
			Timeout:         gateway.DefaultCentralTimeout,
			WatchMinBackoff: gateway.DefaultWatchMinBackoff,
			WatchMaxBackoff: gateway.DefaultWatchMaxBackoff,
			BreakerFailures: gateway.DefaultBreakerFailures,
			BreakerCooldown: gateway.DefaultBreakerCooldown,
		},
		Forward: ForwardConfig{
			Batch:      gateway.DefaultForwardBatch,
			BatchWait:  gateway.DefaultForwardBatchWait,
			Interval:   gateway.DefaultForwardInterval,
			MaxBackoff: gateway.DefaultForwardMaxBackoff,
		},
		ScanTTL: devices.DefaultScanTTL,
		GRPC: GRPCConfig{
			MaxMessageBytes: grpcserver.DefaultMaxRecvMsgSize,
			DefaultDeadline: grpcserver.DefaultCallTimeout,
		},
		Metrics:         MetricsConfig{Listen: DefaultMetricsListen},
		Health:          HealthConfig{CheckInterval: grpcserver.DefaultHealthInterval},
		ShutdownTimeout: DefaultShutdownTimeout,
		LogLevel:        "info",
	}
}

// LoadConfigFile reads a YAML file over c. Unknown fields are errors, so a
// typo never silently falls back to a default.
func (c *Config) LoadConfigFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// LoadRootKey reads HQ's root public key.
func (c *Config) LoadRootKey() (ed25519.PublicKey, error) {
	b, err := os.ReadFile(c.RootPublicKey)
	if err != nil {
		return nil, fmt.Errorf("config: root_public_key: %w", err)
	}
	pub, err := gateway.ParsePublicKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("config: root_public_key %s: %w", c.RootPublicKey, err)
	}
	return pub, nil
}

// StorePath is the bbolt file's path.
func (c *Config) StorePath() string { return filepath.Join(c.DataDir, storeFileName) }

// AdminSocketPath is the admin socket's path: Admin.Socket; else, under a
// systemd unit with RuntimeDirectory= (which sets $RUNTIME_DIRECTORY),
// admin.sock there (/run/storegate/admin.sock); else admin.sock in DataDir.
func (c *Config) AdminSocketPath() string {
	if c.Admin.Socket != "" {
		return c.Admin.Socket
	}
	if dir, _, _ := strings.Cut(os.Getenv("RUNTIME_DIRECTORY"), ":"); dir != "" {
		return filepath.Join(dir, adminSocketName)
	}
	return filepath.Join(c.DataDir, adminSocketName)
}

// Validate checks every field and names the first bad one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.StoreID == "" {
		bad("store_id", "required")
	} else if !gateway.ValidID(c.StoreID) {
		// Central refuses any other store id, and with it every payment.
		bad("store_id", "%s: want 1-%d characters of [A-Za-z0-9._:-]", gateway.QuoteInput(c.StoreID), gateway.MaxIDLength)
	}
	if !certs.ValidChain(c.Chain) {
		bad("chain", "%s: want a trust domain, 1-%d characters of [a-z0-9._-]", gateway.QuoteInput(c.Chain), certs.MaxChainLength)
	}
	if c.TLS.Mutual() && c.StoreID != "" && gateway.ValidID(c.StoreID) && !certs.ValidSegment(c.StoreID) {
		// A colon is an id character, but no SPIFFE ID can carry it.
		bad("store_id", "%s cannot be named in a certificate (no colon there, and not . or ..), so no POS could prove it belongs to this store", gateway.QuoteInput(c.StoreID))
	}
	if c.InsecureCallers {
		switch {
		case c.TLS.Mutual():
			bad("insecure_callers", "means nothing with mutual TLS, where every caller shows a certificate; remove it")
		case !isLoopback(c.Listen):
			bad("insecure_callers", "takes every caller as a supervisor: loopback listen addresses only, never %q", c.Listen)
		}
	}
	if p := c.AdminSocketPath(); len(p) > grpcserver.MaxSocketPath {
		bad("admin.socket", "%s is %d bytes, more than the %d a unix socket path may have", gateway.QuoteInput(p), len(p), grpcserver.MaxSocketPath)
	}
	if c.Reversal.Window < 0 || c.Reversal.Window > MaxReversalWindow {
		bad("reversal.window", "%s outside 0 (the business day) to %s", c.Reversal.Window, MaxReversalWindow)
	}
	if _, err := parseClock(c.Reversal.BusinessDayStart); err != nil {
		bad("reversal.business_day_start", "%v", err)
	}
	if !currencyPattern.MatchString(c.Currency) {
		bad("currency", "%s is not a three-letter ISO 4217 code", gateway.QuoteInput(c.Currency))
	}
	switch {
	case c.TLS.CertFile != "" && c.TLS.KeyFile == "":
		bad("tls.key_file", "required with tls.cert_file")
	case c.TLS.KeyFile != "" && c.TLS.CertFile == "":
		bad("tls.cert_file", "required with tls.key_file")
	case c.TLS.ClientCAFile != "" && !c.TLS.Enabled():
		bad("tls.client_ca_file", "needs tls.cert_file and tls.key_file: client certificates are asked for in a TLS handshake")
	}
	if !isLoopback(c.Listen) && !c.InsecureListen && !c.TLS.Mutual() {
		if err := checkAddr(c.Listen); err != nil {
			bad("listen", "%v", err)
		} else if c.TLS.Enabled() {
			bad("listen", "%q is not a loopback address; serving it needs mutual TLS (tls.client_ca_file), or --insecure-listen", c.Listen)
		} else {
			bad("listen", "%q is not a loopback address; serving it needs mutual TLS (tls.cert_file, tls.key_file, tls.client_ca_file), or --insecure-listen", c.Listen)
		}
	} else if err := checkAddr(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	if c.DataDir == "" {
		bad("data_dir", "required")
	}
	if c.RootPublicKey == "" {
		bad("root_public_key", "required (HQ's root public key, PEM)")
	}
	if c.Central.Address == "" {
		bad("central.address", "required")
	}
	if c.Central.Timeout <= 0 || c.Central.Timeout > 10*time.Second {
		bad("central.timeout", "%s outside (0, 10s]", c.Central.Timeout)
	}
	if c.Central.WatchMinBackoff <= 0 {
		bad("central.watch_min_backoff", "must be positive")
	}
	if c.Central.WatchMaxBackoff < c.Central.WatchMinBackoff {
		bad("central.watch_max_backoff", "%s is less than central.watch_min_backoff (%s)", c.Central.WatchMaxBackoff, c.Central.WatchMinBackoff)
	}
	ct := c.Central.TLS
	switch {
	case ct.CertFile != "" && ct.KeyFile == "":
		bad("central.tls.key_file", "required with central.tls.cert_file")
	case ct.KeyFile != "" && ct.CertFile == "":
		bad("central.tls.cert_file", "required with central.tls.key_file")
	case ct.CAFile == "" && (ct.CertFile != "" || ct.ServerName != ""):
		bad("central.tls.ca_file", "required with the other central.tls fields")
	case ct.CAFile == "" && c.Central.Address != "" && !isLoopback(c.Central.Address) && !c.Central.Insecure:
		bad("central.tls.ca_file", "required for a central address that is not loopback (%q); central.insecure: true allows plaintext for development", c.Central.Address)
	}
	if c.Central.BreakerFailures < 1 || c.Central.BreakerFailures > 100 {
		bad("central.breaker_failures", "%d outside 1 to 100", c.Central.BreakerFailures)
	}
	if c.Central.BreakerCooldown <= 0 || c.Central.BreakerCooldown > 10*time.Minute {
		bad("central.breaker_cooldown", "%s outside (0, 10m]", c.Central.BreakerCooldown)
	}
	c.Offline.validate(bad)
	if c.Forward.Batch < 1 || c.Forward.Batch > 1000 {
		bad("forward.batch", "%d outside 1 to 1000", c.Forward.Batch)
	}
	if c.Forward.BatchWait < 0 || c.Forward.BatchWait > time.Minute {
		bad("forward.batch_wait", "%s outside 0 to 1m", c.Forward.BatchWait)
	}
	if c.Forward.Interval <= 0 {
		bad("forward.interval", "must be positive")
	}
	if c.Forward.MaxBackoff <= 0 {
		bad("forward.max_backoff", "must be positive")
	}
	seenLane, seenDevice := map[string]bool{}, map[string]bool{}
	for i, l := range c.Lanes {
		field := fmt.Sprintf("lanes[%d]", i)
		switch {
		case !gateway.ValidID(l.Lane):
			bad(field+".lane", "%q: want 1-64 characters of [A-Za-z0-9._:-]", l.Lane)
		case seenLane[l.Lane]:
			bad(field+".lane", "lane %s listed twice", l.Lane)
		}
		switch {
		case l.Device == "":
			bad(field+".device", "required")
		case seenDevice[l.Device]:
			bad(field+".device", "%s serves two lanes", l.Device)
		}
		seenLane[l.Lane], seenDevice[l.Device] = true, true
		if l.Baud != 0 && !devices.ValidBaud(l.Baud) {
			bad(field+".baud", "%d is not a standard rate", l.Baud)
		}
		if _, err := devices.ParseTerminator(l.Terminator); err != nil {
			bad(field+".terminator", "%v", err)
		}
		if l.MaxFrame < 0 || l.MaxFrame > 65536 {
			bad(field+".max_frame", "%d outside 0 to 65536", l.MaxFrame)
		}
	}
	if c.ScanTTL < 5*time.Second || c.ScanTTL > 10*time.Minute {
		bad("scan_ttl", "%s outside 5s to 10m", c.ScanTTL)
	}
	if c.GRPC.MaxMessageBytes < 4<<10 || c.GRPC.MaxMessageBytes > 16<<20 {
		bad("grpc.max_message_bytes", "%d outside 4096 to 16777216", c.GRPC.MaxMessageBytes)
	}
	if c.GRPC.DefaultDeadline <= 0 || c.GRPC.DefaultDeadline > time.Minute {
		bad("grpc.default_deadline", "%s outside (0, 1m]", c.GRPC.DefaultDeadline)
	}
	if c.Metrics.Enabled() {
		if err := checkAddr(c.Metrics.Listen); err != nil {
			bad("metrics.listen", "%v", err)
		} else if !isLoopback(c.Metrics.Listen) && !c.InsecureListen {
			bad("metrics.listen", "%q is not a loopback address; metrics are plain HTTP, so a wider address needs --insecure-listen", c.Metrics.Listen)
		}
	}
	if c.Health.CheckInterval < 100*time.Millisecond || c.Health.CheckInterval > time.Minute {
		bad("health.check_interval", "%s outside 100ms to 1m", c.Health.CheckInterval)
	}
	if c.ShutdownTimeout <= 0 || c.ShutdownTimeout > 5*time.Minute {
		bad("shutdown_timeout", "%s outside (0, 5m]", c.ShutdownTimeout)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	return errors.Join(errs...)
}

// validate checks the offline caps: none negative, either all zero (offline
// approval off) or all positive, and each no wider than the next, since a
// sale counts toward its account's total and the account's toward the
// store's.
func (o OfflineConfig) validate(bad func(field, format string, args ...any)) {
	fields := []struct {
		name string
		v    int64
	}{
		{"offline.max_amount_per_transaction", o.MaxAmountPerTransaction},
		{"offline.max_amount_per_account", o.MaxAmountPerAccount},
		{"offline.max_store_exposure", o.MaxStoreExposure},
	}
	zero, neg := 0, false
	for _, f := range fields {
		switch {
		case f.v < 0:
			bad(f.name, "%d is negative", f.v)
			neg = true
		case f.v == 0:
			zero++
		}
	}
	if neg || zero == len(fields) {
		return
	}
	if zero > 0 {
		for _, f := range fields {
			if f.v == 0 {
				bad(f.name, "is 0 while other offline caps are set: set all three, or none to approve nothing offline")
			}
		}
		return
	}
	for i := 1; i < len(fields); i++ {
		if fields[i-1].v > fields[i].v {
			bad(fields[i-1].name, "%d is more than %s (%d)", fields[i-1].v, fields[i].name, fields[i].v)
		}
	}
}

// currencyPattern is an ISO 4217 code, as central's ledger requires.
var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// checkAddr checks that addr is a host:port.
func checkAddr(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q: %v", addr, err)
	}
	return nil
}

// isLoopback reports whether addr's host is localhost or a loopback IP. A
// malformed address is not loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoadTLS reads the TLS material the configuration names: the listener's
// (nil when it serves plaintext) and the central link's (nil for plaintext).
// Errors name the field whose file is at fault.
func (c *Config) LoadTLS() (listener, central *tls.Config, err error) {
	if c.TLS.Enabled() {
		listener, err = certs.ServerConfig(c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ClientCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("config: tls: %w", err)
		}
	}
	if ct := c.Central.TLS; ct.CAFile != "" {
		central, err = certs.ClientConfig(ct.CAFile, ct.CertFile, ct.KeyFile, ct.ServerName)
		if err != nil {
			return nil, nil, fmt.Errorf("config: central.tls: %w", err)
		}
	}
	return listener, central, nil
}

// NewScanners configures one scanner reader per lane, publishing to a hub
// that holds a credential for ScanTTL; Open on the Manager starts them.
func (c *Config) NewScanners(logger *slog.Logger) (*devices.Manager, error) {
	hub := devices.NewScanHub()
	hub.TTL = c.ScanTTL
	mgr := devices.NewManager(hub)
	mgr.Logger = logger
	for i, l := range c.Lanes {
		term, err := devices.ParseTerminator(l.Terminator)
		if err != nil {
			return nil, fmt.Errorf("config: lanes[%d].terminator: %v", i, err)
		}
		if _, err := mgr.Add(devices.ReaderConfig{Lane: l.Lane, Device: l.Device, Baud: l.Baud, Terminator: term, MaxFrame: l.MaxFrame}); err != nil {
			return nil, fmt.Errorf("config: lanes[%d]: %w", i, err)
		}
	}
	return mgr, nil
}
