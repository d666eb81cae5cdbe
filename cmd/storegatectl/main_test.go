package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"storegate/gateway"
	"storegate/hqkeys"
)

// runCtl runs storegatectl in process and returns its output and exit code.
func runCtl(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return out.String(), errb.String(), code
}

func TestCtl_Usage(t *testing.T) {
	out, _, code := runCtl(t, "", "help")
	if code != exitOK {
		t.Fatalf("help exit %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out, c.name) {
			t.Errorf("help does not list %q", c.name)
		}
	}
	if _, errOut, code := runCtl(t, "", "frobnicate"); code != exitUsage || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: exit %d, %q", code, errOut)
	}
	if out, _, code := runCtl(t, "", "--version"); code != exitOK || !strings.HasPrefix(out, "storegatectl ") {
		t.Fatalf("--version: exit %d, %q", code, out)
	}
	if _, errOut, code := runCtl(t, "", "authorize", "--line", "a:b:1:1", "--token", "x"); code != exitUsage || !strings.Contains(errOut, "--txn") {
		t.Fatalf("authorize without --txn: exit %d, %q", code, errOut)
	}
}

func TestCtl_KeysAndTokens(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if out, errOut, code := runCtl(t, "", "keys", "init", "--dir", dir); code != exitOK || !strings.Contains(out, "keyset version 1") {
		t.Fatalf("keys init: exit %d, %s%s", code, out, errOut)
	}
	if fi, err := os.Stat(filepath.Join(dir, "token.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token.key: %v, mode %v; want 0600", err, fi.Mode())
	}
	t.Run("ErrNoOverwrite", func(t *testing.T) {
		before, _ := os.ReadFile(filepath.Join(dir, "root.key"))
		if _, _, code := runCtl(t, "", "keys", "init", "--dir", dir); code != exitError {
			t.Fatalf("second keys init: exit %d, want %d", code, exitError)
		}
		if after, _ := os.ReadFile(filepath.Join(dir, "root.key")); !bytes.Equal(before, after) {
			t.Fatal("root.key was overwritten")
		}
	})
	keys, err := hqkeys.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(t.TempDir(), "token.png")
	out, qr, code := runCtl(t, "", "token", "mint", "--key", filepath.Join(dir, "token.key"), "--account", "acct-9", "--ofl", "3000", "--qr", "--png", png)
	if code != exitOK {
		t.Fatalf("token mint: exit %d: %s", code, qr)
	}
	tok, err := gateway.TokenVerifier{}.Verify(strings.TrimSpace(out), keys.Keyring, time.Now())
	if err != nil {
		t.Fatalf("minted token does not verify: %v", err)
	}
	if tok.Account != "acct-9" || tok.OfflineAllowance != 3000 || tok.Assurance != gateway.AssuranceDeviceBound {
		t.Fatalf("claims = %+v", tok.Claims)
	}
	if !strings.Contains(qr, "█") || strings.Contains(qr, "SGP1:") {
		t.Fatalf("--qr should draw blocks on stderr, not print the token there: %q", qr[:min(80, len(qr))])
	}
	if b, err := os.ReadFile(png); err != nil || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("--png wrote %d bytes, %v; want a PNG", len(b), err)
	}
	if _, _, code := runCtl(t, "", "token", "mint", "--key", filepath.Join(dir, "token.key"), "--account", "a", "--ttl", "10m"); code != exitUsage {
		t.Fatalf("--ttl 10m: exit %d, want %d", code, exitUsage)
	}
}

// storegatectl scan writes what a scanner would: the AIM id, the text, the
// terminator, through a real pseudo-terminal.
func TestCtl_Scan(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	if out, errOut, code := runCtl(t, "", "scan", "--device", slave.Name(), "--aim", "]E0", "4901234567894"); code != exitOK {
		t.Fatalf("scan: exit %d: %s%s", code, out, errOut)
	}
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, err := master.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf[:n]), "]E04901234567894\r"; got != want {
		t.Fatalf("the scanner end read %q, want %q", got, want)
	}
	if _, _, code := runCtl(t, "", "scan", "--device", slave.Name(), "--aim", "Q1", "x"); code != exitUsage {
		t.Fatalf("--aim without ]: exit %d, want %d", code, exitUsage)
	}
}
