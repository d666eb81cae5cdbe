package grpcserver_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"storegate/central"
	"storegate/gateway"
	"storegate/gateway/centralclient"
	documentv1 "storegate/proto/storegate/document/v1"
	storegatev1 "storegate/proto/storegate/v1"
)

func signed(raw []byte) *storegatev1.SignedDocument {
	return &storegatev1.SignedDocument{CoseSign1: raw}
}

func mustSignPolicy(t *testing.T, s *stack, m *documentv1.Policy) []byte {
	t.Helper()
	raw, err := gateway.SignPolicy(s.keys.Root, m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func mustSignFreeze(t *testing.T, root []byte, m *documentv1.FreezeList) []byte {
	t.Helper()
	raw, err := gateway.SignFreezeList(root, m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

var tobaccoPolicy = &documentv1.Policy{Version: 1, Mode: documentv1.StoreMode_STORE_MODE_NORMAL, MaxTokenLifetimeSeconds: 120,
	Rules: []*documentv1.Rule{{Id: "tobacco", Categories: []string{"tobacco"}, MaxQuantityPerTransaction: 10,
		MaxQuantityPerAccount: 20, AccountWindowSeconds: 86400}}}

func TestServer_ApplyPolicy(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	res, err := s.admin.ApplyPolicy(ctx, &storegatev1.ApplyPolicyRequest{Document: signed(mustSignPolicy(t, s, tobaccoPolicy))})
	if err != nil || res.GetApplied().GetVersion() != 1 || res.GetApplied().GetUnchanged() || res.GetApplied().GetKind() != storegatev1.DocumentKind_DOCUMENT_KIND_POLICY {
		t.Fatalf("ApplyPolicy: got %v, %v, want policy v1 applied", res, err)
	}
	req := request("1", "t1", s.mint(t))
	req.Lines[0].Quantity, req.Total = 11, 11*580
	out, err := s.payments.Authorize(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if d := out.GetDecision(); d.GetReason() != storegatev1.DeclineReason_DECLINE_REASON_LIMIT_EXCEEDED || d.GetRule() != "tobacco" ||
		!strings.Contains(d.GetMessage(), "at most 10 per transaction") {
		t.Fatalf("11 packs: got %v, want LIMIT_EXCEEDED by rule tobacco", d)
	}

	t.Run("GetPolicy", func(t *testing.T) {
		got, err := s.admin.GetPolicy(ctx, &storegatev1.GetPolicyRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if got.GetChain().GetVersion() != 1 || got.GetStore() != nil || got.GetMode() != documentv1.StoreMode_STORE_MODE_NORMAL ||
			got.GetMaxTokenLifetimeSeconds() != 120 || got.GetKeysetVersion() != 1 || got.GetStoreId() != "store-0001" {
			t.Errorf("GetPolicy: got %v", got)
		}
		if r := got.GetChain().GetRules(); len(r) != 1 || r[0].GetId() != "tobacco" || r[0].GetAccountWindowSeconds() != 86400 {
			t.Errorf("GetPolicy rules: got %v, want the tobacco rule", r)
		}
		st, err := s.payments.GetStatus(ctx, &storegatev1.GetStatusRequest{})
		if err != nil || st.GetPolicyVersion() != 1 || st.GetStorePolicyVersion() != 0 {
			t.Errorf("GetStatus: got policy %d store policy %d (%v), want 1 and 0", st.GetPolicyVersion(), st.GetStorePolicyVersion(), err)
		}
	})
	t.Run("ErrOlder", func(t *testing.T) {
		newer := mustSignPolicy(t, s, &documentv1.Policy{Version: 3, Mode: documentv1.StoreMode_STORE_MODE_NORMAL})
		if _, err := s.admin.ApplyPolicy(ctx, &storegatev1.ApplyPolicyRequest{Document: signed(newer)}); err != nil {
			t.Fatal(err)
		}
		_, err := s.admin.ApplyPolicy(ctx, &storegatev1.ApplyPolicyRequest{Document: signed(mustSignPolicy(t, s, tobaccoPolicy))})
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "older") {
			t.Errorf("older policy: got %v, want FailedPrecondition", err)
		}
	})
	t.Run("ErrTampered", func(t *testing.T) {
		raw := mustSignPolicy(t, s, &documentv1.Policy{Version: 9, Mode: documentv1.StoreMode_STORE_MODE_NORMAL})
		raw[len(raw)-1] ^= 1
		_, err := s.admin.ApplyPolicy(ctx, &storegatev1.ApplyPolicyRequest{Document: signed(raw)})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("tampered policy: got %v, want InvalidArgument", err)
		}
	})
}

func TestServer_FreezeAccounts(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	freeze := func(v uint64, frozen bool) *storegatev1.FreezeAccountsRequest {
		return &storegatev1.FreezeAccountsRequest{Document: signed(mustSignFreeze(t, s.keys.Root, &documentv1.FreezeList{
			Version: v, Entries: []*documentv1.FreezeEntry{{Account: "acct-0001", Frozen: frozen, Reason: "takeover"}}}))}
	}
	res, err := s.admin.FreezeAccounts(ctx, freeze(1, true))
	if err != nil || res.GetApplied().GetVersion() != 1 || res.GetApplied().GetKind() != storegatev1.DocumentKind_DOCUMENT_KIND_FREEZE_LIST {
		t.Fatalf("FreezeAccounts: got %v, %v, want freeze list v1 applied", res, err)
	}
	out, err := s.payments.Authorize(ctx, request("1", "t1", s.mint(t)))
	if err != nil {
		t.Fatal(err)
	}
	if d := out.GetDecision(); d.GetReason() != storegatev1.DeclineReason_DECLINE_REASON_ACCOUNT_FROZEN || d.GetRule() != "freeze.account" {
		t.Fatalf("frozen account: got %v, want ACCOUNT_FROZEN by freeze.account", d)
	}
	got, err := s.admin.GetPolicy(ctx, &storegatev1.GetPolicyRequest{})
	if err != nil || got.GetFreezeVersion() != 1 || got.GetFrozenAccounts() != 1 {
		t.Errorf("GetPolicy: got freeze v%d with %d accounts (%v), want v1 with 1", got.GetFreezeVersion(), got.GetFrozenAccounts(), err)
	}
	if _, err := s.admin.FreezeAccounts(ctx, freeze(3, false)); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("a delta after a gap: got %v, want FailedPrecondition", err)
	}
	if res, err := s.admin.FreezeAccounts(ctx, freeze(2, false)); err != nil || res.GetApplied().GetVersion() != 2 {
		t.Fatalf("unfreeze: got %v, %v", res, err)
	}
	if out, _ := s.payments.Authorize(ctx, request("1", "t2", s.mint(t))); out.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
		t.Errorf("after unfreezing: got %v, want approved", out.GetDecision())
	}
}

// hq is the reference central service on a loopback port that a test can
// stop and start again on the same address.
type hq struct {
	t      *testing.T
	addr   string
	svc    *central.Service
	server *grpc.Server
	done   chan struct{}
}

func (h *hq) start() {
	h.t.Helper()
	addr := h.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for range 50 { // the port may take a moment to free after a stop
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	h.server = grpc.NewServer()
	storegatev1.RegisterCentralServiceServer(h.server, h.svc)
	h.done = make(chan struct{})
	go func() { defer close(h.done); h.server.Serve(ln) }()
}

func (h *hq) stop() {
	h.server.Stop()
	<-h.done
}

// TestPolicyWatcher_OverGRPC runs the gateway's policy stream against the
// reference central service: documents published at HQ are applied at the
// store, and after HQ goes away and comes back the stream resumes and
// delivers what was published meanwhile.
func TestPolicyWatcher_OverGRPC(t *testing.T) {
	dir := t.TempDir()
	keys := mustInitKeys(t, dir)
	ledger := mustOpenLedger(t, dir)
	pub := mustOpenPublisher(t, ledger, keys.RootPublic)
	if _, _, err := pub.Publish(context.Background(), gateway.DocumentKeyset, keys.Keyset); err != nil {
		t.Fatal(err)
	}
	h := &hq{t: t, svc: central.NewService(ledger, pub, func() *gateway.Keyring { return keys.Keyring })}
	h.start()
	defer h.stop()

	st := mustOpenStore(t, dir)
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := centralclient.New(conn)
	gw := gateway.NewGateway("store-0001", st, client, keys.RootPublic)
	if err := gw.Open(context.Background()); err != nil {
		t.Fatal(err)
	}

	applied := make(chan string, 16)
	w := gateway.NewPolicyWatcher(gw, client)
	w.MinBackoff, w.MaxBackoff = 10*time.Millisecond, 50*time.Millisecond
	w.Applied = func(kind gateway.DocumentKind, v uint64) { applied <- string(kind) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the watcher did not stop after its context ended")
		}
	}()

	wait := func(want string) {
		t.Helper()
		select {
		case got := <-applied:
			if got != want {
				t.Fatalf("applied %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s was not applied", want)
		}
	}
	wait("keyset") // caught up on connect
	publish := func(kind gateway.DocumentKind, raw []byte) {
		t.Helper()
		if _, _, err := pub.Publish(context.Background(), kind, raw); err != nil {
			t.Fatal(err)
		}
	}
	publish(gateway.DocumentPolicy, mustSignPolicy(t, &stack{keys: keys}, tobaccoPolicy))
	wait("policy")

	h.stop()
	publish(gateway.DocumentFreeze, mustSignFreeze(t, keys.Root,
		&documentv1.FreezeList{Version: 1, Entries: []*documentv1.FreezeEntry{{Account: "acct-0001", Frozen: true}}}))
	h.start()
	wait("freeze")
	if v := gw.DocumentVersions(); v.Keyset != 1 || v.Policy != 1 || v.Freeze != 1 {
		t.Errorf("versions held: got %+v, want keyset, policy and freeze at 1", v)
	}
	if _, frozen := gw.FreezeList().Lookup("acct-0001"); !frozen {
		t.Error("acct-0001 is not frozen at the store")
	}
	select {
	case got := <-applied:
		t.Errorf("applied %s again after reconnecting; the stream should resume after the held versions", got)
	default:
	}
}
