package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

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
	Offline    OfflineConfig `yaml:"offline"`
	Forward    ForwardConfig `yaml:"forward"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
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
}

// OfflineConfig holds the offline caps, in minor units, until HQ's policy
// sets them. All zero (the default) approves nothing offline.
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
		Central: CentralConfig{
			Timeout:         gateway.DefaultCentralTimeout,
			BreakerFailures: gateway.DefaultBreakerFailures,
			BreakerCooldown: gateway.DefaultBreakerCooldown,
		},
		Forward: ForwardConfig{
			Batch:      gateway.DefaultForwardBatch,
			BatchWait:  gateway.DefaultForwardBatchWait,
			Interval:   gateway.DefaultForwardInterval,
			MaxBackoff: gateway.DefaultForwardMaxBackoff,
		},
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
	} else if len(c.StoreID) > gateway.MaxIDLength {
		bad("store_id", "longer than %d characters", gateway.MaxIDLength)
	}
	if len(c.Currency) != 3 {
		bad("currency", "%q is not a three-letter ISO 4217 code", c.Currency)
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
