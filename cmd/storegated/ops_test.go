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
	d := startDaemon(t, "storegated", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data", data,
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

// tlsClient dials addr trusting caDir's CA and presenting certDir's POS
// certificate when certDir is set.
func tlsClient(t *testing.T, addr, caDir, certDir string) *grpc.ClientConn {
	t.Helper()
	var cert, key string
	if certDir != "" {
		cert, key = filepath.Join(certDir, certs.POSCertFile), filepath.Join(certDir, certs.POSKeyFile)
	}
	cfg, err := certs.ClientConfig(filepath.Join(caDir, certs.CACertFile), cert, key, "")
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

func TestStoregated_MutualTLS(t *testing.T) {
	pki := filepath.Join(t.TempDir(), "store")
	other := filepath.Join(t.TempDir(), "other")
	for _, dir := range []string{pki, other} {
		if err := certs.MakeDev(dir, certs.DevOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	f := func(dir, name string) string { return filepath.Join(dir, name) }
	keysDir := t.TempDir()
	keys, err := hqkeys.Init(keysDir)
	if err != nil {
		t.Fatal(err)
	}
	hq := startDaemon(t, "storegate-hq", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--keys", keysDir,
		"--account", "acct-0001=100000",
		"--tls-cert", f(pki, certs.ServerCertFile), "--tls-key", f(pki, certs.ServerKeyFile), "--tls-client-ca", f(pki, certs.CACertFile))
	gatewayArgs := func(clientCert bool) []string {
		args := []string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data", t.TempDir(), "--store-id", "store-0001",
			"--central", hq.addr, "--root-key", f(keysDir, "root.pub"), "--keyset", f(keysDir, "keyset.cose"),
			"--tls-cert", f(pki, certs.ServerCertFile), "--tls-key", f(pki, certs.ServerKeyFile), "--tls-client-ca", f(pki, certs.CACertFile),
			"--central-tls-ca", f(pki, certs.CACertFile)}
		if clientCert {
			args = append(args, "--central-tls-cert", f(pki, certs.GatewayCertFile), "--central-tls-key", f(pki, certs.GatewayKeyFile))
		}
		return args
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
		res, err := authorize(tlsClient(t, gw.addr, pki, pki), "tls-1")
		if err != nil {
			t.Fatalf("POS with the store CA's certificate: %v", err)
		}
		// Approved online: the gateway reached HQ over mutual TLS too.
		if d := res.GetDecision(); d.GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED || d.GetMode() != storegatev1.DecisionMode_DECISION_MODE_ONLINE {
			t.Fatalf("decision = %v, want APPROVED ONLINE\n%s", d, gw.log)
		}
	})
	t.Run("ErrNoClientCertificate", func(t *testing.T) {
		if res, err := authorize(tlsClient(t, gw.addr, pki, ""), "tls-2"); err == nil {
			t.Fatalf("a POS without a certificate was answered: %v", res)
		}
	})
	t.Run("ErrOtherCA", func(t *testing.T) {
		// Trusts the right server CA but shows another CA's certificate.
		cfg, err := certs.ClientConfig(f(pki, certs.CACertFile), f(other, certs.POSCertFile), f(other, certs.POSKeyFile), "")
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
		tlsArgs := []string{"status", "--addr", gw.addr, "--tls-ca", f(pki, certs.CACertFile)}
		if out, code := ctl(t, append(tlsArgs, "--tls-cert", f(pki, certs.POSCertFile), "--tls-key", f(pki, certs.POSKeyFile))...); code != 0 || !strings.Contains(out, "store-0001") {
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
		res, err := authorize(tlsClient(t, bare.addr, pki, pki), "tls-5")
		if err != nil {
			t.Fatal(err)
		}
		if got := res.GetDecision().GetReason(); got != storegatev1.DeclineReason_DECLINE_REASON_CENTRAL_UNAVAILABLE {
			t.Fatalf("decision = %v, want declined central_unavailable", res.GetDecision())
		}
		bare.stop()
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
	pki := filepath.Join(t.TempDir(), "tls")
	if err := certs.MakeDev(pki, certs.DevOptions{}); err != nil {
		t.Fatal(err)
	}
	f := func(name string) string { return filepath.Join(pki, name) }
	base := []string{"--check-config", "--store-id", "s1", "--central", "127.0.0.1:1", "--root-key", filepath.Join(keys, "root.pub"), "--data", t.TempDir()}
	run := func(args ...string) (string, int) {
		out, err := exec.Command(filepath.Join(binDir, "storegated"), append(base, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	mutual := []string{"--tls-cert", f(certs.ServerCertFile), "--tls-key", f(certs.ServerKeyFile), "--tls-client-ca", f(certs.CACertFile)}
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
}
