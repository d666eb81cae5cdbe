package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"storegate/devices"
	"storegate/gateway"
)

// fieldError is how Validate names what is wrong: "config: " and the field
// as the YAML file spells it, such as lanes[2].device.
var fieldError = regexp.MustCompile(`^config: [a-z_]+(\[[0-9]+\])?(\.[a-z_]+)*: `)

// FuzzConfig reads arbitrary bytes as storegated's config file over the
// defaults, then validates. Nothing may panic; a file YAML cannot read is an
// error naming the file; every complaint of Validate names its field; and a
// configuration Validate accepts is one the daemon can run on: ids central
// accepts, a loopback listen address unless insecure_listen, and every
// bound in range.
func FuzzConfig(f *testing.F) {
	example, err := os.ReadFile("../../systemd/storegated.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	minimal := "store_id: s1\nroot_public_key: /k\ncentral: {address: '127.0.0.1:1'}\n"
	for _, s := range []string{
		minimal,
		minimal + "store_id: s2\n",
		minimal + "store_idd: s1\n",
		minimal + "currency: USD\nlisten: 0.0.0.0:7443\ninsecure_listen: true\n",
		minimal + "listen: '[::1]:0'\nscan_ttl: 10m\ncentral: {address: x, timeout: 10s}\n",
		minimal + "lanes: [{lane: '1', device: /dev/a}, {lane: '1', device: /dev/a, baud: 7, terminator: nul, max_frame: -1}]\n",
		minimal + "lanes: [~, {}]\nforward: {batch: 0, interval: -1s, max_backoff: 0}\n",
		minimal + "scan_ttl: 9223372036854775807\ncentral: {timeout: -9223372036854775808}\n",
		"a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n",
		"store_id: !!binary aGVsbG8=\n",
		"--- \nstore_id: s1\n---\nstore_id: s2\n",
		"\tstore_id: s1\n",
		"",
		"~",
		"[]",
		"store_id: [s1]\n",
		"lanes: {lane: 1}\n",
	} {
		f.Add([]byte(s))
	}
	path := filepath.Join(f.TempDir(), "storegated.yaml")

	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c := DefaultConfig()
		if err := c.LoadConfigFile(path); err != nil {
			if !strings.HasPrefix(err.Error(), "config "+path+": ") {
				t.Fatalf("LoadConfigFile error %q does not name the file", err)
			}
			return
		}
		err := c.Validate()
		if err != nil {
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			} else {
				errs = []error{err}
			}
			for _, e := range errs {
				if !fieldError.MatchString(e.Error()) {
					t.Fatalf("Validate error %q names no field", e)
				}
			}
			return
		}
		checkRunnable(t, &c)
	})
}

// FuzzConfigValidate fills the configuration's fields with arbitrary values,
// as flags or a file may, so that the fuzzer reaches every rule of Validate
// rather than the YAML decoder's: whatever Validate accepts must be runnable,
// and whatever it refuses it must name.
func FuzzConfigValidate(f *testing.F) {
	f.Add("store-0001", "JPY", "127.0.0.1:7443", false, "/var/lib/storegate", "/etc/storegate/root.pub", "127.0.0.1:7444", int64(800), 100, "1", "/dev/storegate/lane1", 9600, "any", 4096, int64(120_000), "info")
	f.Add("s1", "USD", "[::1]:0", false, "d", "k", "c", int64(10_000), 1000, "lane-2", "/dev/ttyACM0", 0, "crlf", 0, int64(5_000), "debug")
	f.Add("s1", "JPY", "0.0.0.0:7443", true, "d", "k", "c", int64(1), 1, "", "", 7, "nul", -1, int64(4_999), "loud")
	f.Add("store 1", "jpy", "localhost:1", false, "", "", "", int64(0), 0, "1", "/dev/a", 115200, "cr", 65536, int64(600_001), "")
	f.Fuzz(func(t *testing.T, storeID, currency, listen string, insecure bool, dataDir, rootKey, central string,
		timeoutMS int64, batch int, lane, device string, baud int, term string, maxFrame int, scanTTLms int64, logLevel string) {
		c := DefaultConfig()
		c.StoreID, c.Currency, c.Listen, c.InsecureListen = storeID, currency, listen, insecure
		c.DataDir, c.RootPublicKey, c.Central.Address = dataDir, rootKey, central
		c.Central.Timeout, c.Forward.Batch = time.Duration(timeoutMS)*time.Millisecond, batch
		c.Lanes = []LaneConfig{{Lane: lane, Device: device, Baud: baud, Terminator: term, MaxFrame: maxFrame}}
		c.ScanTTL, c.LogLevel = time.Duration(scanTTLms)*time.Millisecond, logLevel
		err := c.Validate()
		if err == nil {
			checkRunnable(t, &c)
			return
		}
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			if !fieldError.MatchString(e.Error()) {
				t.Fatalf("Validate error %q names no field", e)
			}
		}
	})
}

// checkRunnable fails the test unless c is inside every limit the daemon and
// central rely on.
func checkRunnable(t *testing.T, c *Config) {
	t.Helper()
	host, _, err := net.SplitHostPort(c.Listen)
	switch {
	case !gateway.ValidID(c.StoreID):
		t.Fatalf("accepted store_id %q, which central refuses", c.StoreID)
	case !regexp.MustCompile(`^[A-Z]{3}$`).MatchString(c.Currency):
		t.Fatalf("accepted currency %q, which is no ISO 4217 code", c.Currency)
	case err != nil:
		t.Fatalf("accepted listen %q: %v", c.Listen, err)
	case !c.InsecureListen && !c.TLS.Mutual() && host != "localhost" && !net.ParseIP(host).IsLoopback():
		t.Fatalf("accepted listen %q without mutual TLS or insecure_listen", c.Listen)
	case !c.Central.Insecure && c.Central.TLS.CAFile == "" && !isLoopback(c.Central.Address):
		t.Fatalf("accepted plaintext to central %q without central.insecure", c.Central.Address)
	case c.DataDir == "" || c.RootPublicKey == "" || c.Central.Address == "":
		t.Fatalf("accepted an empty data_dir, root_public_key or central.address: %+v", c)
	case c.Central.Timeout <= 0 || c.Central.Timeout > 10*time.Second:
		t.Fatalf("accepted central.timeout %s", c.Central.Timeout)
	case c.Forward.Batch < 1 || c.Forward.Batch > 1000 || c.Forward.Interval <= 0 || c.Forward.MaxBackoff <= 0:
		t.Fatalf("accepted forward %+v", c.Forward)
	case c.ScanTTL < 5*time.Second || c.ScanTTL > 10*time.Minute:
		t.Fatalf("accepted scan_ttl %s", c.ScanTTL)
	}
	lanes, devs := map[string]bool{}, map[string]bool{}
	for i, l := range c.Lanes {
		if !gateway.ValidID(l.Lane) || l.Device == "" || lanes[l.Lane] || devs[l.Device] {
			t.Fatalf("accepted lanes[%d] %+v among %+v", i, l, c.Lanes)
		}
		lanes[l.Lane], devs[l.Device] = true, true
		if _, err := devices.ParseTerminator(l.Terminator); err != nil || l.MaxFrame < 0 || l.MaxFrame > 65536 || (l.Baud != 0 && !devices.ValidBaud(l.Baud)) {
			t.Fatalf("accepted lanes[%d] %+v", i, l)
		}
	}
}

func TestConfig_FieldErrors(t *testing.T) {
	for _, c := range []struct {
		name, key, value, field string
	}{
		{"StoreIDWithSpace", "store_id", "store 0001", "store_id"},
		{"StoreIDWithNewline", "store_id", `"s1\n"`, "store_id"},
		{"StoreIDTooLong", "store_id", strings.Repeat("s", 65), "store_id"},
		{"CurrencyLowercase", "currency", "jpy", "currency"},
		{"CurrencyDigits", "currency", `"123"`, "currency"},
		{"CurrencyYenSign", "currency", `"¥"`, "currency"},
		{"ListenWide", "listen", "0.0.0.0:7443", "listen"},
		{"ListenNoPort", "listen", "127.0.0.1", "listen"},
		{"CentralTimeoutZero", "central", "{address: '127.0.0.1:7444', timeout: 0s}", "central.timeout"},
		{"CentralPlaintextRemote", "central", "{address: 'hq.example:7444'}", "central.tls.ca_file"},
		{"ForwardBatchHuge", "forward", "{batch: 1001}", "forward.batch"},
		{"LaneDuplicate", "lanes", "[{lane: '1', device: /dev/a}, {lane: '1', device: /dev/b}]", "lanes[1].lane"},
		{"LaneBadID", "lanes", "[{lane: 'lane 1', device: /dev/a}]", "lanes[0].lane"},
		{"DeviceTwice", "lanes", "[{lane: '1', device: /dev/a}, {lane: '2', device: /dev/a}]", "lanes[1].device"},
		{"ScanTTLShort", "scan_ttl", "1s", "scan_ttl"},
		{"LogLevel", "log_level", "loud", "log_level"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fields := map[string]string{"store_id": "s1", "root_public_key": "/k", "central": "{address: '127.0.0.1:7444'}"}
			fields[c.key] = c.value
			var b strings.Builder
			for k, v := range fields {
				b.WriteString(k + ": " + v + "\n")
			}
			path := filepath.Join(t.TempDir(), "storegated.yaml")
			if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			if err := cfg.LoadConfigFile(path); err != nil {
				t.Fatal(err)
			}
			err := cfg.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), "config: "+c.field+": ") {
				t.Fatalf("Validate = %v, want an error naming %s", err, c.field)
			}
			if strings.Count(err.Error(), "config: ") != 1 {
				t.Fatalf("Validate = %q, want exactly one complaint", err)
			}
		})
	}
}
