package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storegate/certs"
)

func TestCtl_CertsDev(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	out, errOut, code := runCtl(t, "", "certs", "dev", "--dir", dir, "--store", "store-0042", "--host", "register-1.store.lan")
	if code != exitOK {
		t.Fatalf("certs dev: exit %d: %s%s", code, out, errOut)
	}
	for _, name := range []string{"server-ca.crt", "pos-ca.crt", "gateway-ca.crt", "operator-ca.crt", "server.crt",
		"gateway-store-0042.crt", "pos-store-0042-lane-1.crt", "pos-store-0042-lane-2.crt", "supervisor-store-0042-manager.crt", "operator-ops.crt"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("default set: %v", err)
		}
	}
	if !strings.Contains(out, "spiffe://"+certs.DevChain+"/store/store-0042/lane/2") || !strings.Contains(out, "register-1.store.lan") {
		t.Errorf("certs dev does not say what it made:\n%s", out)
	}
	for _, c := range []struct {
		args []string
		file string
		want certs.Identity
	}{
		{[]string{"--store", "store-0042", "--lane", "7"}, "pos-store-0042-lane-7.crt", certs.POS(certs.DevChain, "store-0042", "7")},
		{[]string{"--store", "store-0042", "--supervisor", "night"}, "supervisor-store-0042-night.crt", certs.Supervisor(certs.DevChain, "store-0042", "night")},
		{[]string{"--store", "store-0043", "--gateway"}, "gateway-store-0043.crt", certs.Gateway(certs.DevChain, "store-0043")},
		{[]string{"--operator", "hanako"}, "operator-hanako.crt", certs.Operator(certs.DevChain, "hanako")},
	} {
		t.Run(c.file, func(t *testing.T) {
			out, errOut, code := runCtl(t, "", append([]string{"certs", "dev", "--dir", dir}, c.args...)...)
			if code != exitOK || !strings.Contains(out, c.want.String()) {
				t.Fatalf("exit %d: %s%s; want %s", code, out, errOut, c.want)
			}
			b, err := os.ReadFile(filepath.Join(dir, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := parseIdentity(t, b); got != c.want {
				t.Fatalf("%s names %+v, want %+v", c.file, got, c.want)
			}
			if _, _, code := runCtl(t, "", append([]string{"certs", "dev", "--dir", dir}, c.args...)...); code != exitError {
				t.Fatalf("issuing %s again: exit %d, want %d (never overwrite)", c.file, code, exitError)
			}
		})
	}
	for name, args := range map[string][]string{
		"ErrTwoKinds":        {"--lane", "3", "--gateway"},
		"ErrHostWithKind":    {"--lane", "3", "--host", "x"},
		"ErrColonInStore":    {"--store", "s:1", "--lane", "3"},
		"ErrBadChain":        {"--chain", "Not A Domain", "--operator", "x"},
		"ErrSlashInOperator": {"--operator", "a/b"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, errOut, code := runCtl(t, "", append([]string{"certs", "dev", "--dir", dir}, args...)...); code != exitUsage {
				t.Fatalf("exit %d: %s; want %d", code, errOut, exitUsage)
			}
		})
	}
}

// parseIdentity reads the identity a PEM certificate names.
func parseIdentity(t *testing.T, pemBytes []byte) certs.Identity {
	t.Helper()
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	id, err := certs.FromCertificate(c)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// storegatectl certs lists each certificate with its subject, issuer and
// expiry, and fails when one expires within --days days or has expired.
func TestCtl_Certs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	if _, errOut, code := runCtl(t, "", "certs", "dev", "--dir", dir); code != exitOK {
		t.Fatalf("certs dev: exit %d: %s", code, errOut)
	}
	out, errOut, code := runCtl(t, "", "certs", "--dir", dir)
	if code != exitOK {
		t.Fatalf("certs --dir on a fresh set: exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{
		"pos-store-0001-lane-1.crt", "spiffe://dev.storegate.invalid/store/store-0001/lane/1", "storegate dev pos CA",
		"server.crt", "storegate dev server (localhost, 127.0.0.1, ::1)", "storegate dev server CA [CA]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("certs --dir lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, ".key") {
		t.Errorf("certs --dir lists key files:\n%s", out)
	}

	// A lane certificate that expires in 5 days and one that expired.
	soonCert, _, err := certs.IssueDev(dir, certs.POS(certs.DevChain, certs.DefaultDevStore, "8"),
		certs.DevOptions{Now: time.Now().Add(-certs.DevLeafValidity + 5*24*time.Hour + time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	oldCert, _, err := certs.IssueDev(dir, certs.POS(certs.DevChain, certs.DefaultDevStore, "9"),
		certs.DevOptions{Now: time.Now().Add(-certs.DevLeafValidity - 30*24*time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runCtl(t, "", "certs", "--dir", dir)
	if code != exitError || !strings.Contains(errOut, "2 certificate(s) expire within 14 days, or have expired") {
		t.Fatalf("with one expiring and one expired: exit %d, %q; want %d naming 2", code, errOut, exitError)
	}
	for _, want := range []string{"spiffe://dev.storegate.invalid/store/store-0001/lane/8", "  5\n", "expired 30 days ago"} {
		if !strings.Contains(out, want) {
			t.Errorf("certs lacks %q:\n%s", want, out)
		}
	}
	if _, _, code := runCtl(t, "", "certs", "--days", "4", soonCert); code != exitOK {
		t.Errorf("5 days left with --days 4: exit %d, want %d", code, exitOK)
	}
	if _, _, code := runCtl(t, "", "certs", "--days", "0", oldCert); code != exitError {
		t.Errorf("an expired certificate with --days 0: exit %d, want %d", code, exitError)
	}
	if _, _, code := runCtl(t, "", "certs"); code != exitUsage {
		t.Errorf("certs with nothing to read: exit %d, want %d", code, exitUsage)
	}
	if _, errOut, code := runCtl(t, "", "certs", filepath.Join(dir, "pos-ca.key")); code != exitError || !strings.Contains(errOut, "no PEM certificate") {
		t.Errorf("a key file: exit %d, %q; want %d", code, errOut, exitError)
	}
}
