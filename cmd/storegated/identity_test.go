package main_test

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"storegate/certs"
	"storegate/hqkeys"
	"storegate/internal/testca"
	storegatev1 "storegate/proto/storegate/v1"
)

// identityWorld is HQ and store-0001's gateway as processes, every link
// mutual TLS with the development set storegatectl makes, lanes 1 and 2 with
// scanners on pseudo-terminals.
type identityWorld struct {
	pki     string
	keys    *hqkeys.Keys
	gwData  string
	hq, gw  *daemon
	scanner map[string]*os.File // the scanner end of each lane's pty
	// wide is a second CA the POS listener trusts, without name
	// constraints.
	wide *testca.CA
}

func newIdentityWorld(t *testing.T) *identityWorld {
	t.Helper()
	w := &identityWorld{pki: devPKI(t), gwData: t.TempDir(), scanner: map[string]*os.File{}}
	if out, code := ctl(t, "certs", "dev", "--dir", w.pki, "--store", "store-0002", "--lane", "1"); code != 0 {
		t.Fatalf("certs dev for store B: exit %d: %s", code, out)
	}
	keysDir := t.TempDir()
	var err error
	if w.keys, err = hqkeys.Init(keysDir); err != nil {
		t.Fatal(err)
	}
	// The POS listener trusts the POS CA and, as a chain's CA for several
	// trust domains would be, a second CA without name constraints: what it
	// signs reaches the identity check.
	clientCA := filepath.Join(t.TempDir(), "client-cas.crt")
	posCA, err := os.ReadFile(pkiFile(w.pki, certs.CAPOS.CertFile()))
	if err != nil {
		t.Fatal(err)
	}
	w.wide = testca.New(t, "wide CA")
	if err := os.WriteFile(clientCA, append(posCA, w.wide.PEM()...), 0o644); err != nil {
		t.Fatal(err)
	}

	w.hq = startDaemon(t, "storegate-hq", append([]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data", t.TempDir(),
		"--keys", keysDir, "--account", "acct-0001=100000"}, hqTLSArgs(w.pki)...)...)
	args := append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data", w.gwData, "--store-id", "store-0001",
		"--central", w.hq.addr, "--root-key", pkiFile(keysDir, "root.pub"), "--keyset", pkiFile(keysDir, "keyset.cose")},
		gatewayTLSArgs(w.pki, true)...)
	args = append(args, "--tls-client-ca", clientCA)
	for _, lane := range []string{"1", "2"} {
		master, slave, err := pty.Open()
		if err != nil {
			t.Skipf("no pseudo-terminals here: %v", err)
		}
		t.Cleanup(func() { master.Close(); slave.Close() })
		link := filepath.Join(t.TempDir(), "lane"+lane)
		if err := os.Symlink(slave.Name(), link); err != nil {
			t.Fatal(err)
		}
		w.scanner[lane] = master
		args = append(args, "--lane", lane+"="+link)
	}
	w.gw = startDaemon(t, "storegated", args...)
	return w
}

// connAs dials the gateway presenting cert.
func (w *identityWorld) connAs(t *testing.T, cert tls.Certificate) *grpc.ClientConn {
	t.Helper()
	pool, err := certs.LoadPool(pkiFile(w.pki, certs.CAServer.CertFile()))
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewTLS(&tls.Config{MinVersion: certs.MinVersion, RootCAs: pool, Certificates: []tls.Certificate{cert}})
	conn, err := grpc.NewClient(w.gw.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// pos is the PaymentService of the POS holding id's development
// certificate.
func (w *identityWorld) pos(t *testing.T, id certs.Identity) storegatev1.PaymentServiceClient {
	t.Helper()
	return storegatev1.NewPaymentServiceClient(tlsClient(t, w.gw.addr, w.pki, w.pki, id))
}

// ctlAs runs storegatectl against the gateway as id's POS.
func (w *identityWorld) ctlAs(t *testing.T, id certs.Identity, args ...string) (string, int) {
	t.Helper()
	cert, key := clientFiles(w.pki, id)
	tlsArgs := []string{"--addr", w.gw.addr, "--tls-ca", pkiFile(w.pki, certs.CAServer.CertFile()), "--tls-cert", cert, "--tls-key", key}
	return ctl(t, append(args, tlsArgs...)...)
}

func (w *identityWorld) adminSocket() string { return filepath.Join(w.gwData, "admin.sock") }

// stored returns how many audit records the gateway holds, as a
// supervisor's GetStatus shows it: every decision and reversal appends one
// in the transaction that stores it. (The outbox is no measure here: the
// forwarder drains it to HQ meanwhile.)
func (w *identityWorld) stored(t *testing.T) uint64 {
	t.Helper()
	st, err := w.pos(t, idManager).GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st.GetAuditRecords()
}

var (
	idLane2   = certs.POS(certs.DevChain, certs.DefaultDevStore, "2")
	idManager = certs.Supervisor(certs.DevChain, certs.DefaultDevStore, certs.DefaultDevSupervisor)
	idStoreB  = certs.POS(certs.DevChain, "store-0002", "1")
)

// Every store-side attack of issue 12, against the binaries over mutual
// TLS: refused, nothing stored, the customer's token still pays.
func TestStoregated_Identity(t *testing.T) {
	w := newIdentityWorld(t)
	ctx := context.Background()
	lane1POS, lane2POS := w.pos(t, lane1), w.pos(t, idLane2)
	world := &world{keys: w.keys}
	mint := func() string { return world.mint(t, w.keys.Token, "acct-0001", time.Now(), time.Minute) }

	t.Run("ErrWatchAndPayWithLane2sScan", func(t *testing.T) {
		if out, code := w.ctlAs(t, lane1, "scans", "watch", "--lane", "2", "--count", "1", "--timeout", "5s"); code != 1 || !strings.Contains(out, "PermissionDenied") {
			t.Fatalf("lane 1's POS watching lane 2: exit %d: %s; want 1 and PermissionDenied", code, out)
		}
		// Lane 2's POS watches its own scanner; the customer scans.
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		stream, err := lane2POS.WatchScans(wctx, &storegatev1.WatchScansRequest{Lane: "2"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Header(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.scanner["2"].Write([]byte("]Q1" + mint() + "\r")); err != nil {
			t.Fatal(err)
		}
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("lane 2's POS saw no scan: %v\n%s", err, w.gw.log)
		}
		steal := sale("2", "steal-1", "")
		steal.Credential = &storegatev1.AuthorizeRequest_ScanId{ScanId: msg.GetScan().GetScanId()}
		n := w.stored(t)
		if _, err := lane1POS.Authorize(ctx, steal); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("lane 1's POS paying with lane 2's scan id: %v, want PermissionDenied", err)
		}
		if n2 := w.stored(t); n2 != n {
			t.Fatalf("after the refusal: audit records %d→%d; want nothing stored", n, n2)
		}
		steal.PosTransactionId = "lane2-1"
		res, err := lane2POS.Authorize(ctx, steal)
		if err != nil || res.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
			t.Fatalf("lane 2's POS paying with its scan id afterwards: %v, %v; want approved (the customer's token still pays)", res, err)
		}
	})
	t.Run("ErrReverseLane2sSale", func(t *testing.T) {
		if res, err := lane2POS.Authorize(ctx, sale("2", "lane2-2", mint())); err != nil || res.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
			t.Fatalf("lane 2's sale: %v, %v", res, err)
		}
		n := w.stored(t)
		if out, code := w.ctlAs(t, lane1, "reverse", "--lane", "2", "--txn", "lane2-2", "--reason", "refund"); code != 1 || !strings.Contains(out, "PermissionDenied") {
			t.Fatalf("lane 1's POS reversing lane 2's sale: exit %d: %s; want 1 and PermissionDenied", code, out)
		}
		if n2 := w.stored(t); n2 != n {
			t.Fatalf("after the refusal: audit records %d→%d; want nothing stored", n, n2)
		}
		if out, code := w.ctlAs(t, idLane2, "reverse", "--lane", "2", "--txn", "lane2-2"); code != 1 || !strings.Contains(out, "InvalidArgument") {
			t.Fatalf("a reversal without a reason: exit %d: %s; want 1 and InvalidArgument", code, out)
		}
		if out, code := w.ctlAs(t, idLane2, "reverse", "--lane", "2", "--txn", "lane2-2", "--reason", "goods returned"); code != 0 || !strings.Contains(out, "REVERSED") {
			t.Fatalf("lane 2 reversing its own sale: exit %d: %s", code, out)
		}
	})
	t.Run("ErrAdminServiceOnThePOSPort", func(t *testing.T) {
		for _, id := range []certs.Identity{lane1, idManager} {
			admin := storegatev1.NewAdminServiceClient(tlsClient(t, w.gw.addr, w.pki, w.pki, id))
			stream, err := admin.ExportAudit(ctx, &storegatev1.ExportAuditRequest{})
			if err == nil {
				_, err = stream.Recv()
			}
			if status.Code(err) != codes.Unimplemented {
				t.Fatalf("%s ExportAudit on the POS port: %v, want Unimplemented", id, err)
			}
			if _, err := admin.ListOutbox(ctx, &storegatev1.ListOutboxRequest{}); status.Code(err) != codes.Unimplemented {
				t.Fatalf("%s ListOutbox on the POS port: %v, want Unimplemented", id, err)
			}
			if _, err := admin.ApplyPolicy(ctx, &storegatev1.ApplyPolicyRequest{}); status.Code(err) != codes.Unimplemented {
				t.Fatalf("%s ApplyPolicy on the POS port: %v, want Unimplemented", id, err)
			}
		}
	})
	t.Run("AdminSocket", func(t *testing.T) {
		out, code := ctl(t, "audit", "export", "--admin-socket", w.adminSocket())
		if code != 0 || !strings.Contains(out, "acct-0001") {
			t.Fatalf("audit export over the admin socket: exit %d: %s", code, out)
		}
		// The reversal's record names who asked, and why.
		var reversal string
		reversals := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, `"event":"reverse"`) {
				reversal = line
				reversals++
			}
		}
		if reversals != 1 {
			t.Fatalf("%d reversal records, want 1: lane 2's own", reversals)
		}
		if !strings.Contains(reversal, `"caller":"`+idLane2.String()+`"`) || !strings.Contains(reversal, `"reversal_reason":"goods returned"`) {
			t.Fatalf("the reversal's audit record does not name lane 2's POS and its reason: %s", reversal)
		}
		if out, code := ctl(t, "outbox", "--admin-socket", w.adminSocket()); code != 0 || !strings.Contains(out, "waiting for central") {
			t.Fatalf("outbox over the admin socket: exit %d: %s", code, out)
		}
		if out, code := ctl(t, "policy", "show", "--admin-socket", w.adminSocket()); code != 0 || !strings.Contains(out, "store store-0001") {
			t.Fatalf("policy show over the admin socket: exit %d: %s", code, out)
		}
		if fi, err := os.Stat(w.adminSocket()); err != nil || fi.Mode().Perm() != 0o660 {
			t.Fatalf("admin socket: %v, mode %v; want 0660", err, fi.Mode().Perm())
		}
	})
	t.Run("ErrStoreBsCertificate", func(t *testing.T) {
		n := w.stored(t)
		if _, err := w.pos(t, idStoreB).Authorize(ctx, sale("1", "b-1", mint())); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("store B's POS at store A: %v, want PermissionDenied", err)
		}
		if out, code := w.ctlAs(t, idStoreB, "status"); code != 1 || !strings.Contains(out, "PermissionDenied") {
			t.Fatalf("store B's POS asking store A's status: exit %d: %s", code, out)
		}
		if n2 := w.stored(t); n2 != n {
			t.Fatalf("after store B's calls: audit records %d→%d; want nothing stored", n, n2)
		}
	})
	t.Run("ErrCertificatesNamingNobody", func(t *testing.T) {
		posCA, wide := testca.Load(t, pkiFile(w.pki, certs.CAPOS.CertFile()), pkiFile(w.pki, certs.CAPOS.KeyFile())), w.wide
		for name, c := range map[string]struct {
			ca   *testca.CA
			uris []string
			want codes.Code
		}{
			"ErrNoURISAN":       {posCA, nil, codes.Unauthenticated},
			"ErrSeveralURISANs": {posCA, []string{lane1.String(), idLane2.String()}, codes.Unauthenticated},
			"ErrWrongShape":     {posCA, []string{"spiffe://" + certs.DevChain + "/store/store-0001/till/1"}, codes.Unauthenticated},
			"ErrForeignChain":   {wide, []string{"spiffe://other.example/store/store-0001/lane/1"}, codes.Unauthenticated},
			"ErrGatewayKind":    {posCA, []string{certs.Gateway(certs.DevChain, "store-0001").String()}, codes.PermissionDenied},
		} {
			t.Run(name, func(t *testing.T) {
				client := storegatev1.NewPaymentServiceClient(w.connAs(t, c.ca.Client(t, c.uris...)))
				if _, err := client.Authorize(ctx, sale("1", "rogue-"+name, mint())); status.Code(err) != c.want {
					t.Fatalf("Authorize: %v, want %v", err, c.want)
				}
				if _, err := client.GetStatus(ctx, &storegatev1.GetStatusRequest{}); status.Code(err) != c.want {
					t.Fatalf("GetStatus: %v, want %v", err, c.want)
				}
			})
		}
		t.Run("ErrForeignChainFromThePOSCA", func(t *testing.T) {
			// The development POS CA is name-constrained to its chain:
			// the handshake itself refuses another chain's identity.
			client := storegatev1.NewPaymentServiceClient(w.connAs(t, posCA.Client(t, "spiffe://other.example/store/store-0001/lane/1")))
			if _, err := client.GetStatus(ctx, &storegatev1.GetStatusRequest{}); err == nil {
				t.Fatal("a certificate naming another chain, from the POS CA, was served")
			}
		})
	})
	t.Run("RefusalsLogged", func(t *testing.T) {
		if !strings.Contains(w.gw.log.String(), `"msg":"call refused"`) {
			t.Fatalf("no refusal in the gateway's log:\n%s", w.gw.log)
		}
	})
	w.gw.stop()
	if _, err := os.Lstat(w.adminSocket()); !os.IsNotExist(err) {
		t.Errorf("the admin socket outlived the gateway: %v", err)
	}
	w.hq.stop()
}
