package grpcserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"storegate/certs"
	"storegate/devices"
	"storegate/gateway"
	"storegate/gateway/grpcserver"
	"storegate/internal/testca"
	storegatev1 "storegate/proto/storegate/v1"
	"storegate/storecache"
)

// idStack is a gateway of store-0001 behind its POS listener with mutual
// TLS, as storegated serves it: the development CAs and certificates, lanes
// 1 and 2 with scanners (a real hub, fed by the test instead of a serial
// port), and the admin socket beside it.
type idStack struct {
	dir     string
	addr    string
	pool    *x509.CertPool
	hub     *devices.ScanHub
	store   *storecache.Store
	central *countingCentral
	token   *abuseStack // for minting
	admin   storegatev1.AdminServiceClient
	logs    *lockedBuffer
	// rogue is a second CA the POS listener trusts, as a misconfigured
	// one would, so that what reaches the identity check is a
	// certificate's content alone.
	rogue *testca.CA
}

const storeA = certs.DefaultDevStore

var (
	lane1Cert   = certs.POS(certs.DevChain, storeA, "1")
	lane2Cert   = certs.POS(certs.DevChain, storeA, "2")
	managerCert = certs.Supervisor(certs.DevChain, storeA, certs.DefaultDevSupervisor)
	storeBCert  = certs.POS(certs.DevChain, "store-0002", "1")
)

func newIdentityStack(t *testing.T) *idStack {
	t.Helper()
	s := &idStack{dir: filepath.Join(t.TempDir(), "tls"), logs: &lockedBuffer{}, rogue: testca.New(t, "rogue CA")}
	if _, err := certs.MakeDev(s.dir, certs.DevOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := certs.IssueDev(s.dir, storeBCert, certs.DevOptions{}); err != nil {
		t.Fatal(err)
	}
	var err error
	if s.pool, err = certs.LoadPool(filepath.Join(s.dir, certs.CAServer.CertFile())); err != nil {
		t.Fatal(err)
	}
	server, err := tls.LoadX509KeyPair(filepath.Join(s.dir, certs.ServerCertFile), filepath.Join(s.dir, certs.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	clients, err := certs.LoadPool(filepath.Join(s.dir, certs.CAPOS.CertFile()))
	if err != nil {
		t.Fatal(err)
	}
	clients.AddCert(s.rogue.Cert)

	hub := devices.NewScanHub()
	mgr := devices.NewManager(hub)
	for _, lane := range []string{"1", "2"} {
		// Configured, never opened: the test publishes to the hub itself.
		if _, err := mgr.Add(devices.ReaderConfig{Lane: lane, Device: filepath.Join(t.TempDir(), "tty")}); err != nil {
			t.Fatal(err)
		}
	}
	gw, base := openGateway(t, mgr)
	s.hub, s.store, s.central, s.token = hub, base.store, base.central, base
	srv := &grpcserver.Server{
		Gateway: gw, Store: s.store, Scans: mgr, StartedAt: time.Now(), Chain: certs.DevChain,
		Options: grpcserver.Options{
			Creds: credentials.NewTLS(&tls.Config{
				MinVersion: certs.MinVersion, Certificates: []tls.Certificate{server},
				ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert,
			}),
			Logger: slog.New(slog.NewJSONHandler(s.logs, nil)),
		},
	}
	s.addr = listenAndServe(t, srv.PaymentServerOptions(), srv.RegisterPayment)
	s.admin = storegatev1.NewAdminServiceClient(serveAdmin(t, srv))
	return s
}

// as connects to the POS listener presenting cert.
func (s *idStack) as(t *testing.T, cert tls.Certificate) storegatev1.PaymentServiceClient {
	t.Helper()
	creds := credentials.NewTLS(&tls.Config{MinVersion: certs.MinVersion, RootCAs: s.pool, ServerName: "localhost", Certificates: []tls.Certificate{cert}})
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return storegatev1.NewPaymentServiceClient(conn)
}

// pos connects presenting the development certificate of id.
func (s *idStack) pos(t *testing.T, id certs.Identity) storegatev1.PaymentServiceClient {
	t.Helper()
	cert, key := certs.CertFiles(id)
	pair, err := tls.LoadX509KeyPair(filepath.Join(s.dir, cert), filepath.Join(s.dir, key))
	if err != nil {
		t.Fatal(err)
	}
	return s.as(t, pair)
}

// stored returns the audit records and the outbox depth, read from the
// store itself.
func (s *idStack) stored(t *testing.T) (uint64, int64) {
	t.Helper()
	n, _, err := s.store.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ob, err := s.store.OutboxStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n, ob.Depth
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if status.Code(err) != want {
		t.Fatalf("%s: err = %v, want %v", what, err, want)
	}
}

func approve(t *testing.T, c storegatev1.PaymentServiceClient, req *storegatev1.AuthorizeRequest) *storegatev1.AuthorizeResponse {
	t.Helper()
	res, err := c.Authorize(context.Background(), req)
	if err != nil || res.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
		t.Fatalf("Authorize %s/%s = %v, %v; want approved", req.GetLane(), req.GetPosTransactionId(), res, err)
	}
	return res
}

// watch opens a scan stream and waits until it is subscribed.
func watch(t *testing.T, c storegatev1.PaymentServiceClient, lane string) (storegatev1.PaymentService_WatchScansClient, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	stream, err := c.WatchScans(ctx, &storegatev1.WatchScansRequest{Lane: lane})
	if err != nil {
		return nil, err
	}
	md, err := stream.Header()
	if err != nil {
		return nil, err
	}
	if md == nil {
		// Ended before headers: the status comes with the first Recv.
		_, err := stream.Recv()
		return nil, err
	}
	return stream, nil
}

// The attacks of issue 12 from a POS terminal's certificate: another lane's
// scans, payments and reversals are refused, store nothing, and leave the
// customer's token to pay at its own lane.
func TestIdentity_LaneBinding(t *testing.T) {
	s := newIdentityStack(t)
	lane1, lane2, manager := s.pos(t, lane1Cert), s.pos(t, lane2Cert), s.pos(t, managerCert)

	t.Run("OwnLane", func(t *testing.T) {
		approve(t, lane1, request("1", "own-1", s.token.mint(t)))
	})
	t.Run("ErrAuthorizeOtherLane", func(t *testing.T) {
		n, depth := s.stored(t)
		calls := s.central.count()
		_, err := lane1.Authorize(context.Background(), request("2", "other-1", s.token.mint(t)))
		wantCode(t, "lane 1's POS authorizing on lane 2", err, codes.PermissionDenied)
		if n2, d2 := s.stored(t); n2 != n || d2 != depth || s.central.count() != calls {
			t.Fatalf("after the refusal: audit %d→%d, outbox %d→%d, central calls %d→%d; want nothing", n, n2, depth, d2, calls, s.central.count())
		}
	})
	t.Run("ErrWatchOtherLane", func(t *testing.T) {
		_, err := watch(t, lane1, "2")
		wantCode(t, "lane 1's POS watching lane 2", err, codes.PermissionDenied)
	})
	t.Run("ErrPayWithOtherLanesScanID", func(t *testing.T) {
		// Lane 2's POS watches its scanner; the customer scans the phone.
		stream, err := watch(t, lane2, "2")
		if err != nil {
			t.Fatal(err)
		}
		s.hub.Publish("2", devices.Scan{Kind: devices.KindPaymentToken, AIM: "]Q1", Text: s.token.mint(t)})
		msg, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		scanID := msg.GetScan().GetScanId()
		req := request("2", "steal-1", "")
		req.Credential = &storegatev1.AuthorizeRequest_ScanId{ScanId: scanID}
		n, depth := s.stored(t)
		_, err = lane1.Authorize(context.Background(), req)
		wantCode(t, "lane 1's POS paying with lane 2's scan id", err, codes.PermissionDenied)
		// On its own lane the scan id names nothing: scans are per lane.
		own := request("1", "steal-2", "")
		own.Credential = req.Credential
		_, err = lane1.Authorize(context.Background(), own)
		wantCode(t, "lane 1's POS paying with lane 2's scan id on lane 1", err, codes.NotFound)
		if n2, d2 := s.stored(t); n2 != n || d2 != depth {
			t.Fatalf("after the refusals: audit %d→%d, outbox %d→%d; want nothing stored", n, n2, depth, d2)
		}
		// The customer's token still pays at lane 2.
		req.PosTransactionId = "lane2-1"
		approve(t, lane2, req)
	})
	t.Run("ErrReverseOtherLane", func(t *testing.T) {
		sale := approve(t, lane2, request("2", "lane2-2", s.token.mint(t)))
		n, depth := s.stored(t)
		_, err := lane1.Reverse(context.Background(), &storegatev1.ReverseRequest{Lane: "2", PosTransactionId: "lane2-2", Reason: "refund to me"})
		wantCode(t, "lane 1's POS reversing lane 2's sale", err, codes.PermissionDenied)
		if n2, d2 := s.stored(t); n2 != n || d2 != depth {
			t.Fatalf("after the refusal: audit %d→%d, outbox %d→%d; want nothing stored", n, n2, depth, d2)
		}
		sd, err := s.store.LookupDecision(context.Background(), gateway.IdempotencyKey{Lane: "2", POSTxnID: "lane2-2"})
		if err != nil || sd == nil || sd.Reversal != nil {
			t.Fatalf("sale 2/lane2-2: %+v, %v; want it stored, not reversed", sd, err)
		}
		// The selling lane reverses it, naming itself in the audit log.
		res, err := lane2.Reverse(context.Background(), &storegatev1.ReverseRequest{Lane: "2", PosTransactionId: "lane2-2", Reason: "goods returned"})
		if err != nil || res.GetAmount() != sale.GetDecision().GetAmount() {
			t.Fatalf("lane 2 reversing its sale: %v, %v", res, err)
		}
		wantLastAudit(t, s.store, gateway.AuditReverse, lane2Cert.String())
	})
	t.Run("ErrReverseWithoutReason", func(t *testing.T) {
		approve(t, lane1, request("1", "own-2", s.token.mint(t)))
		_, err := lane1.Reverse(context.Background(), &storegatev1.ReverseRequest{Lane: "1", PosTransactionId: "own-2"})
		wantCode(t, "a reversal without a reason", err, codes.InvalidArgument)
	})
	t.Run("SupervisorAnyLane", func(t *testing.T) {
		approve(t, manager, request("2", "mgr-1", s.token.mint(t)))
		if _, err := manager.Reverse(context.Background(), &storegatev1.ReverseRequest{Lane: "1", PosTransactionId: "own-2", Reason: "wrong basket"}); err != nil {
			t.Fatalf("the supervisor reversing lane 1's sale: %v", err)
		}
		wantLastAudit(t, s.store, gateway.AuditReverse, managerCert.String())
		if _, err := watch(t, manager, "1"); err != nil {
			t.Fatalf("the supervisor watching lane 1: %v", err)
		}
	})
	t.Run("StatusForEveryone", func(t *testing.T) {
		for _, c := range []storegatev1.PaymentServiceClient{lane1, lane2, manager} {
			if st, err := c.GetStatus(context.Background(), &storegatev1.GetStatusRequest{}); err != nil || st.GetStoreId() != storeA {
				t.Fatalf("GetStatus = %v, %v", st, err)
			}
		}
	})
	t.Run("RefusalsAreLogged", func(t *testing.T) {
		if !strings.Contains(s.logs.String(), `"caller":"`+lane1Cert.String()+`"`) || !strings.Contains(s.logs.String(), "PermissionDenied") {
			t.Fatalf("log lacks the refused caller:\n%s", s.logs)
		}
	})
}

// lastAudit returns the store's last audit record.
func lastAudit(t *testing.T, st *storecache.Store) gateway.AuditRecord {
	t.Helper()
	var last gateway.AuditRecord
	err := st.ScanAudit(context.Background(), 1, func(_ uint64, raw []byte) error {
		last = gateway.AuditRecord{}
		return json.Unmarshal(raw, &last)
	})
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// wantLastAudit checks the store's last audit record's event and caller.
func wantLastAudit(t *testing.T, st *storecache.Store, event gateway.AuditEvent, caller string) {
	t.Helper()
	if last := lastAudit(t, st); last.Event != event || last.Caller != caller {
		t.Fatalf("last audit record: %s by %q, want %s by %q", last.Event, last.Caller, event, caller)
	}
}

// A POS certificate of store B is refused at store A, for every method.
func TestIdentity_OtherStore(t *testing.T) {
	s := newIdentityStack(t)
	storeB := s.pos(t, storeBCert)
	_, err := storeB.Authorize(context.Background(), request("1", "b-1", s.token.mint(t)))
	wantCode(t, "store B's POS authorizing at store A", err, codes.PermissionDenied)
	_, err = storeB.GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
	wantCode(t, "store B's POS asking store A's status", err, codes.PermissionDenied)
	_, err = watch(t, storeB, "1")
	wantCode(t, "store B's POS watching store A's lane 1", err, codes.PermissionDenied)
	_, err = storeB.Reverse(context.Background(), &storegatev1.ReverseRequest{Lane: "1", PosTransactionId: "b-1", Reason: "x"})
	wantCode(t, "store B's POS reversing at store A", err, codes.PermissionDenied)
	if n, depth := s.stored(t); n != 0 || depth != 0 || s.central.count() != 0 {
		t.Fatalf("after store B's calls: audit %d, outbox %d, central calls %d; want none", n, depth, s.central.count())
	}
}

// Certificates that name no identity, several, another chain's, a path of
// no known shape: Unauthenticated. A gateway's or operator's: refused.
func TestIdentity_BadCertificates(t *testing.T) {
	s := newIdentityStack(t)
	for name, c := range map[string]struct {
		uris []string
		want codes.Code
	}{
		"ErrNoURISAN":       {nil, codes.Unauthenticated},
		"ErrSeveralURISANs": {[]string{lane1Cert.String(), lane2Cert.String()}, codes.Unauthenticated},
		"ErrForeignChain":   {[]string{"spiffe://other.example/store/" + storeA + "/lane/1"}, codes.Unauthenticated},
		"ErrWrongShape":     {[]string{"spiffe://" + certs.DevChain + "/store/" + storeA + "/till/1"}, codes.Unauthenticated},
		"ErrNotSPIFFE":      {[]string{"https://" + certs.DevChain + "/store/" + storeA + "/lane/1"}, codes.Unauthenticated},
		"ErrGatewayKind":    {[]string{certs.Gateway(certs.DevChain, storeA).String()}, codes.PermissionDenied},
		"ErrOperatorKind":   {[]string{certs.Operator(certs.DevChain, "ops").String()}, codes.PermissionDenied},
	} {
		t.Run(name, func(t *testing.T) {
			client := s.as(t, s.rogue.Client(t, c.uris...))
			_, err := client.Authorize(context.Background(), request("1", "rogue-"+name, s.token.mint(t)))
			wantCode(t, "Authorize", err, c.want)
			_, err = client.GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
			wantCode(t, "GetStatus", err, c.want)
			_, err = watch(t, client, "1")
			wantCode(t, "WatchScans", err, c.want)
		})
	}
	if n, depth := s.stored(t); n != 0 || depth != 0 {
		t.Fatalf("after the rogue certificates: audit %d, outbox %d; want none", n, depth)
	}
	t.Run("ErrGatewayCertificateAtTheHandshake", func(t *testing.T) {
		// Signed by the gateway CA, which the POS listener does not trust.
		client := s.pos(t, certs.Gateway(certs.DevChain, storeA))
		if _, err := client.GetStatus(context.Background(), &storegatev1.GetStatusRequest{}); err == nil {
			t.Fatal("a gateway certificate was served on the POS listener")
		}
	})
}

// AdminService is not on the POS listener: any POS certificate calling it
// there hears Unimplemented, and ExportAudit's full account ids never
// reach it. On the admin socket it answers.
func TestIdentity_AdminOnlyOnTheSocket(t *testing.T) {
	s := newIdentityStack(t)
	approve(t, s.pos(t, lane1Cert), request("1", "a-1", s.token.mint(t)))
	for _, id := range []certs.Identity{lane1Cert, managerCert} {
		cert, key := certs.CertFiles(id)
		pair, err := tls.LoadX509KeyPair(filepath.Join(s.dir, cert), filepath.Join(s.dir, key))
		if err != nil {
			t.Fatal(err)
		}
		creds := credentials.NewTLS(&tls.Config{MinVersion: certs.MinVersion, RootCAs: s.pool, ServerName: "localhost", Certificates: []tls.Certificate{pair}})
		conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		admin := storegatev1.NewAdminServiceClient(conn)
		stream, err := admin.ExportAudit(context.Background(), &storegatev1.ExportAuditRequest{})
		if err == nil {
			_, err = stream.Recv()
		}
		wantCode(t, id.String()+" ExportAudit on the POS port", err, codes.Unimplemented)
		_, err = admin.ListOutbox(context.Background(), &storegatev1.ListOutboxRequest{})
		wantCode(t, id.String()+" ListOutbox on the POS port", err, codes.Unimplemented)
		_, err = admin.GetPolicy(context.Background(), &storegatev1.GetPolicyRequest{})
		wantCode(t, id.String()+" GetPolicy on the POS port", err, codes.Unimplemented)
		_, err = admin.ApplyPolicy(context.Background(), &storegatev1.ApplyPolicyRequest{})
		wantCode(t, id.String()+" ApplyPolicy on the POS port", err, codes.Unimplemented)
	}
	stream, err := s.admin.ExportAudit(context.Background(), &storegatev1.ExportAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := stream.Recv()
	if err != nil || !strings.Contains(string(rec.GetRecord().GetRecord()), "acct-0001") {
		t.Fatalf("ExportAudit on the admin socket: %v, %v; want the sale's record, account in full", rec, err)
	}
	// The call is logged before its status goes out.
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("ExportAudit after one record: %v, want the end", err)
	}
	if !strings.Contains(s.logs.String(), "unix:uid="+strconv.Itoa(os.Getuid())) {
		t.Fatalf("the admin call is not logged with its caller's uid:\n%s", s.logs)
	}
}

// Handlers refuse a call that reached them without the interceptors: a
// server built without PaymentServerOptions or AdminServerOptions, or with
// AdminService on the POS listener, serves nobody.
func TestIdentity_HandlersFailClosed(t *testing.T) {
	s := newAbuseStack(t)
	srv := &grpcserver.Server{Gateway: nil, StartedAt: time.Now()}
	conn := serve(t, func(s grpc.ServiceRegistrar) {
		srv.RegisterPayment(s)
		srv.RegisterAdmin(s)
	})
	_, err := storegatev1.NewPaymentServiceClient(conn).Authorize(context.Background(), request("1", "x", s.mint(t)))
	wantCode(t, "Authorize without the interceptors", err, codes.Unauthenticated)
	_, err = storegatev1.NewPaymentServiceClient(conn).GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
	wantCode(t, "GetStatus without the interceptors", err, codes.Unauthenticated)
	_, err = storegatev1.NewAdminServiceClient(conn).GetPolicy(context.Background(), &storegatev1.GetPolicyRequest{})
	wantCode(t, "GetPolicy without the interceptors", err, codes.Unauthenticated)

	// AdminService registered on a POS listener: its callers are POS
	// terminals or supervisors, never operators.
	posSrv := &grpcserver.Server{Gateway: &gateway.Gateway{StoreID: storeA}, InsecureCallers: true}
	mixed := listenAndServe(t, posSrv.PaymentServerOptions(), posSrv.RegisterAdmin)
	_, err = storegatev1.NewAdminServiceClient(dialT(t, mixed)).ListOutbox(context.Background(), &storegatev1.ListOutboxRequest{})
	wantCode(t, "ListOutbox registered on a POS listener", err, codes.Unauthenticated)
}

// Without mutual TLS there is no identity: PaymentService is refused,
// unless the development switch takes every caller as a supervisor.
func TestIdentity_NoCertificate(t *testing.T) {
	s := newAbuseStack(t)
	strict := &grpcserver.Server{Gateway: &gateway.Gateway{StoreID: storeA}, Chain: certs.DevChain}
	client := storegatev1.NewPaymentServiceClient(dialT(t, listenAndServe(t, strict.PaymentServerOptions(), strict.RegisterPayment)))
	_, err := client.Authorize(context.Background(), request("1", "plain-1", s.mint(t)))
	wantCode(t, "a plaintext Authorize", err, codes.Unauthenticated)
	_, err = client.GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
	wantCode(t, "a plaintext GetStatus", err, codes.Unauthenticated)

	// The abuse stack runs with InsecureCallers: its sales name the
	// caller's address.
	approve(t, s.payments, request("1", "insecure-1", s.mint(t)))
	if got := lastAudit(t, s.store).Caller; !strings.HasPrefix(got, "insecure:127.0.0.1:") {
		t.Fatalf("audit caller %q, want insecure: and the caller's address", got)
	}
}

func TestListAdminSocket(t *testing.T) {
	dir := t.TempDir()
	t.Run("Mode", func(t *testing.T) {
		path := filepath.Join(dir, "a.sock")
		ln, err := grpcserver.ListenAdminSocket(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != grpcserver.DefaultAdminSocketMode {
			t.Fatalf("socket mode %v, want a socket with %o", fi.Mode(), grpcserver.DefaultAdminSocketMode)
		}
	})
	t.Run("StaleSocketReplaced", func(t *testing.T) {
		path := filepath.Join(dir, "stale.sock")
		old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		old.SetUnlinkOnClose(false)
		old.Close() // a process that died: the file stays, nobody answers
		ln, err := grpcserver.ListenAdminSocket(path, 0)
		if err != nil {
			t.Fatalf("over a stale socket: %v", err)
		}
		ln.Close()
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Fatalf("the socket file outlived its listener: %v", err)
		}
	})
	t.Run("ErrInUse", func(t *testing.T) {
		path := filepath.Join(dir, "busy.sock")
		first, err := grpcserver.ListenAdminSocket(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer first.Close()
		go func() {
			for {
				c, err := first.Accept()
				if err != nil {
					return
				}
				io.Copy(io.Discard, c)
			}
		}()
		if ln, err := grpcserver.ListenAdminSocket(path, 0); err == nil {
			ln.Close()
			t.Fatal("a second listener took a socket in use")
		}
	})
	t.Run("ErrNotASocket", func(t *testing.T) {
		path := filepath.Join(dir, "file")
		if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		if ln, err := grpcserver.ListenAdminSocket(path, 0); err == nil {
			ln.Close()
			t.Fatal("listened over a regular file")
		}
		if b, _ := os.ReadFile(path); string(b) != "keep me" {
			t.Fatal("the file in the way was changed")
		}
	})
	t.Run("ErrPathTooLong", func(t *testing.T) {
		path := filepath.Join(dir, strings.Repeat("x", grpcserver.MaxSocketPath))
		if _, err := grpcserver.ListenAdminSocket(path, 0); err == nil || !strings.Contains(err.Error(), "bytes") {
			t.Fatalf("err = %v, want one about the path's length", err)
		}
	})
	t.Run("ErrAdminOverTCP", func(t *testing.T) {
		// The admin server's credentials take unix sockets only.
		srv := &grpcserver.Server{}
		addr := listenAndServe(t, srv.AdminServerOptions(), srv.RegisterAdmin)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if _, err := storegatev1.NewAdminServiceClient(dialT(t, addr)).GetPolicy(ctx, &storegatev1.GetPolicyRequest{}); err == nil {
			t.Fatal("AdminService answered over TCP")
		}
	})
}
