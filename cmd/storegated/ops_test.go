package main_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"storegate/certs"
	"storegate/gateway"
	"storegate/hqkeys"
	storegatev1 "storegate/proto/storegate/v1"
	"storegate/storecache"
)

// notifySocket listens where systemd would, and passes on each datagram.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	msgs := make(chan string, 1024)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return path, msgs
}

// waitNotify waits for a datagram holding the line want, and returns the
// datagrams seen before it.
func waitNotify(t *testing.T, msgs <-chan string, want string, d *daemon) []string {
	t.Helper()
	var seen []string
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				t.Fatalf("notify socket closed before %s; saw %q", want, seen)
			}
			if slices.Contains(strings.Split(m, "\n"), want) {
				return seen
			}
			seen = append(seen, m)
		case <-deadline:
			t.Fatalf("no %s within 15s; saw %q\n%s", want, seen, d.log)
		}
	}
}

func TestStoregated_SystemdNotify(t *testing.T) {
	keys := t.TempDir()
	if _, err := hqkeys.Init(keys); err != nil {
		t.Fatal(err)
	}
	sock, msgs := notifySocket(t)
	// WATCHDOG_PID is left out (TestMain unset it): go-systemd then pings
	// for any process, as systemd's own sd_watchdog_enabled does.
	env := []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=300000"}
	// Central is unreachable: the gateway still decides (offline), so it
	// is ready, healthy and pings the watchdog.
	d := startDaemonEnv(t, env, "storegated", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--data", t.TempDir(), "--store-id", "s1", "--central", "127.0.0.1:1", "--root-key", filepath.Join(keys, "root.pub"))

	if before := waitNotify(t, msgs, "READY=1", d); len(before) != 0 {
		t.Fatalf("datagrams before READY=1: %q", before)
	}
	waitNotify(t, msgs, "WATCHDOG=1", d)
	waitNotify(t, msgs, "WATCHDOG=1", d)
	res, err := healthpb.NewHealthClient(dial(t, d.addr)).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "storegate.v1.PaymentService"})
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health with central unreachable = %v, %v; want SERVING (the gateway decides offline)", res, err)
	}

	d.cmd.Process.Signal(syscall.SIGTERM)
	waitNotify(t, msgs, "STOPPING=1", d)
	d.wait()
}

// slowCentral is a central service whose Authorize waits for release, so a
// test can hold a decision in flight.
type slowCentral struct {
	storegatev1.UnimplementedCentralServiceServer
	entered chan struct{}
	release chan struct{}
}

func (c *slowCentral) Authorize(ctx context.Context, in *storegatev1.CentralServiceAuthorizeRequest) (*storegatev1.CentralServiceAuthorizeResponse, error) {
	c.entered <- struct{}{}
	select {
	case <-c.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &storegatev1.CentralServiceAuthorizeResponse{Approved: true, AuthorizationId: "auth-slow", Account: "acct-0001"}, nil
}

func TestStoregated_ShutdownFinishesInFlight(t *testing.T) {
	keysDir := t.TempDir()
	keys, err := hqkeys.Init(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hq := &slowCentral{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s := grpc.NewServer()
	storegatev1.RegisterCentralServiceServer(s, hq)
	go s.Serve(ln)
	t.Cleanup(s.Stop)

	data := t.TempDir()
	d := startDaemon(t, "storegated", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data", data, "--insecure-callers",
		"--store-id", "s1", "--central", ln.Addr().String(), "--central-timeout", "10s",
		"--root-key", filepath.Join(keysDir, "root.pub"), "--keyset", filepath.Join(keysDir, "keyset.cose"))
	conn := dial(t, d.addr)
	watch, err := healthpb.NewHealthClient(conn).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := watch.Recv(); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before shutdown: %v, %v; want SERVING", res, err)
	}

	w := &world{keys: keys}
	tok := w.mint(t, keys.Token, "acct-0001", time.Now(), time.Minute)
	type answer struct {
		res *storegatev1.AuthorizeResponse
		err error
	}
	answers := make(chan answer, 1)
	go func() {
		res, err := storegatev1.NewPaymentServiceClient(conn).Authorize(context.Background(), sale("1", "pos-9", tok))
		answers <- answer{res, err}
	}()
	select {
	case <-hq.entered:
	case <-time.After(10 * time.Second):
		t.Fatalf("the decision never reached central\n%s", d.log)
	}

	// The decision is in flight, waiting for central: stop the daemon.
	d.cmd.Process.Signal(syscall.SIGTERM)
	if res, err := watch.Recv(); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health after SIGTERM: %v, %v; want NOT_SERVING", res, err)
	}
	select {
	case a := <-answers:
		t.Fatalf("the decision was answered before central answered: %v, %v", a.res, a.err)
	case <-time.After(300 * time.Millisecond):
	}
	close(hq.release)
	a := <-answers
	if a.err != nil || a.res.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
		t.Fatalf("in-flight decision: %v, %v; want it finished and APPROVED\n%s", a.res, a.err, d.log)
	}
	d.wait()

	// Every committed decision and its queued settlement is on disk, in a
	// file that was closed cleanly.
	st := storecache.NewStore(filepath.Join(data, "storegate.db"))
	st.ReadOnly, st.Timeout = true, time.Second
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer st.Close(context.Background())
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	sd, err := st.LookupDecision(context.Background(), gateway.IdempotencyKey{Lane: "1", POSTxnID: "pos-9"})
	if err != nil || sd == nil || !sd.Decision.Approved {
		t.Fatalf("stored decision after shutdown: %+v, %v; want the approval", sd, err)
	}
	ob, err := st.OutboxStats(context.Background())
	if err != nil || ob.Depth != 1 {
		t.Fatalf("outbox after shutdown: %+v, %v; want the settlement queued", ob, err)
	}
}

// pkiFile returns the path of a development file in dir.
func pkiFile(dir, name string) string { return filepath.Join(dir, name) }

// clientFiles returns the paths of id's certificate and key in dir.
func clientFiles(dir string, id certs.Identity) (string, string) {
	cert, key := certs.CertFiles(id)
	return filepath.Join(dir, cert), filepath.Join(dir, key)
}

// tlsClient dials addr trusting caDir's server CA and presenting certDir's
// certificate for id when certDir is set.
func tlsClient(t *testing.T, addr, caDir, certDir string, id certs.Identity) *grpc.ClientConn {
	t.Helper()
	var cert, key string
	if certDir != "" {
		cert, key = clientFiles(certDir, id)
	}
	cfg, err := certs.ClientConfig(pkiFile(caDir, certs.CAServer.CertFile()), cert, key, "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// devPKI makes a development set for store-0001 with storegatectl, as a
// store engineer would.
func devPKI(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if out, code := ctl(t, "certs", "dev", "--dir", dir); code != 0 {
		t.Fatalf("storegatectl certs dev: exit %d: %s", code, out)
	}
	return dir
}

// hqTLSArgs are storegate-hq's TLS flags: the server certificate, and the
// gateways' CA for its callers.
func hqTLSArgs(pki string) []string {
	return []string{"--tls-cert", pkiFile(pki, certs.ServerCertFile), "--tls-key", pkiFile(pki, certs.ServerKeyFile),
		"--tls-client-ca", pkiFile(pki, certs.CAGateway.CertFile())}
}

// gatewayTLSArgs are storegated's: the server certificate and the POS CA
// for its lanes; HQ's server CA and, with clientCert, the gateway's
// certificate toward HQ.
func gatewayTLSArgs(pki string, clientCert bool) []string {
	args := []string{"--tls-cert", pkiFile(pki, certs.ServerCertFile), "--tls-key", pkiFile(pki, certs.ServerKeyFile),
		"--tls-client-ca", pkiFile(pki, certs.CAPOS.CertFile()), "--central-tls-ca", pkiFile(pki, certs.CAServer.CertFile())}
	if clientCert {
		cert, key := clientFiles(pki, certs.Gateway(certs.DevChain, certs.DefaultDevStore))
		args = append(args, "--central-tls-cert", cert, "--central-tls-key", key)
	}
	return args
}

var lane1 = certs.POS(certs.DevChain, certs.DefaultDevStore, "1")

func TestStoregated_MutualTLS(t *testing.T) {
	pki, other := devPKI(t), devPKI(t)
	keysDir := t.TempDir()
	keys, err := hqkeys.Init(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	hq := startDaemon(t, "storegate-hq", append([]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data", t.TempDir(), "--keys", keysDir,
		"--account", "acct-0001=100000"}, hqTLSArgs(pki)...)...)
	gatewayArgs := func(clientCert bool) []string {
		return append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data", t.TempDir(), "--store-id", "store-0001",
			"--central", hq.addr, "--root-key", pkiFile(keysDir, "root.pub"), "--keyset", pkiFile(keysDir, "keyset.cose")},
			gatewayTLSArgs(pki, clientCert)...)
	}
	gw := startDaemon(t, "storegated", gatewayArgs(true)...)
	w := &world{keys: keys}
	authorize := func(conn *grpc.ClientConn, txn string) (*storegatev1.AuthorizeResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tok := w.mint(t, keys.Token, "acct-0001", time.Now(), time.Minute)
		return storegatev1.NewPaymentServiceClient(conn).Authorize(ctx, sale("1", txn, tok))
	}

	t.Run("OK", func(t *testing.T) {
		res, err := authorize(tlsClient(t, gw.addr, pki, pki, lane1), "tls-1")
		if err != nil {
			t.Fatalf("lane 1's POS with its certificate: %v", err)
		}
		// Approved online: the gateway reached HQ over mutual TLS too.
		if d := res.GetDecision(); d.GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED || d.GetMode() != storegatev1.DecisionMode_DECISION_MODE_ONLINE {
			t.Fatalf("decision = %v, want APPROVED ONLINE\n%s", d, gw.log)
		}
	})
	t.Run("ErrNoClientCertificate", func(t *testing.T) {
		if res, err := authorize(tlsClient(t, gw.addr, pki, "", certs.Identity{}), "tls-2"); err == nil {
			t.Fatalf("a POS without a certificate was answered: %v", res)
		}
	})
	t.Run("ErrOtherCA", func(t *testing.T) {
		// Trusts the right server CA but shows another POS CA's certificate.
		cert, key := clientFiles(other, lane1)
		cfg, err := certs.ClientConfig(pkiFile(pki, certs.CAServer.CertFile()), cert, key, "")
		if err != nil {
			t.Fatal(err)
		}
		conn, err := grpc.NewClient(gw.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if res, err := authorize(conn, "tls-3"); err == nil {
			t.Fatalf("a POS with another CA's certificate was answered: %v", res)
		}
	})
	t.Run("ErrPlaintext", func(t *testing.T) {
		if res, err := authorize(dial(t, gw.addr), "tls-4"); err == nil {
			t.Fatalf("a plaintext POS was answered: %v", res)
		}
	})
	t.Run("Storegatectl", func(t *testing.T) {
		cert, key := clientFiles(pki, lane1)
		tlsArgs := []string{"status", "--addr", gw.addr, "--tls-ca", pkiFile(pki, certs.CAServer.CertFile())}
		if out, code := ctl(t, append(tlsArgs, "--tls-cert", cert, "--tls-key", key)...); code != 0 || !strings.Contains(out, "store-0001") {
			t.Fatalf("storegatectl status with the POS certificate: exit %d: %s", code, out)
		}
		if out, code := ctl(t, tlsArgs...); code != 1 {
			t.Fatalf("storegatectl status without a certificate: exit %d, want 1: %s", code, out)
		}
	})
	t.Run("ErrGatewayWithoutCertAtHQ", func(t *testing.T) {
		// A gateway that shows HQ no certificate is refused by HQ, so it
		// declines as central_unavailable instead of approving online.
		bare := startDaemon(t, "storegated", gatewayArgs(false)...)
		res, err := authorize(tlsClient(t, bare.addr, pki, pki, lane1), "tls-5")
		if err != nil {
			t.Fatal(err)
		}
		if got := res.GetDecision().GetReason(); got != storegatev1.DeclineReason_DECLINE_REASON_CENTRAL_UNAVAILABLE {
			t.Fatalf("decision = %v, want declined central_unavailable", res.GetDecision())
		}
		bare.stop()
	})
	t.Run("ErrPOSCertificateAtHQ", func(t *testing.T) {
		// HQ's CentralService trusts the gateway CA only: a gateway
		// presenting a POS certificate toward HQ is refused at the
		// handshake, and declines as central_unavailable.
		cert, key := clientFiles(pki, lane1)
		args := append(gatewayArgs(false), "--central-tls-cert", cert, "--central-tls-key", key)
		posAsGateway := startDaemon(t, "storegated", args...)
		res, err := authorize(tlsClient(t, posAsGateway.addr, pki, pki, lane1), "tls-6")
		if err != nil {
			t.Fatal(err)
		}
		if got := res.GetDecision().GetReason(); got != storegatev1.DeclineReason_DECLINE_REASON_CENTRAL_UNAVAILABLE {
			t.Fatalf("decision = %v, want declined central_unavailable", res.GetDecision())
		}
		posAsGateway.stop()
	})
	gw.stop()
	hq.stop()
}

func TestStoregated_Metrics(t *testing.T) {
	w := newWorld(t)
	tok := w.mint(t, w.keys.Token, "acct-0001", time.Now(), time.Minute)
	w.authorize(t, sale("1", "m-1", tok))
	wantReason(t, w.authorize(t, sale("2", "m-2", tok)), storegatev1.DeclineReason_DECLINE_REASON_REPLAYED)

	res, err := http.Get("http://" + w.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	lines := strings.Split(string(b), "\n")
	for _, want := range []string{
		`storegate_decisions_total{mode="online",outcome="approved",reason="none"} 1`,
		`storegate_decisions_total{mode="local",outcome="declined",reason="replayed"} 1`,
		`storegate_authorize_duration_seconds_count{result="approved"} 1`,
		`storegate_keyset_version 1`,
		`storegate_central_reachable 1`,
		`storegate_store_writable 1`,
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("no %q in the scrape", want)
		}
	}
	if strings.Contains(string(b), tok) || strings.Contains(string(b), "acct-0001") {
		t.Error("the scrape names the token or the account")
	}
	w.gw.stop()
	w.hq.stop()
}

func TestVersion_EveryBinary(t *testing.T) {
	for _, name := range []string{"storegated", "storegate-hq", "storegatectl", "storegate-demo"} {
		out, err := exec.Command(filepath.Join(binDir, name), "--version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), name+" ") {
			t.Errorf("%s --version: %v, %q; want %q and a version", name, err, out, name)
		}
	}
}

func TestStoregated_CheckConfigTLS(t *testing.T) {
	keys := t.TempDir()
	if _, err := hqkeys.Init(keys); err != nil {
		t.Fatal(err)
	}
	pki := devPKI(t)
	f := func(name string) string { return pkiFile(pki, name) }
	base := []string{"--check-config", "--store-id", "s1", "--central", "127.0.0.1:1", "--root-key", filepath.Join(keys, "root.pub"), "--data", t.TempDir()}
	run := func(args ...string) (string, int) {
		out, err := exec.Command(filepath.Join(binDir, "storegated"), append(base, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	mutual := []string{"--tls-cert", f(certs.ServerCertFile), "--tls-key", f(certs.ServerKeyFile), "--tls-client-ca", f(certs.CAPOS.CertFile())}
	t.Run("WideListenWithMutualTLS", func(t *testing.T) {
		if out, code := run(append(mutual, "--listen", "0.0.0.0:7443")...); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
	t.Run("ErrWideListenWithoutClientCA", func(t *testing.T) {
		out, code := run("--listen", "0.0.0.0:7443", "--tls-cert", f(certs.ServerCertFile), "--tls-key", f(certs.ServerKeyFile))
		if code != 2 || !strings.Contains(out, "tls.client_ca_file") {
			t.Fatalf("exit %d: %s; want 2 naming tls.client_ca_file", code, out)
		}
	})
	t.Run("ErrUnreadableCertNamesField", func(t *testing.T) {
		out, code := run("--tls-cert", f("missing.crt"), "--tls-key", f(certs.ServerKeyFile))
		if code != 2 || !strings.Contains(out, "config: tls") || !strings.Contains(out, "missing.crt") {
			t.Fatalf("exit %d: %s; want 2 naming tls and the file", code, out)
		}
	})
	t.Run("ErrRemoteCentralWithoutTLS", func(t *testing.T) {
		out, code := run("--central", "hq.example.internal:7444")
		if code != 2 || !strings.Contains(out, "central.tls.ca_file") {
			t.Fatalf("exit %d: %s; want 2 naming central.tls.ca_file", code, out)
		}
		if out, code := run("--central", "hq.example.internal:7444", "--central-insecure"); code != 0 {
			t.Fatalf("with --central-insecure: exit %d: %s", code, out)
		}
	})
	t.Run("ErrWideMetrics", func(t *testing.T) {
		out, code := run("--metrics-listen", "0.0.0.0:9464")
		if code != 2 || !strings.Contains(out, "metrics.listen") {
			t.Fatalf("exit %d: %s; want 2 naming metrics.listen", code, out)
		}
	})
	t.Run("ErrInsecureCallersWide", func(t *testing.T) {
		out, code := run("--insecure-callers", "--listen", "0.0.0.0:7443", "--insecure-listen")
		if code != 2 || !strings.Contains(out, "insecure_callers") {
			t.Fatalf("exit %d: %s; want 2 naming insecure_callers", code, out)
		}
	})
	t.Run("ErrInsecureCallersWithMutualTLS", func(t *testing.T) {
		out, code := run(append(mutual, "--insecure-callers")...)
		if code != 2 || !strings.Contains(out, "insecure_callers") {
			t.Fatalf("exit %d: %s; want 2 naming insecure_callers", code, out)
		}
	})
	t.Run("ErrBadChain", func(t *testing.T) {
		out, code := run("--chain", "Acme Chain")
		if code != 2 || !strings.Contains(out, "config: chain") {
			t.Fatalf("exit %d: %s; want 2 naming chain", code, out)
		}
	})
}
