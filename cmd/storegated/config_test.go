package main

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

const exampleConfig = "../../systemd/storegated.yaml"

// yamlKeys lists the dotted yaml names of every leaf field of a struct type.
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			keys = append(keys, yamlKeys(f.Type, prefix+name+".")...)
			continue
		}
		keys = append(keys, prefix+name)
	}
	return keys
}

func TestExampleConfig(t *testing.T) {
	c := DefaultConfig()
	if err := c.LoadConfigFile(exampleConfig); err != nil {
		t.Fatal(err)
	}
	t.Run("Valid", func(t *testing.T) {
		if err := c.Validate(); err != nil {
			t.Fatalf("the example config does not validate: %v", err)
		}
	})
	t.Run("EveryFieldDocumented", func(t *testing.T) {
		b, err := os.ReadFile(exampleConfig)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, key := range yamlKeys(reflect.TypeOf(Config{}), "") {
			parts := strings.Split(key, ".")
			leaf := parts[len(parts)-1]
			indent := strings.Repeat("  ", len(parts)-1)
			line := regexp.MustCompile(`(?m)^` + indent + regexp.QuoteMeta(leaf) + `:`)
			loc := line.FindStringIndex(text)
			if loc == nil {
				t.Errorf("the example config does not set %s", key)
				continue
			}
			// A comment belongs to the paragraph (the lines up to a blank
			// one) that holds the field.
			commented := false
			for _, l := range slices.Backward(strings.Split(strings.TrimSuffix(text[:loc[0]], "\n"), "\n")) {
				l = strings.TrimSpace(l)
				if strings.HasPrefix(l, "#") {
					commented = true
					break
				}
				if l == "" {
					break
				}
			}
			if !commented {
				t.Errorf("%s has no comment in its paragraph", key)
			}
		}
	})
	t.Run("SameAsDefaults", func(t *testing.T) {
		// The example shows the defaults wherever it does not need a
		// store's own value.
		d := DefaultConfig()
		for name, pair := range map[string][2]any{
			"currency":                 {c.Currency, d.Currency},
			"forward":                  {c.Forward, d.Forward},
			"grpc":                     {c.GRPC, d.GRPC},
			"metrics":                  {c.Metrics, d.Metrics},
			"health":                   {c.Health, d.Health},
			"shutdown_timeout":         {c.ShutdownTimeout, d.ShutdownTimeout},
			"central.timeout":          {c.Central.Timeout, d.Central.Timeout},
			"log_level":                {c.LogLevel, d.LogLevel},
			"data_dir":                 {c.DataDir, d.DataDir},
			"insecure_listen":          {c.InsecureListen, d.InsecureListen},
			"central.tls.server_name":  {c.Central.TLS.ServerName, d.Central.TLS.ServerName},
			"central.insecure":         {c.Central.Insecure, d.Central.Insecure},
			"tls.client_ca_file (set)": {c.TLS.ClientCAFile != "", true},
			"chain":                    {c.Chain, d.Chain},
			"insecure_callers":         {c.InsecureCallers, d.InsecureCallers},
			"admin":                    {c.Admin, d.Admin},
			"reversal":                 {c.Reversal, d.Reversal},
		} {
			if !reflect.DeepEqual(pair[0], pair[1]) {
				t.Errorf("%s: example %v, default %v", name, pair[0], pair[1])
			}
		}
	})
}

func TestConfig_ValidateNamesFields(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.StoreID, c.RootPublicKey, c.Central.Address = "s1", "root.pub", "127.0.0.1:7444"
		return c
	}
	if err := func() *Config { c := valid(); return &c }().Validate(); err != nil {
		t.Fatalf("base config: %v", err)
	}
	for _, c := range []struct {
		field string
		edit  func(*Config)
	}{
		{"tls.key_file", func(c *Config) { c.TLS.CertFile = "s.crt" }},
		{"tls.cert_file", func(c *Config) { c.TLS.KeyFile = "s.key" }},
		{"tls.client_ca_file", func(c *Config) { c.TLS.ClientCAFile = "ca.crt" }},
		{"listen", func(c *Config) { c.Listen = "192.0.2.10:7443" }},
		{"listen", func(c *Config) { c.Listen = "no-port" }},
		{"central.tls.key_file", func(c *Config) { c.Central.TLS = CentralTLSConfig{CAFile: "ca", CertFile: "g.crt"} }},
		{"central.tls.ca_file", func(c *Config) { c.Central.TLS.ServerName = "hq" }},
		{"central.tls.ca_file", func(c *Config) { c.Central.Address = "hq.example.internal:7444" }},
		{"grpc.max_message_bytes", func(c *Config) { c.GRPC.MaxMessageBytes = 10 }},
		{"grpc.default_deadline", func(c *Config) { c.GRPC.DefaultDeadline = 0 }},
		{"metrics.listen", func(c *Config) { c.Metrics.Listen = "0.0.0.0:9464" }},
		{"metrics.listen", func(c *Config) { c.Metrics.Listen = "9464" }},
		{"health.check_interval", func(c *Config) { c.Health.CheckInterval = time.Hour }},
		{"shutdown_timeout", func(c *Config) { c.ShutdownTimeout = 0 }},
		{"chain", func(c *Config) { c.Chain = "Acme Chain" }},
		{"chain", func(c *Config) { c.Chain = "" }},
		{"insecure_callers", func(c *Config) { c.InsecureCallers, c.Listen, c.InsecureListen = true, "0.0.0.0:7443", true }},
		{"insecure_callers", func(c *Config) {
			c.InsecureCallers, c.TLS = true, TLSConfig{CertFile: "s.crt", KeyFile: "s.key", ClientCAFile: "pos-ca.crt"}
		}},
		{"store_id", func(c *Config) {
			c.StoreID, c.TLS = "store:1", TLSConfig{CertFile: "s.crt", KeyFile: "s.key", ClientCAFile: "pos-ca.crt"}
		}},
		{"admin.socket", func(c *Config) { c.Admin.Socket = "/" + strings.Repeat("x", 200) }},
		{"reversal.window", func(c *Config) { c.Reversal.Window = -time.Second }},
		{"reversal.window", func(c *Config) { c.Reversal.Window = 32 * 24 * time.Hour }},
		{"reversal.business_day_start", func(c *Config) { c.Reversal.BusinessDayStart = "24:00" }},
		{"reversal.business_day_start", func(c *Config) { c.Reversal.BusinessDayStart = "4:00" }},
		{"reversal.business_day_start", func(c *Config) { c.Reversal.BusinessDayStart = "04:00pm" }},
	} {
		cfg := valid()
		c.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "config: "+c.field+":") {
			t.Errorf("%s: Validate = %v, want an error naming the field", c.field, err)
		}
	}
	t.Run("WideWithMutualTLS", func(t *testing.T) {
		cfg := valid()
		cfg.Listen = "0.0.0.0:7443"
		cfg.TLS = TLSConfig{CertFile: "s.crt", KeyFile: "s.key", ClientCAFile: "ca.crt"}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("MetricsOff", func(t *testing.T) {
		for _, off := range []string{"", MetricsOff} {
			cfg := valid()
			cfg.Metrics.Listen = off
			if err := cfg.Validate(); err != nil || cfg.Metrics.Enabled() {
				t.Errorf("metrics.listen %q: %v, enabled %v; want valid and off", off, err, cfg.Metrics.Enabled())
			}
		}
	})
}

func TestConfig_AdminSocketPath(t *testing.T) {
	c := DefaultConfig()
	c.DataDir = "/var/lib/storegate"
	t.Setenv("RUNTIME_DIRECTORY", "")
	if got := c.AdminSocketPath(); got != "/var/lib/storegate/admin.sock" {
		t.Errorf("outside systemd: %s, want admin.sock in data_dir", got)
	}
	t.Setenv("RUNTIME_DIRECTORY", "/run/storegate")
	if got := c.AdminSocketPath(); got != "/run/storegate/admin.sock" {
		t.Errorf("under systemd's RuntimeDirectory: %s, want /run/storegate/admin.sock", got)
	}
	c.Admin.Socket = "/srv/admin.sock"
	if got := c.AdminSocketPath(); got != "/srv/admin.sock" {
		t.Errorf("with admin.socket: %s, want /srv/admin.sock", got)
	}
}

func TestConfig_ReversalWindow(t *testing.T) {
	c := DefaultConfig()
	c.Reversal.BusinessDayStart = "04:30"
	w, err := c.Reversal.ReversalWindow()
	if err != nil || w.DayStart != 4*time.Hour+30*time.Minute || w.Within != 0 || w.Location != time.Local {
		t.Fatalf("ReversalWindow = %+v, %v; want the business day from 04:30 local time", w, err)
	}
}
