package main

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"

	"storegate/devices"
	"storegate/gateway"
)

// Config is storegated's configuration file (YAML). systemd/storegated.yaml
// documents every field.
type Config struct {
	// StoreID names this store to the central service.
	StoreID string `yaml:"store_id"`
	// Currency is the only currency the store takes (ISO 4217).
	Currency string `yaml:"currency"`
	// Listen is the gRPC address for the lanes' POS terminals.
	Listen string `yaml:"listen"`
	// InsecureListen allows a non-loopback Listen address without TLS.
	InsecureListen bool `yaml:"insecure_listen"`
	// DataDir holds the store file, storegate.db.
	DataDir string `yaml:"data_dir"`
	// RootPublicKey is the path of HQ's root public key (PEM, PKIX).
	RootPublicKey string `yaml:"root_public_key"`
	// KeysetFile, if set, is a keyset signed by the root key, applied at
	// start when newer than the one held.
	KeysetFile string        `yaml:"keyset_file"`
	Central    CentralConfig `yaml:"central"`
	Forward    ForwardConfig `yaml:"forward"`
	// Lanes maps each lane to its barcode scanner's serial port.
	Lanes []LaneConfig `yaml:"lanes"`
	// ScanTTL is how long a scanned payment credential is held for the POS
	// to authorize by scan id.
	ScanTTL time.Duration `yaml:"scan_ttl"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
}

// CentralConfig is how to reach the central service.
type CentralConfig struct {
	// Address is the central service's gRPC address.
	Address string `yaml:"address"`
	// Timeout bounds each authorization call to central.
	Timeout time.Duration `yaml:"timeout"`
}

// ForwardConfig tunes the settlement forwarder.
type ForwardConfig struct {
	Batch      int           `yaml:"batch"`
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

// Defaults.
const (
	DefaultListen  = "127.0.0.1:7443"
	DefaultDataDir = "/var/lib/storegate"
	storeFileName  = "storegate.db"
)

// DefaultConfig returns the configuration used where the file and flags are
// silent.
func DefaultConfig() Config {
	return Config{
		Currency: gateway.DefaultCurrency,
		Listen:   DefaultListen,
		DataDir:  DefaultDataDir,
		Central:  CentralConfig{Timeout: gateway.DefaultCentralTimeout},
		Forward: ForwardConfig{
			Batch:      gateway.DefaultForwardBatch,
			Interval:   gateway.DefaultForwardInterval,
			MaxBackoff: gateway.DefaultForwardMaxBackoff,
		},
		ScanTTL:  devices.DefaultScanTTL,
		LogLevel: "info",
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
	if !currencyPattern.MatchString(c.Currency) {
		bad("currency", "%s is not a three-letter ISO 4217 code", gateway.QuoteInput(c.Currency))
	}
	if err := checkListen(c.Listen, c.InsecureListen); err != nil {
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
	if c.Forward.Batch < 1 || c.Forward.Batch > 1000 {
		bad("forward.batch", "%d outside 1 to 1000", c.Forward.Batch)
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
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	return errors.Join(errs...)
}

// currencyPattern is an ISO 4217 code, as central's ledger requires.
var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// checkListen refuses a listen address wider than loopback unless insecure is
// set: without TLS, the gateway must not be reachable from the store network.
func checkListen(addr string, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() {
		return nil
	}
	if insecure {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address; serving it without TLS needs --insecure-listen", addr)
}
