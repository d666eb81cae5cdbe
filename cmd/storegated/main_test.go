package main_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"storegate/central"
	"storegate/central/boltstore"
	"storegate/gateway"
	"storegate/hqkeys"
	storegatev1 "storegate/proto/storegate/v1"
)

// binDir holds storegated, storegate-hq, storegatectl and storegate-demo,
// built once for the package's tests.
var binDir string

func TestMain(m *testing.M) {
	// The daemons the tests start must not talk to a systemd that runs the
	// tests; TestStoregated_SystemdNotify gives them one of its own.
	// Nor put their admin sockets in a systemd unit's RuntimeDirectory.
	for _, v := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "RUNTIME_DIRECTORY"} {
		os.Unsetenv(v)
	}
	dir, err := os.MkdirTemp("", "storegate-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	args := []string{"build", "-o", dir + "/"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "storegate/cmd/storegated", "storegate/cmd/storegate-hq", "storegate/cmd/storegatectl", "storegate/cmd/storegate-demo")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a process a test started.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
	done chan error
}

// syncBuffer is a bytes.Buffer the process writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startDaemon starts a binary with --addr-file and waits until it serves.
func startDaemon(t *testing.T, name string, args ...string) *daemon {
	t.Helper()
	return startDaemonEnv(t, nil, name, args...)
}

// listenFlags are each daemon's listeners. A test names every one of them:
// each default is a fixed port, which a gateway running on the host or a
// second test run may hold, and a test must not depend on it being free.
var listenFlags = map[string][]string{
	"storegated":   {"--listen", "--metrics-listen"},
	"storegate-hq": {"--listen", "--admin-listen"},
}

// checkListenFlags fails the test when args leave one of name's listeners
// on its default, fixed, port: give 127.0.0.1:0, an address the kernel
// chose before, or (for metrics) off.
func checkListenFlags(t *testing.T, name string, args []string) {
	t.Helper()
	for _, flag := range listenFlags[name] {
		named := false
		for _, a := range args {
			named = named || a == flag || strings.HasPrefix(a, flag+"=")
		}
		if !named {
			t.Fatalf("%s started without %s, whose default is a fixed port: give 127.0.0.1:0 (or off for metrics)", name, flag)
		}
	}
}

// startDaemonEnv is startDaemon with env added to the test's environment.
func startDaemonEnv(t *testing.T, env []string, name string, args ...string) *daemon {
	t.Helper()
	checkListenFlags(t, name, args)
	addrFile := filepath.Join(t.TempDir(), "addr")
	d := &daemon{t: t, log: &syncBuffer{}, done: make(chan error, 1)}
	d.cmd = exec.Command(filepath.Join(binDir, name), append(args, "--addr-file", addrFile)...)
	if env != nil {
		d.cmd.Env = append(os.Environ(), env...)
	}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() { d.kill() })
	deadline := time.After(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			d.addr = strings.TrimSpace(string(b))
			return d
		}
		select {
		case err := <-d.done:
			d.done <- err
			t.Fatalf("%s exited before serving: %v\n%s", name, err, d.log)
		case <-deadline:
			t.Fatalf("%s did not serve within 30s\n%s", name, d.log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and requires a clean exit.
func (d *daemon) stop() {
	d.t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.wait()
}

// wait requires a clean exit after a SIGTERM the test sent itself (a second
// one would kill the process).
func (d *daemon) wait() {
	d.t.Helper()
	select {
	case err := <-d.done:
		d.done <- err
		if err != nil {
			d.t.Fatalf("exit after SIGTERM: %v\n%s", err, d.log)
		}
	case <-time.After(20 * time.Second):
		d.t.Fatalf("no exit within 20s of SIGTERM\n%s", d.log)
	}
}

func (d *daemon) kill() {
	select {
	case err := <-d.done:
		d.done <- err
	default:
		d.cmd.Process.Kill()
		<-d.done
	}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// ctl runs storegatectl and returns its output and exit code.
func ctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	return runBinary(t, "storegatectl", args...)
}

// runBinary runs one of the built binaries to its end and returns its
// output, standard output and error together, and its exit code.
func runBinary(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// world is HQ, one store's gateway, and the keys that tie them.
type world struct {
	// t owns the processes and connections, so that a subtest that
	// restarts the gateway does not take it down when it ends.
	t        *testing.T
	keys     *hqkeys.Keys
	keysDir  string
	hqData   string
	gwData   string
	hq, gw   *daemon
	payments storegatev1.PaymentServiceClient
	extra    []string
	// metricsAddr is the gateway's bound /metrics address.
	metricsAddr string
	// hqAdmin is storegate-hq's admin address, where storegatectl
	// publishes.
	hqAdmin string
}

// adminSocket is the gateway's admin socket: admin.sock in its data
// directory, the default.
func (w *world) adminSocket() string { return filepath.Join(w.gwData, "admin.sock") }

// newWorld starts HQ and a gateway, plaintext on loopback, every POS a
// development caller (--insecure-callers); extra are more storegated flags.
// The identity tests (identity_test.go) run over mutual TLS instead.
func newWorld(t *testing.T, extra ...string) *world {
	t.Helper()
	w := &world{t: t, keysDir: t.TempDir(), hqData: t.TempDir(), gwData: t.TempDir(), extra: extra}
	var err error
	if w.keys, err = hqkeys.Init(w.keysDir); err != nil {
		t.Fatal(err)
	}
	w.startHQ("127.0.0.1:0")
	w.startGateway()
	return w
}

// startHQ starts storegate-hq listening on listen, its admin service on a
// port of its own.
func (w *world) startHQ(listen string) {
	t := w.t
	t.Helper()
	adminFile := filepath.Join(t.TempDir(), "admin.addr")
	w.hq = startDaemon(t, "storegate-hq", "--listen", listen, "--data", w.hqData, "--keys", w.keysDir,
		"--admin-listen", "127.0.0.1:0", "--admin-addr-file", adminFile,
		"--account", "acct-0001=100000", "--account", "acct-0002=500")
	b, err := os.ReadFile(adminFile)
	if err != nil {
		t.Fatalf("HQ's admin address: %v", err)
	}
	w.hqAdmin = strings.TrimSpace(string(b))
}

func (w *world) startGateway() {
	t := w.t
	t.Helper()
	metricsFile := filepath.Join(t.TempDir(), "metrics-addr")
	args := append([]string{"--listen", "127.0.0.1:0", "--data", w.gwData, "--store-id", "store-0001",
		"--central", w.hq.addr, "--root-key", filepath.Join(w.keysDir, "root.pub"), "--keyset", filepath.Join(w.keysDir, "keyset.cose"),
		"--metrics-listen", "127.0.0.1:0", "--metrics-addr-file", metricsFile, "--insecure-callers"}, w.extra...)
	w.gw = startDaemon(t, "storegated", args...)
	b, err := os.ReadFile(metricsFile)
	if err != nil {
		t.Fatalf("metrics address: %v", err)
	}
	w.metricsAddr = strings.TrimSpace(string(b))
	w.payments = storegatev1.NewPaymentServiceClient(dial(t, w.gw.addr))
}

func (w *world) mint(t *testing.T, key ed25519.PrivateKey, account string, iat time.Time, life time.Duration) string {
	t.Helper()
	id, _ := gateway.NewTokenID()
	tok, err := gateway.MintToken(key, gateway.Claims{
		Issuer: "storegate-hq", Account: account, IssuedAt: iat, Expires: iat.Add(life),
		TokenID: id, Device: "phone-1", Assurance: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func sale(lane, txn, token string, lines ...*storegatev1.BasketLine) *storegatev1.AuthorizeRequest {
	if len(lines) == 0 {
		lines = []*storegatev1.BasketLine{
			{Sku: "4901234567894", Category: "food", Quantity: 2, UnitPrice: 300},
			{Sku: "4909876543210", Category: "drink", Quantity: 1, UnitPrice: 600},
		}
	}
	var total int64
	for _, l := range lines {
		total += l.Quantity * l.UnitPrice
	}
	return &storegatev1.AuthorizeRequest{Lane: lane, PosTransactionId: txn, Lines: lines, Total: total, Currency: "JPY",
		Credential: &storegatev1.AuthorizeRequest_Token{Token: token}}
}

func (w *world) authorize(t *testing.T, req *storegatev1.AuthorizeRequest) *storegatev1.AuthorizeResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := w.payments.Authorize(ctx, req)
	if err != nil {
		t.Fatalf("Authorize %s/%s: %v", req.Lane, req.PosTransactionId, err)
	}
	return res
}

// mustHQBooks reads the books of the stopped storegate-hq whose --data is
// dir, checks the file and that they add up.
func mustHQBooks(t *testing.T, dir string) *central.Books {
	t.Helper()
	ctx := context.Background()
	st := boltstore.New(filepath.Join(dir, "central.db"))
	l := central.NewLedger(st)
	if err := l.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	books, err := l.Books(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := books.Verify(); err != nil {
		t.Fatal(err)
	}
	return books
}

func wantReason(t *testing.T, res *storegatev1.AuthorizeResponse, want storegatev1.DeclineReason) {
	t.Helper()
	d := res.GetDecision()
	if d.GetOutcome() != storegatev1.Outcome_OUTCOME_DECLINED || d.GetReason() != want {
		t.Fatalf("decision %v %v (%s), want DECLINED %v", d.GetOutcome(), d.GetReason(), d.GetMessage(), want)
	}
}

// waitDrained waits until the gateway's outbox is empty.
func (w *world) waitDrained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := w.payments.GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
		if err == nil && st.GetOutboxDepth() == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := w.payments.GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
	t.Fatalf("outbox did not drain within 30s: %v %v\n%s\nHQ:\n%s", st, err, w.gw.log, w.hq.log)
}

func TestStoregated_EndToEnd(t *testing.T) {
	w := newWorld(t)
	now := time.Now()
	tok := w.mint(t, w.keys.Token, "acct-0001", now, 2*time.Minute)

	first := w.authorize(t, sale("1", "pos-1", tok))
	if first.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED || first.GetReplayed() {
		t.Fatalf("first = %v, want a new approval", first)
	}
	if strings.Contains(first.String(), tok) || strings.Contains(w.gw.log.String(), tok) {
		t.Fatal("the full token appears in the response or the daemon's log")
	}

	t.Run("ReplayDeclined", func(t *testing.T) {
		wantReason(t, w.authorize(t, sale("2", "pos-2", tok)), storegatev1.DeclineReason_DECLINE_REASON_REPLAYED)
	})
	t.Run("SameTransactionSameDecision", func(t *testing.T) {
		again := w.authorize(t, sale("1", "pos-1", tok))
		if !again.GetReplayed() || !proto.Equal(again.GetDecision(), first.GetDecision()) {
			t.Fatalf("retry = %v, want the stored %v", again, first)
		}
	})
	t.Run("SameTransactionOtherBasket", func(t *testing.T) {
		req := sale("1", "pos-1", tok, &storegatev1.BasketLine{Sku: "4901234567894", Category: "food", Quantity: 9, UnitPrice: 300})
		_, err := w.payments.Authorize(context.Background(), req)
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("err = %v, want FailedPrecondition", err)
		}
	})
	t.Run("BadTokens", func(t *testing.T) {
		_, stranger, _ := gateway.GenerateKey()
		good := w.mint(t, w.keys.Token, "acct-0001", now, time.Minute)
		raw, _ := gateway.Base45Decode(strings.TrimPrefix(good, gateway.TokenPrefix))
		raw[len(raw)-1] ^= 0x01
		for i, c := range []struct {
			name  string
			token string
			want  storegatev1.DeclineReason
		}{
			{"tampered", gateway.TokenPrefix + gateway.Base45Encode(raw), storegatev1.DeclineReason_DECLINE_REASON_BAD_SIGNATURE},
			{"expired", w.mint(t, w.keys.Token, "acct-0001", now.Add(-10*time.Minute), time.Minute), storegatev1.DeclineReason_DECLINE_REASON_EXPIRED},
			{"future", w.mint(t, w.keys.Token, "acct-0001", now.Add(10*time.Minute), time.Minute), storegatev1.DeclineReason_DECLINE_REASON_NOT_YET_VALID},
			{"unknown-kid", w.mint(t, stranger, "acct-0001", now, time.Minute), storegatev1.DeclineReason_DECLINE_REASON_UNKNOWN_KEY},
			{"garbage", "SGP1:%%%%", storegatev1.DeclineReason_DECLINE_REASON_INVALID_TOKEN},
		} {
			t.Run(c.name, func(t *testing.T) {
				wantReason(t, w.authorize(t, sale("3", fmt.Sprintf("bad-%d", i), c.token)), c.want)
			})
		}
	})
	t.Run("InsufficientFunds", func(t *testing.T) {
		wantReason(t, w.authorize(t, sale("1", "poor-1", w.mint(t, w.keys.Token, "acct-0002", now, time.Minute))),
			storegatev1.DeclineReason_DECLINE_REASON_INSUFFICIENT_FUNDS)
	})
	t.Run("ErrInvalidArgument", func(t *testing.T) {
		req := sale("1", "neg-1", w.mint(t, w.keys.Token, "acct-0001", now, time.Minute))
		req.Lines[0].Quantity = -1
		if _, err := w.payments.Authorize(context.Background(), req); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("err = %v, want InvalidArgument", err)
		}
	})
	t.Run("Health", func(t *testing.T) {
		res, err := healthpb.NewHealthClient(dial(t, w.gw.addr)).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health = %v, %v; want SERVING", res, err)
		}
	})
	t.Run("Reflection", func(t *testing.T) { callThroughReflection(t, w.gw.addr) })

	t.Run("SurvivesRestart", func(t *testing.T) {
		w.gw.stop()
		w.startGateway()
		again := w.authorize(t, sale("1", "pos-1", tok))
		if !again.GetReplayed() || again.GetDecision().GetSettlementId() != first.GetDecision().GetSettlementId() {
			t.Fatalf("after restart: %v, want the stored decision", again)
		}
		wantReason(t, w.authorize(t, sale("4", "pos-4", tok)), storegatev1.DeclineReason_DECLINE_REASON_REPLAYED)
	})

	w.waitDrained(t)
	// HQ's books over its admin address, then from its file once stopped:
	// the same text, and they add up.
	books, code := ctl(t, "hq", "books", "--hq", w.hqAdmin)
	if code != 0 || !strings.Contains(books, "  acct-0001 98800 JPY  (100000 / 1200 / 0 / 0 / 1200 / 0)") || !strings.Contains(books, "settlements booked: 1") {
		t.Errorf("storegatectl hq books: exit %d, want 0 with one 1200 capture from acct-0001:\n%s", code, books)
	}
	w.gw.stop()
	w.hq.stop()
	if out, code := runBinary(t, "storegate-hq", "books", "--data", w.hqData); code != 0 || out != books {
		t.Errorf("storegate-hq books: exit %d, want 0 and what the running HQ served:\n%s\nwant:\n%s", code, out, books)
	}

	t.Run("OneDebitAtCentral", func(t *testing.T) {
		books := mustHQBooks(t, w.hqData)
		a := books.Accounts["acct-0001"]
		if a.Balance != 100000-1200 || a.Debited != 1200 || a.Captured != 1200 {
			t.Fatalf("acct-0001 books = %+v, want one 1200 debit, captured", a)
		}
		if len(books.Settlements) != 1 {
			t.Fatalf("settlements booked = %d, want 1", len(books.Settlements))
		}
	})

	t.Run("AuditVerify", func(t *testing.T) {
		db := filepath.Join(w.gwData, "storegate.db")
		if out, code := ctl(t, "audit", "verify", "--db", db); code != 0 || !strings.Contains(out, "audit log OK") {
			t.Fatalf("audit verify exit %d: %s", code, out)
		}
		// Change one byte of one stored record: the verifier must notice.
		tamperAuditRecord(t, db, 2)
		if out, code := ctl(t, "audit", "verify", "--db", db); code != 1 || !strings.Contains(out, "BROKEN") {
			t.Fatalf("audit verify after tampering exit %d: %s; want 1 and BROKEN", code, out)
		}
	})
}

// tamperAuditRecord changes one digit of the amount in audit record seq.
func tamperAuditRecord(t *testing.T, path string, seq uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		if b == nil {
			return errors.New("no audit bucket")
		}
		key := binary.BigEndian.AppendUint64(nil, seq)
		v := append([]byte(nil), b.Get(key)...)
		i := bytes.Index(v, []byte(`"amount":`))
		if i < 0 {
			return fmt.Errorf("audit record %d has no amount: %s", seq, v)
		}
		i += len(`"amount":`)
		v[i] = map[byte]byte{'1': '2'}[v[i]] | map[bool]byte{true: '1'}[v[i] != '1']
		return b.Put(key, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// callThroughReflection does what grpcurl does: list the services through
// server reflection, fetch PaymentService's descriptors, and call GetStatus
// with a message built from them alone.
func callThroughReflection(t *testing.T, addr string) {
	t.Helper()
	conn := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *reflectionpb.ServerReflectionRequest) *reflectionpb.ServerReflectionResponse {
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		res, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	list := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	var names []string
	for _, s := range list.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, " "), "storegate.v1.PaymentService") {
		t.Fatalf("reflection lists %v, want storegate.v1.PaymentService", names)
	}
	fdRes := ask(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "storegate.v1.PaymentService"}})
	fdset := &descriptorpb.FileDescriptorSet{}
	for _, raw := range fdRes.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(raw, fd); err != nil {
			t.Fatal(err)
		}
		fdset.File = append(fdset.File, fd)
	}
	files, err := protodesc.NewFiles(fdset)
	if err != nil {
		t.Fatalf("descriptors from reflection: %v", err)
	}
	desc, err := files.FindDescriptorByName("storegate.v1.PaymentService")
	if err != nil {
		t.Fatal(err)
	}
	method := desc.(protoreflect.ServiceDescriptor).Methods().ByName("GetStatus")
	in := dynamicpb.NewMessage(method.Input())
	out := dynamicpb.NewMessage(method.Output())
	if err := conn.Invoke(ctx, "/storegate.v1.PaymentService/GetStatus", in, out); err != nil {
		t.Fatalf("dynamic GetStatus: %v", err)
	}
	if got := out.Get(method.Output().Fields().ByName("store_id")).String(); got != "store-0001" {
		t.Fatalf("GetStatus through reflection: store_id %q, want store-0001", got)
	}
}

func TestStoregated_Flags(t *testing.T) {
	run := func(args ...string) (string, int) {
		cmd := exec.Command(filepath.Join(binDir, "storegated"), args...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	keys := t.TempDir()
	if _, err := hqkeys.Init(keys); err != nil {
		t.Fatal(err)
	}
	base := []string{"--store-id", "s1", "--central", "127.0.0.1:1", "--root-key", filepath.Join(keys, "root.pub"), "--data", t.TempDir()}
	t.Run("Version", func(t *testing.T) {
		if out, code := run("--version"); code != 0 || !strings.HasPrefix(out, "storegated ") {
			t.Fatalf("--version: exit %d, %q", code, out)
		}
	})
	t.Run("CheckConfig", func(t *testing.T) {
		if out, code := run(append(base, "--check-config")...); code != 0 || !strings.Contains(out, "configuration OK") {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
	t.Run("ErrConfigNamesField", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "bad.yaml")
		os.WriteFile(cfg, []byte("store_id: s1\ncentral:\n  address: 127.0.0.1:1\n  timeout: 1m\nroot_public_key: x\n"), 0o600)
		if out, code := run("--config", cfg, "--check-config"); code != 2 || !strings.Contains(out, "central.timeout") {
			t.Fatalf("exit %d: %s; want 2 naming central.timeout", code, out)
		}
		os.WriteFile(cfg, []byte("store_idd: s1\n"), 0o600)
		if out, code := run("--config", cfg, "--check-config"); code != 2 || !strings.Contains(out, "store_idd") {
			t.Fatalf("exit %d: %s; want 2 naming the unknown field", code, out)
		}
	})
	t.Run("ErrWideListenWithoutTLS", func(t *testing.T) {
		if out, code := run(append(base, "--listen", "0.0.0.0:7443", "--check-config")...); code != 2 || !strings.Contains(out, "--insecure-listen") {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
	t.Run("MetricsOff", func(t *testing.T) {
		// --metrics-listen off serves no metrics: nothing is bound, so no
		// address is written, and the log says so.
		metricsFile := filepath.Join(t.TempDir(), "metrics-addr")
		d := startDaemon(t, "storegated", append(base, "--listen", "127.0.0.1:0", "--metrics-listen", "off", "--metrics-addr-file", metricsFile)...)
		d.stop()
		if _, err := os.Stat(metricsFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("metrics address file: %v; want none with metrics off", err)
		}
		if !strings.Contains(d.log.String(), `"metrics":""`) {
			t.Errorf("the start line does not say metrics are off:\n%s", d.log)
		}
	})
	t.Run("ErrMetricsListenEmpty", func(t *testing.T) {
		// An empty value is refused, not taken for the default port or for
		// off: it is most often an unset shell variable.
		out, code := run(append(base, "--metrics-listen", "", "--check-config")...)
		if code != 2 || !strings.Contains(out, "--metrics-listen: empty") || !strings.Contains(out, "off") {
			t.Fatalf("exit %d: %s; want 2, naming --metrics-listen and off", code, out)
		}
	})
	t.Run("ErrSecondDaemonSameStore", func(t *testing.T) {
		data := t.TempDir()
		args := []string{"--store-id", "s1", "--central", "127.0.0.1:1", "--root-key", filepath.Join(keys, "root.pub"), "--data", data, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}
		first := startDaemon(t, "storegated", args...)
		defer first.stop()
		start := time.Now()
		out, code := run(args...)
		if code != 1 || !strings.Contains(out, "already running") {
			t.Fatalf("second daemon: exit %d after %s: %s", code, time.Since(start), out)
		}
	})
	t.Run("ErrCorruptStoreKept", func(t *testing.T) {
		data := t.TempDir()
		garbage := bytes.Repeat([]byte("not a bbolt file "), 512)
		path := filepath.Join(data, "storegate.db")
		os.WriteFile(path, garbage, 0o600)
		out, code := run("--store-id", "s1", "--central", "127.0.0.1:1", "--root-key", filepath.Join(keys, "root.pub"), "--data", data, "--listen", "127.0.0.1:0", "--metrics-listen", "off")
		if code != 1 || !strings.Contains(out, path) {
			t.Fatalf("exit %d: %s; want 1 naming %s", code, out, path)
		}
		if b, _ := os.ReadFile(path); !bytes.Equal(b, garbage) {
			t.Fatal("the unreadable store file was changed")
		}
	})
}
