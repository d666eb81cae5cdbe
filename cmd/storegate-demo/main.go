// Command storegate-demo runs storegate end to end on loopback, in a
// temporary folder, with keys made on the spot: it starts storegate-hq and
// storegated as processes and drives them with storegatectl, printing each
// command as a person would type it and checking each answer. `make demo`
// runs it. It exits 0 only when every step gave the answer it should.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func main() {
	bin := flag.String("bin", "bin", "folder holding storegated, storegate-hq and storegatectl")
	keep := flag.Bool("keep", false, "keep the temporary folder (state, keys, logs) for a look afterwards")
	hqDB := flag.String("hq-db", "", "run HQ on this PostgreSQL database (postgres://…, empty or of its own: it is migrated) instead of its embedded ledger file")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println("storegate-demo", Version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{bin: *bin, out: os.Stdout, hqDB: *hqDB}
	err := d.run(ctx, *keep)
	if err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo FAILED: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("\ndemo OK: every step gave the answer it should.")
}

type demo struct {
	bin string
	// hqDB, when set, is the PostgreSQL database HQ keeps its books in.
	hqDB  string
	out   io.Writer
	dir   string
	step  int
	procs []*proc
	// minted holds the token files the printed commands wrote.
	minted map[string]bool
}

// hqStorage is where HQ keeps its books, as storegate-hq's flags: its
// ledger file in the demo's folder, or the PostgreSQL database of --hq-db
// (migrated at start when migrate is set).
func (d *demo) hqStorage(migrate bool) []string {
	switch {
	case d.hqDB == "":
		return []string{"--data", d.path("hq")}
	case migrate:
		return []string{"--db", d.hqDB, "--migrate"}
	}
	return []string{"--db", d.hqDB}
}

// proc is a daemon the demo started.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan error
	log  string
}

func (d *demo) run(ctx context.Context, keep bool) (err error) {
	for _, b := range []string{"storegated", "storegate-hq", "storegatectl"} {
		if _, err := os.Stat(filepath.Join(d.bin, b)); err != nil {
			return fmt.Errorf("%s not built (run `make build`): %w", b, err)
		}
	}
	abs, err := filepath.Abs(d.bin)
	if err != nil {
		return err
	}
	d.bin = abs
	d.dir, err = os.MkdirTemp("", "storegate-demo-")
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range d.procs {
			p.kill()
		}
		if keep || err != nil {
			fmt.Fprintf(d.out, "\nstate, keys and logs kept in %s\n", d.dir)
		} else {
			os.RemoveAll(d.dir)
		}
	}()
	fmt.Fprintf(d.out, "storegate demo: everything lives in %s and listens on 127.0.0.1 only.\n", d.dir)
	fmt.Fprintf(d.out, "Every command is printed as it was run: in a shell, the lines after $ do the same.\n")
	fmt.Fprintf(d.out, "$ export PATH=%s:\"$PATH\"\n", shellJoin([]string{d.bin}))
	os.Setenv("PATH", d.bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	keys := d.path("keys")
	d.heading("HQ makes its keys: a root key, a token-signing key, and a keyset signed by the root")
	if _, err := d.ctl(ctx, 0, "keys", "init", "--dir", keys); err != nil {
		return err
	}

	tlsDir := d.path("tls")
	tls := func(name string) string { return filepath.Join(tlsDir, name) }
	d.heading("Make development CAs and certificates: every link below is mutual TLS, and every certificate names its holder")
	if _, err := d.ctl(ctx, 0, "certs", "dev", "--dir", tlsDir); err != nil {
		return err
	}

	d.heading("Start the reference central service (HQ) with one prepaid account holding 100000 JPY")
	hq, err := d.start(ctx, "storegate-hq", "hq.addr", append([]string{
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--admin-addr-file", d.path("hq-admin.addr"),
		"--keys", keys, "--account", "acct-0001=100000",
		"--tls-cert", tls("server.crt"), "--tls-key", tls("server.key"), "--tls-client-ca", tls("gateway-ca.crt")},
		d.hqStorage(true)...)...)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(d.path("hq-admin.addr"))
	if err != nil {
		return err
	}
	hqAdmin := strings.TrimSpace(string(b))

	link, err := newScannerLink(d.dir)
	if err != nil {
		return err
	}
	defer link.Close()
	d.heading("Start the store's gateway, trusting HQ's root key; POS terminals must show a certificate from the POS CA naming this store and their lane; lane 1's scanner is on a serial port")
	fmt.Fprintf(d.out, "(the \"scanner\" is a pseudo-terminal linked back to back with %s, which the gateway reads as a serial port)\n", link.LanePath)
	metricsFile := d.path("metrics.addr")
	gw, err := d.start(ctx, "storegated", "gw.addr",
		"--listen", "127.0.0.1:0", "--data", d.path("store"), "--store-id", "store-0001",
		"--central", hq, "--root-key", filepath.Join(keys, "root.pub"), "--keyset", filepath.Join(keys, "keyset.cose"),
		"--tls-cert", tls("server.crt"), "--tls-key", tls("server.key"), "--tls-client-ca", tls("pos-ca.crt"),
		"--central-tls-ca", tls("server-ca.crt"), "--central-tls-cert", tls("gateway-store-0001.crt"), "--central-tls-key", tls("gateway-store-0001.key"),
		"--metrics-listen", "127.0.0.1:0", "--metrics-addr-file", metricsFile,
		"--lane", "1="+link.LanePath)
	if err != nil {
		return err
	}
	metricsAddr, err := os.ReadFile(metricsFile)
	if err != nil {
		return err
	}
	export := func(kv ...string) {
		for i := 0; i < len(kv); i += 2 {
			fmt.Fprintf(d.out, "$ export %s=%s\n", kv[i], kv[i+1])
			os.Setenv(kv[i], kv[i+1])
		}
	}
	export("STOREGATE_ADDR", gw, "STOREGATE_TLS_CA", tls("server-ca.crt"), "STOREGATE_ADMIN_SOCKET", filepath.Join(d.path("store"), "admin.sock"))

	d.heading("A client without a certificate is refused, and told why")
	out, err := d.ctl(ctx, 1, "status")
	if err != nil {
		return err
	}
	if err := expect(out, "the gateway requires a client certificate and none was presented"); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "\nstoregatectl plays lane 1's POS from here on, with its certificate (spiffe://dev.storegate.invalid/store/store-0001/lane/1):\n")
	export("STOREGATE_TLS_CERT", tls("pos-store-0001-lane-1.crt"), "STOREGATE_TLS_KEY", tls("pos-store-0001-lane-1.key"))
	lane2 := []string{"--tls-cert", tls("pos-store-0001-lane-2.crt"), "--tls-key", tls("pos-store-0001-lane-2.key")}

	d.heading("The customer's phone shows a token the central service signed for it a moment ago")
	tokenFile := d.path("token-1.txt")
	tok, err := d.mint(ctx, tokenFile, "token", "mint", "--key", filepath.Join(keys, "token.key"), "--account", "acct-0001", "--device", "phone-7f3a", "--qr")
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "(the token text is %d characters; it is in %s, and the gateway will only ever log its fingerprint)\n", len(strings.TrimSpace(tok)), tokenFile)

	d.heading("Lane 1's POS watches its scanner; the cashier scans the phone")
	watcher, err := d.watchScans(ctx)
	if err != nil {
		return err
	}
	if _, err := d.ctl(ctx, 0, "scan", "--device", link.ScannerPath, "--aim", "]Q1", "--file", tokenFile); err != nil {
		return err
	}
	scan, err := watcher.wait()
	if err != nil {
		return err
	}
	scanID := field(scan, "scan-id")
	if scanID == "" {
		return fmt.Errorf("the POS saw no scan id in %q", scan)
	}
	fmt.Fprintf(d.out, "(the POS holds scan id %s, never the token)\n", scanID)

	basket := []string{"--line", "4901234567894:food:2:300", "--line", "4909876543210:drink:1:600"}
	d.heading("Lane 1's POS authorizes a 1200 JPY basket with the scan id")
	out, err = d.ctl(ctx, 0, append([]string{"authorize", "--lane", "1", "--txn", "pos-1001", "--scan-id", scanID}, basket...)...)
	if err != nil {
		return err
	}
	if err := expect(out, "APPROVED ONLINE 1200 JPY"); err != nil {
		return err
	}
	settlement := field(out, "settlement")

	d.heading("A thief who photographed the screen replays the same token at lane 2, with lane 2's POS: declined, the token is spent")
	out, err = d.ctl(ctx, 3, append(append([]string{"authorize", "--lane", "2", "--txn", "pos-2001", "--token-file", tokenFile}, basket...), lane2...)...)
	if err != nil {
		return err
	}
	if err := expect(out, "DECLINED replayed"); err != nil {
		return err
	}
	if err := expect(out, "mode           LOCAL: the store's own checks declined it"); err != nil {
		return err
	}

	d.heading("Lane 2's POS tries lane 1: watching its scanner, paying and reversing there are refused, the certificate says lane 2")
	out, err = d.ctl(ctx, 1, append([]string{"scans", "watch", "--lane", "1", "--count", "1", "--timeout", "5s"}, lane2...)...)
	if err != nil {
		return err
	}
	if err := expect(out, "PermissionDenied"); err != nil {
		return err
	}
	out, err = d.ctl(ctx, 1, append(append([]string{"authorize", "--lane", "1", "--txn", "pos-1009", "--scan-id", scanID}, basket...), lane2...)...)
	if err != nil {
		return err
	}
	if err := expect(out, "PermissionDenied"); err != nil {
		return err
	}
	out, err = d.ctl(ctx, 1, append([]string{"reverse", "--lane", "1", "--txn", "pos-1001", "--reason", "refund to me"}, lane2...)...)
	if err != nil {
		return err
	}
	if err := expect(out, "PermissionDenied"); err != nil {
		return err
	}

	d.heading("Lane 1's POS lost the answer and retries the same transaction: the same answer, no second charge")
	out, err = d.ctl(ctx, 0, append([]string{"authorize", "--lane", "1", "--txn", "pos-1001", "--scan-id", scanID}, basket...)...)
	if err != nil {
		return err
	}
	if err := expect(out, "stored answer to an earlier identical request"); err != nil {
		return err
	}
	if got := field(out, "settlement"); got != settlement {
		return fmt.Errorf("retry returned settlement %q, first answer had %q", got, settlement)
	}

	d.heading("The customer returns the goods: lane 1 reverses the sale")
	out, err = d.ctl(ctx, 0, "reverse", "--lane", "1", "--txn", "pos-1001", "--reason", "goods returned")
	if err != nil {
		return err
	}
	if err := expect(out, "REVERSED 1200 JPY"); err != nil {
		return err
	}

	d.heading("The settlement and its reversal reach HQ; the gateway's status shows the queue drained")
	if err := d.waitDrained(ctx); err != nil {
		return err
	}
	out, err = d.ctl(ctx, 0, "status")
	if err != nil {
		return err
	}
	if err := expect(out, "outbox           0 settlements waiting"); err != nil {
		return err
	}

	d.heading("Prometheus scrapes the gateway's metrics: decisions by outcome, reason and mode")
	fmt.Fprintf(d.out, "(the demo reads the page itself; by hand: curl -s http://%s/metrics | grep -E '^storegate_(decisions_total|outbox_depth|central_reachable)')\n", strings.TrimSpace(string(metricsAddr)))
	text, err := scrape(ctx, strings.TrimSpace(string(metricsAddr)))
	if err != nil {
		return err
	}
	for _, line := range strings.Split(text, "\n") {
		for _, name := range []string{"storegate_decisions_total", "storegate_outbox_depth", "storegate_central_reachable"} {
			if strings.HasPrefix(line, name) {
				fmt.Fprintf(d.out, "  %s\n", line)
			}
		}
	}
	for _, want := range []string{
		`storegate_decisions_total{mode="online",outcome="approved",reason="none"} 1`,
		`storegate_decisions_total{mode="local",outcome="declined",reason="replayed"} 1`,
		"storegate_outbox_depth 0",
		"storegate_central_reachable 1",
	} {
		if err := expect(text, want); err != nil {
			return err
		}
	}
	if err := d.policySteps(ctx, keys, hqAdmin); err != nil {
		return err
	}

	d.heading("HQ's books, from the running HQ: one capture and its reversal, each booked once; the balance is whole again")
	books, err := d.ctl(ctx, 0, "hq", "books", "--hq", hqAdmin)
	if err != nil {
		return err
	}
	if err := expect(books, "acct-0001 100000 JPY"); err != nil {
		return err
	}
	if err := expect(books, "settlements booked: 2"); err != nil {
		return err
	}

	d.heading("Stop both services (SIGTERM: in-flight calls finish, the store is closed cleanly)")
	for _, p := range []string{"storegated", "storegate-hq"} {
		if err := d.stop(p); err != nil {
			return err
		}
	}

	d.heading("An investigator checks the gateway's hash-chained audit log")
	out, err = d.ctl(ctx, 0, "audit", "verify", "--db", filepath.Join(d.path("store"), "storegate.db"))
	if err != nil {
		return err
	}
	if err := expect(out, "audit log OK: 5 records"); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "(5 records: the approval, the replay's decline, the reversal, the gift cards' decline and the frozen account's;\n the retry was answered from the stored decision, and lane 2's refused calls stored nothing)")
	out, err = d.ctl(ctx, 0, "audit", "export", "--db", filepath.Join(d.path("store"), "storegate.db"))
	if err != nil {
		return err
	}
	if err := expect(out, `"caller":"spiffe://dev.storegate.invalid/store/store-0001/lane/1","reversal_reason":"goods returned"`); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "(each record names the certificate that asked; the reversal's says why)")

	d.heading("With HQ stopped, its ledger holds the same books, and they still add up")
	out, err = d.exec(ctx, 0, "storegate-hq", append([]string{"books"}, d.hqStorage(false)...)...)
	if err != nil {
		return err
	}
	if out != books {
		return fmt.Errorf("storegate-hq books printed other books than the running HQ served")
	}
	return nil
}

// demoPolicy is a short policy in the readable format; the documented one
// is systemd/policy.example.yaml.
const demoPolicy = `# Caps on the goods stolen balances were spent on in 2019.
mode: normal
rules:
  - id: tobacco
    categories: [tobacco]
    max_quantity_per_transaction: 10
    max_quantity_per_account: 20
    account_window: 24h
  - id: gift-cards
    categories: [giftcard]
    max_amount_per_account: 30000
    account_window: 24h
    max_amount_per_store: 100000
    store_window: 1h
    min_assurance: 2
`

// policySteps shows HQ's policy at work: a signed policy capping gift
// cards, a declined bulk purchase, and a freeze that reaches the store.
func (d *demo) policySteps(ctx context.Context, keys, hqAdmin string) error {
	hqFlags := []string{"--hq", hqAdmin, "--root-key", filepath.Join(keys, "root.key")}
	d.heading("HQ caps high-resale goods: it signs a policy with its root key and publishes it to every store")
	policyFile := d.path("policy.yaml")
	fmt.Fprintf(d.out, "(a short policy; systemd/policy.example.yaml documents the format)\n$ cat > %s <<'EOF'\n%sEOF\n", shellJoin([]string{policyFile}), demoPolicy)
	if err := os.WriteFile(policyFile, []byte(demoPolicy), 0o644); err != nil {
		return err
	}
	out, err := d.ctl(ctx, 0, append(append([]string{"policy", "publish"}, hqFlags...), policyFile)...)
	if err != nil {
		return err
	}
	if err := expect(out, "policy version 1 (chain-wide) published"); err != nil {
		return err
	}
	if err := d.waitStatus(ctx, "the store to hold policy version 1", "policyVersion"); err != nil {
		return err
	}
	out, err = d.ctl(ctx, 0, "policy", "show")
	if err != nil {
		return err
	}
	if err := expect(out, "chain-wide policy version 1"); err != nil {
		return err
	}

	d.heading("A thief with the taken-over account tries 40000 JPY of gift cards: declined at the store, central never asked")
	thiefFile := d.path("token-2.txt")
	if _, err := d.mint(ctx, thiefFile, "token", "mint", "--key", filepath.Join(keys, "token.key"), "--account", "acct-0001", "--device", "phone-7f3a"); err != nil {
		return err
	}
	out, err = d.ctl(ctx, 3, "authorize", "--lane", "1", "--txn", "pos-1002", "--token-file", thiefFile, "--line", "9784000000001:giftcard:1:40000")
	if err != nil {
		return err
	}
	if err := expect(out, "DECLINED limit_exceeded: rule gift-cards: 30000 JPY per account per 24h; this sale would make 40000"); err != nil {
		return err
	}

	d.heading("HQ freezes the account; the store declines its next token as soon as the freeze arrives")
	out, err = d.ctl(ctx, 0, append(append([]string{"freeze"}, hqFlags...), "--reason", "account takeover reported", "acct-0001")...)
	if err != nil {
		return err
	}
	if err := expect(out, "freeze list version 1 (chain-wide) published"); err != nil {
		return err
	}
	if err := d.waitStatus(ctx, "the store to hold freeze list version 1", "freezeVersion"); err != nil {
		return err
	}
	// A new token in a new file: the printed commands, copied, never pay
	// with a spent one.
	nextFile := d.path("token-3.txt")
	if _, err := d.mint(ctx, nextFile, "token", "mint", "--key", filepath.Join(keys, "token.key"), "--account", "acct-0001", "--device", "phone-7f3a"); err != nil {
		return err
	}
	out, err = d.ctl(ctx, 3, "authorize", "--lane", "1", "--txn", "pos-1003", "--token-file", nextFile, "--line", "4901234567894:food:1:300")
	if err != nil {
		return err
	}
	return expect(out, "DECLINED account_frozen")
}

// waitStatus polls the gateway's status until a version field is 1.
func (d *demo) waitStatus(ctx context.Context, what, field string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		b, err := exec.CommandContext(ctx, filepath.Join(d.bin, "storegatectl"), "status", "--json").Output()
		if err == nil {
			var st map[string]json.RawMessage
			if json.Unmarshal(b, &st) == nil && strings.Trim(string(st[field]), `"`) == "1" {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("waited 20s for %s", what)
}

func (d *demo) path(name string) string { return filepath.Join(d.dir, name) }

func (d *demo) heading(s string) {
	d.step++
	fmt.Fprintf(d.out, "\n== %d. %s\n", d.step, s)
}

// ctl runs storegatectl, shows the command and its output, and checks its
// exit code.
func (d *demo) ctl(ctx context.Context, wantExit int, args ...string) (string, error) {
	return d.exec(ctx, wantExit, "storegatectl", args...)
}

// exec runs one of the demo's binaries as a person would type it, shows
// its output, and returns its standard output, and its standard error after
// it when it is meant to fail (wantExit 1); an exit status other than
// wantExit is an error.
func (d *demo) exec(ctx context.Context, wantExit int, name string, args ...string) (string, error) {
	if err := d.checkTokenFile(args); err != nil {
		return "", err
	}
	fmt.Fprintf(d.out, "$ %s %s\n", name, shellJoin(args))
	cmd := exec.CommandContext(ctx, filepath.Join(d.bin, name), args...)
	var buf bytes.Buffer
	cmd.Stdout = io.MultiWriter(&buf, indent(d.out))
	cmd.Stderr = indent(d.out)
	if wantExit == 1 {
		cmd.Stderr = io.MultiWriter(&buf, indent(d.out))
	}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		return "", err
	}
	if code != wantExit {
		return "", fmt.Errorf("%s %s exited %d, want %d", name, args[0], code, wantExit)
	}
	return buf.String(), nil
}

// mint runs a storegatectl command whose standard output is a secret (a
// token) into the file path, as the printed command's redirection says, and
// returns the output, which it does not show. Each token goes to a file of
// its own, which a later command must name (see exec): copied in order, the
// printed commands pay with the token they just minted, never a spent one.
func (d *demo) mint(ctx context.Context, path string, args ...string) (string, error) {
	fmt.Fprintf(d.out, "$ storegatectl %s > %s\n", shellJoin(args), shellJoin([]string{path}))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(d.bin, "storegatectl"), args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.MultiWriter(f, &buf), d.out
	err = cmd.Run()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("storegatectl %s: %w", args[0], err)
	}
	if d.minted == nil {
		d.minted = map[string]bool{}
	}
	d.minted[path] = true
	return buf.String(), nil
}

// checkTokenFile fails a command that names a token file no printed
// command wrote.
func (d *demo) checkTokenFile(args []string) error {
	for i, a := range args {
		if (a == "--token-file" || a == "--file") && i+1 < len(args) && filepath.Ext(args[i+1]) == ".txt" && !d.minted[args[i+1]] {
			return fmt.Errorf("%s names %s, which no printed command wrote", strings.Join(args[:min(2, len(args))], " "), args[i+1])
		}
	}
	return nil
}

// start launches a daemon and waits for the address file it writes once it
// serves.
func (d *demo) start(ctx context.Context, name, addrFile string, args ...string) (string, error) {
	addrPath := d.path(addrFile)
	args = append(args, "--addr-file", addrPath)
	logPath := d.path(name + ".log")
	fmt.Fprintf(d.out, "$ %s %s > %s 2>&1 &\n", name, shellJoin(args), shellJoin([]string{logPath}))
	logf, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(d.bin, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", err
	}
	p := &proc{name: name, cmd: cmd, done: make(chan error, 1), log: logPath}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	d.procs = append(d.procs, p)
	deadline := time.After(20 * time.Second)
	for {
		if b, err := os.ReadFile(addrPath); err == nil && len(b) > 0 {
			addr := strings.TrimSpace(string(b))
			fmt.Fprintf(d.out, "  %s is serving on %s (pid %d)\n", name, addr, cmd.Process.Pid)
			return addr, nil
		}
		select {
		case err := <-p.done:
			p.done <- err
			return "", fmt.Errorf("%s exited before serving (%v); its log:\n%s", name, err, tail(logPath))
		case <-deadline:
			return "", fmt.Errorf("%s did not start serving within 20s; its log:\n%s", name, tail(logPath))
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (d *demo) stop(name string) error {
	for _, p := range d.procs {
		if p.name != name {
			continue
		}
		fmt.Fprintf(d.out, "$ kill -TERM %d\n", p.cmd.Process.Pid)
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return err
		}
		select {
		case err := <-p.done:
			p.done <- err
			if err != nil {
				return fmt.Errorf("%s did not exit cleanly: %v; its log:\n%s", name, err, tail(p.log))
			}
			fmt.Fprintf(d.out, "  %s (pid %d) stopped cleanly\n", name, p.cmd.Process.Pid)
			return nil
		case <-time.After(15 * time.Second):
			return fmt.Errorf("%s did not stop within 15s", name)
		}
	}
	return fmt.Errorf("no process %s", name)
}

func (p *proc) kill() {
	select {
	case err := <-p.done:
		p.done <- err
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

// watcher is a background `storegatectl scans watch`, as a lane's POS runs.
type watcher struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
	d    *demo
}

// watchScans starts a watcher for one scan on lane 1 and returns once the
// gateway has subscribed it.
func (d *demo) watchScans(ctx context.Context) (*watcher, error) {
	args := []string{"scans", "watch", "--lane", "1", "--count", "1", "--timeout", "20s"}
	fmt.Fprintf(d.out, "$ storegatectl %s &\n", shellJoin(args))
	w := &watcher{d: d, done: make(chan error, 1)}
	w.cmd = exec.CommandContext(ctx, filepath.Join(d.bin, "storegatectl"), args...)
	w.cmd.Stdout = &w.out
	stderr, err := w.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := w.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan string, 1)
	go func() {
		b := make([]byte, 256)
		n, _ := io.ReadAtLeast(stderr, b, 1)
		ready <- string(b[:n])
		io.Copy(io.Discard, stderr)
	}()
	go func() { w.done <- w.cmd.Wait() }()
	select {
	case line := <-ready:
		if !strings.Contains(line, "watching") {
			return nil, fmt.Errorf("scans watch: %s", strings.TrimSpace(line))
		}
		fmt.Fprint(indent(d.out), line)
		return w, nil
	case <-time.After(20 * time.Second):
		w.cmd.Process.Kill()
		return nil, errors.New("scans watch did not subscribe within 20s")
	}
}

// wait returns what the watcher printed once it has its scan.
func (w *watcher) wait() (string, error) {
	select {
	case err := <-w.done:
		fmt.Fprint(indent(w.d.out), w.out.String())
		if err != nil {
			return "", fmt.Errorf("scans watch: %v", err)
		}
		return w.out.String(), nil
	case <-time.After(25 * time.Second):
		w.cmd.Process.Kill()
		return "", errors.New("the POS saw no scan within 25s")
	}
}

// scrape fetches the gateway's metrics page.
func scrape(ctx context.Context, addr string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/metrics", nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %s", res.Status)
	}
	return string(b), nil
}

// waitDrained polls the gateway's status until its outbox is empty.
func (d *demo) waitDrained(ctx context.Context) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		cmd := exec.CommandContext(ctx, filepath.Join(d.bin, "storegatectl"), "status", "--json")
		b, err := cmd.Output()
		if err == nil {
			var st struct {
				OutboxDepth json.Number `json:"outboxDepth"`
			}
			if json.Unmarshal(b, &st) == nil && (st.OutboxDepth == "" || st.OutboxDepth == "0") {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("the outbox did not drain to HQ within 20s")
}

// shellJoin quotes the arguments that need it, so a printed command can be
// pasted into a POSIX shell and runs with the same arguments: anything but
// letters, digits and @%+=:,./_- goes in single quotes.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.IndexFunc(a, unsafeInShell) >= 0 {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// unsafeInShell reports whether r needs quoting in a shell word.
func unsafeInShell(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return false
	}
	return !strings.ContainsRune("@%+=:,./_-", r)
}

func expect(out, want string) error {
	if !strings.Contains(out, want) {
		return fmt.Errorf("expected %q in the output above", want)
	}
	return nil
}

// field returns the word printed after the word name in the output.
func field(out, name string) string {
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == name {
			return f[i+1]
		}
	}
	return ""
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// indent prefixes each line written with two spaces.
func indent(w io.Writer) io.Writer { return &indenter{w: w, bol: true} }

type indenter struct {
	w   io.Writer
	bol bool
}

func (in *indenter) Write(p []byte) (int, error) {
	for _, c := range p {
		if in.bol {
			if _, err := in.w.Write([]byte("  ")); err != nil {
				return 0, err
			}
		}
		if _, err := in.w.Write([]byte{c}); err != nil {
			return 0, err
		}
		in.bol = c == '\n'
	}
	return len(p), nil
}
