package gateway_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"storegate/gateway"
	"storegate/gateway/gatewaytest"
	"storegate/storecache"
)

// fakeCentral is a scripted central service: it approves unless told
// otherwise, and counts the calls it gets.
type fakeCentral struct {
	mu       sync.Mutex
	down     bool
	decline  gateway.Reason
	delay    time.Duration
	calls    atomic.Int64
	refuse   map[string]bool // settlement ids to refuse
	holdBack map[string]bool // settlement ids to leave unacknowledged
	got      []gateway.Settlement
}

func (c *fakeCentral) Authorize(ctx context.Context, req *gateway.CentralRequest) (*gateway.CentralResult, error) {
	c.calls.Add(1)
	c.mu.Lock()
	down, decline, delay := c.down, c.decline, c.delay
	c.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if down {
		return nil, errors.New("connection refused")
	}
	if decline != gateway.ReasonNone {
		return &gateway.CentralResult{Reason: decline, Message: "declined by the fake"}, nil
	}
	return &gateway.CentralResult{Approved: true, AuthorizationID: "auth-" + req.POSTxnID, Account: "acct-from-central"}, nil
}

func (c *fakeCentral) SubmitSettlements(ctx context.Context, storeID string, batch []gateway.Settlement) ([]gateway.SettlementAck, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return nil, errors.New("connection refused")
	}
	var acks []gateway.SettlementAck
	for _, s := range batch {
		switch {
		case c.holdBack[s.ID]:
			continue
		case c.refuse[s.ID]:
			acks = append(acks, gateway.SettlementAck{ID: s.ID, Status: gateway.SettlementRefused, Message: "insufficient funds"})
		default:
			c.got = append(c.got, s)
			acks = append(acks, gateway.SettlementAck{ID: s.ID, Status: gateway.SettlementAccepted})
		}
	}
	return acks, nil
}

func (c *fakeCentral) set(f func(c *fakeCentral)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

// harness is a gateway over a real bbolt store in t.TempDir().
type harness struct {
	gw        *gateway.Gateway
	store     *storecache.Store
	central   *fakeCentral
	tokenKey  ed25519.PrivateKey
	rootKey   ed25519.PrivateKey
	now       time.Time
	path      string
	tokenKeys []ed25519.PublicKey
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	rootPub, rootPriv, _ := gateway.GenerateKey()
	tokPub, tokPriv, _ := gateway.GenerateKey()
	h := &harness{
		central:   &fakeCentral{},
		tokenKey:  tokPriv,
		rootKey:   rootPriv,
		now:       time.Unix(1794000060, 0),
		path:      filepath.Join(t.TempDir(), "storegate.db"),
		tokenKeys: []ed25519.PublicKey{tokPub},
	}
	h.open(t, rootPub)
	ks, err := gateway.SignKeyset(rootPriv, gateway.NewKeyset(1, h.now, tokPub))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.gw.ApplyKeyset(context.Background(), ks); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) open(t *testing.T, root ed25519.PublicKey) {
	t.Helper()
	st := storecache.NewStore(h.path)
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.store = st
	t.Cleanup(func() {
		if h.store != st {
			return // closed by restart
		}
		if err := st.Check(); err != nil {
			t.Errorf("bbolt check: %v", err)
		}
		st.Close(context.Background())
	})
	h.gw = gateway.NewGateway("store-0001", st, h.central, root)
	h.gw.CentralTimeout = 200 * time.Millisecond
	h.gw.Now = func() time.Time { return h.now }
	if err := h.gw.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// restart closes the store and opens a new gateway on the same file.
func (h *harness) restart(t *testing.T) {
	t.Helper()
	if err := h.store.Check(); err != nil {
		t.Errorf("bbolt check: %v", err)
	}
	if err := h.store.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.open(t, h.rootKey.Public().(ed25519.PublicKey))
}

func (h *harness) mint(t testing.TB, account string) string {
	t.Helper()
	id, _ := gateway.NewTokenID()
	tok, err := gateway.MintToken(h.tokenKey, gateway.Claims{
		Issuer: "storegate-hq", Account: account, IssuedAt: h.now.Add(-10 * time.Second), Expires: h.now.Add(110 * time.Second),
		TokenID: id, Device: "phone-1", Assurance: 2, OfflineAllowance: 5000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func basket(lane, txn, token string) *gateway.AuthorizeRequest {
	return &gateway.AuthorizeRequest{
		Lane: lane, POSTxnID: txn, Currency: "JPY", Token: token, Total: 1200,
		Lines: []gateway.Line{{SKU: "4901234567894", Category: "food", Quantity: 2, UnitPrice: 300}, {SKU: "4909876543210", Category: "drink", Quantity: 1, UnitPrice: 600}},
	}
}

func (h *harness) authorize(t *testing.T, req *gateway.AuthorizeRequest) *gateway.AuthorizeResult {
	t.Helper()
	res, err := h.gw.Authorize(context.Background(), req)
	if err != nil {
		t.Fatalf("Authorize(%s/%s): %v", req.Lane, req.POSTxnID, err)
	}
	return res
}

func (h *harness) auditCount(t *testing.T) uint64 {
	t.Helper()
	n, _, err := h.store.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func wantDecline(t *testing.T, res *gateway.AuthorizeResult, want gateway.Reason) {
	t.Helper()
	if res.Decision.Approved || res.Decision.Reason != want {
		t.Fatalf("decision = approved %v reason %v (%s), want declined %v", res.Decision.Approved, res.Decision.Reason, res.Decision.Message, want)
	}
}

func TestGateway_Authorize(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		h := newHarness(t)
		res := h.authorize(t, basket("1", "t1", h.mint(t, "acct-0001")))
		d := res.Decision
		if !d.Approved || d.Mode != gateway.ModeOnline || d.SettlementID == "" || d.AuthorizationID != "auth-t1" || res.Replayed {
			t.Fatalf("decision = %+v, want an online approval with a settlement", d)
		}
		st, _ := h.store.OutboxStats(context.Background())
		if st.Depth != 1 {
			t.Fatalf("outbox depth = %d, want 1", st.Depth)
		}
		if n := h.auditCount(t); n != 1 {
			t.Fatalf("audit records = %d, want 1", n)
		}
	})
	t.Run("ErrReplayed", func(t *testing.T) {
		h := newHarness(t)
		tok := h.mint(t, "acct-0001")
		h.authorize(t, basket("1", "t1", tok))
		res := h.authorize(t, basket("2", "t2", tok))
		wantDecline(t, res, gateway.ReasonReplayed)
		if got := h.central.calls.Load(); got != 1 {
			t.Fatalf("central called %d times, want 1: a replay must be refused at the store", got)
		}
	})
	t.Run("RetrySameAnswer", func(t *testing.T) {
		h := newHarness(t)
		tok := h.mint(t, "acct-0001")
		first := h.authorize(t, basket("1", "t1", tok))
		again := h.authorize(t, basket("1", "t1", tok))
		if !again.Replayed || again.Decision.SettlementID != first.Decision.SettlementID || !again.Decision.Approved {
			t.Fatalf("retry = %+v, want the stored approval %s", again, first.Decision.SettlementID)
		}
		if got := h.central.calls.Load(); got != 1 {
			t.Fatalf("central called %d times, want 1", got)
		}
		if st, _ := h.store.OutboxStats(context.Background()); st.Depth != 1 {
			t.Fatalf("outbox depth = %d, want 1 (one charge)", st.Depth)
		}
	})
	t.Run("ErrSameKeyOtherBasket", func(t *testing.T) {
		h := newHarness(t)
		tok := h.mint(t, "acct-0001")
		h.authorize(t, basket("1", "t1", tok))
		req := basket("1", "t1", tok)
		req.Lines[0].Quantity, req.Total = 3, 1500
		_, err := h.gw.Authorize(context.Background(), req)
		if gateway.ErrorCode(err) != gateway.ECONFLICT {
			t.Fatalf("err = %v, want ECONFLICT", err)
		}
	})
	t.Run("TokenDeclines", func(t *testing.T) {
		h := newHarness(t)
		_, otherPriv, _ := gateway.GenerateKey()
		id, _ := gateway.NewTokenID()
		claims := gateway.Claims{Issuer: "storegate-hq", Account: "a", IssuedAt: h.now, Expires: h.now.Add(time.Minute), TokenID: id, Device: "d", Assurance: 2}
		unknown, _ := gateway.MintToken(otherPriv, claims)
		expiredClaims := claims
		expiredClaims.TokenID, _ = gateway.NewTokenID()
		expiredClaims.IssuedAt, expiredClaims.Expires = h.now.Add(-5*time.Minute), h.now.Add(-3*time.Minute)
		expired, _ := gateway.MintToken(h.tokenKey, expiredClaims)
		futureClaims := claims
		futureClaims.TokenID, _ = gateway.NewTokenID()
		futureClaims.IssuedAt, futureClaims.Expires = h.now.Add(10*time.Minute), h.now.Add(11*time.Minute)
		future, _ := gateway.MintToken(h.tokenKey, futureClaims)
		good := h.mint(t, "acct-0001")
		raw, _ := gateway.Base45Decode(good[len(gateway.TokenPrefix):])
		raw[len(raw)-1] ^= 1 // the signature's last byte
		tampered := gateway.TokenPrefix + gateway.Base45Encode(raw)
		for i, c := range []struct {
			token string
			want  gateway.Reason
		}{
			{unknown, gateway.ReasonUnknownKey},
			{expired, gateway.ReasonExpired},
			{future, gateway.ReasonNotYetValid},
			{tampered, gateway.ReasonBadSignature},
			{"SGP1:garbage", gateway.ReasonInvalidToken},
			{"not a token at all", gateway.ReasonInvalidToken},
		} {
			res := h.authorize(t, basket("1", fmt.Sprintf("bad-%d", i), c.token))
			wantDecline(t, res, c.want)
		}
		if got := h.central.calls.Load(); got != 0 {
			t.Fatalf("central called %d times for bad tokens, want 0", got)
		}
		if n := h.auditCount(t); n != 6 {
			t.Fatalf("audit records = %d, want 6: declines are audited too", n)
		}
	})
	t.Run("CentralUnavailable", func(t *testing.T) {
		h := newHarness(t)
		h.central.set(func(c *fakeCentral) { c.down = true })
		res := h.authorize(t, basket("1", "t1", h.mint(t, "acct-0001")))
		wantDecline(t, res, gateway.ReasonCentralUnavailable)
		if res.Decision.Mode != gateway.ModeOffline {
			t.Fatalf("mode = %s, want offline", res.Decision.Mode)
		}
	})
	t.Run("CentralSlowerThanDeadline", func(t *testing.T) {
		h := newHarness(t)
		h.central.set(func(c *fakeCentral) { c.delay = 2 * time.Second })
		res := h.authorize(t, basket("1", "t1", h.mint(t, "acct-0001")))
		wantDecline(t, res, gateway.ReasonCentralUnavailable)
	})
	t.Run("CentralDeclined", func(t *testing.T) {
		h := newHarness(t)
		h.central.set(func(c *fakeCentral) { c.decline = gateway.ReasonInsufficientFunds })
		res := h.authorize(t, basket("1", "t1", h.mint(t, "acct-0001")))
		wantDecline(t, res, gateway.ReasonInsufficientFunds)
		if st, _ := h.store.OutboxStats(context.Background()); st.Depth != 0 {
			t.Fatalf("outbox depth = %d after a decline, want 0", st.Depth)
		}
	})
	t.Run("PaymentCodeOnlineOnly", func(t *testing.T) {
		h := newHarness(t)
		res := h.authorize(t, basket("1", "c1", "12345678901234567890"))
		if !res.Decision.Approved || res.Decision.Account != "acct-from-central" {
			t.Fatalf("code online = %+v, want approved for central's account", res.Decision)
		}
		h.central.set(func(c *fakeCentral) { c.down = true })
		res = h.authorize(t, basket("1", "c2", "12345678901234567891"))
		wantDecline(t, res, gateway.ReasonOnlineOnlyCode)
	})
	t.Run("PaymentCodeWrongLength", func(t *testing.T) {
		// All digits but not 16 to 20 of them: a misread code, told as
		// such, rather than as a token without its SGP1: prefix.
		h := newHarness(t)
		for i, code := range []string{"123456789012345", "123456789012345678901", "7"} {
			res := h.authorize(t, basket("1", fmt.Sprint("len-", i), code))
			wantDecline(t, res, gateway.ReasonInvalidToken)
			want := fmt.Sprintf("a numeric payment code has 16 to 20 digits; this one has %d", len(code))
			if !strings.HasSuffix(res.Decision.Message, want) || res.Decision.Mode != gateway.ModeLocal {
				t.Errorf("%d digits: message %q mode %s, want %q, local", len(code), res.Decision.Message, res.Decision.Mode, want)
			}
			if strings.Contains(res.Decision.Message, code) {
				t.Errorf("the message shows the code: %q", res.Decision.Message)
			}
		}
		if got := h.central.calls.Load(); got != 0 {
			t.Errorf("central called %d times for malformed codes, want 0", got)
		}
	})
	t.Run("ErrInvalidStoresNothing", func(t *testing.T) {
		h := newHarness(t)
		tok := h.mint(t, "acct-0001")
		bad := []func(r *gateway.AuthorizeRequest){
			func(r *gateway.AuthorizeRequest) { r.Lane = "" },
			func(r *gateway.AuthorizeRequest) { r.POSTxnID = "" },
			func(r *gateway.AuthorizeRequest) { r.Currency = "USD" },
			func(r *gateway.AuthorizeRequest) { r.Total = 1199 },
			func(r *gateway.AuthorizeRequest) { r.Lines[0].Quantity = 0 },
			func(r *gateway.AuthorizeRequest) { r.Lines[0].UnitPrice = -1 },
			func(r *gateway.AuthorizeRequest) { r.Lines = nil; r.Total = 0 },
			func(r *gateway.AuthorizeRequest) { r.ScanID = "s1" },
			func(r *gateway.AuthorizeRequest) { r.Token = "" },
			func(r *gateway.AuthorizeRequest) {
				r.Lines = []gateway.Line{{SKU: "x", Quantity: 10000, UnitPrice: gateway.MaxUnitPrice}, {SKU: "y", Quantity: 10000, UnitPrice: gateway.MaxUnitPrice}}
				r.Total = -1
			},
		}
		for i, mutate := range bad {
			req := basket("1", fmt.Sprintf("bad-%d", i), tok)
			mutate(req)
			if _, err := h.gw.Authorize(context.Background(), req); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Errorf("case %d: err = %v, want EINVALID", i, err)
			}
		}
		if n := h.auditCount(t); n != 0 {
			t.Fatalf("audit records = %d after malformed requests, want 0", n)
		}
		// The token is still good: nothing was spent by malformed requests.
		if res := h.authorize(t, basket("1", "good", tok)); !res.Decision.Approved {
			t.Fatalf("token refused after malformed requests: %+v", res.Decision)
		}
	})
}

// 100 lanes presenting one token at once: exactly one approval, and central
// asked once.
func TestGateway_ConcurrentSameToken(t *testing.T) {
	h := newHarness(t)
	tok := h.mint(t, "acct-0001")
	var approved atomic.Int64
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := h.gw.Authorize(context.Background(), basket(fmt.Sprint(i%8+1), fmt.Sprintf("t%d", i), tok))
			if err != nil {
				t.Error(err)
				return
			}
			if res.Decision.Approved {
				approved.Add(1)
			} else if res.Decision.Reason != gateway.ReasonReplayed {
				t.Errorf("decline reason %v, want replayed", res.Decision.Reason)
			}
		}()
	}
	wg.Wait()
	if got := approved.Load(); got != 1 {
		t.Fatalf("approvals = %d, want exactly 1", got)
	}
	if got := h.central.calls.Load(); got != 1 {
		t.Fatalf("central calls = %d, want 1", got)
	}
	if n := h.auditCount(t); n != 100 {
		t.Fatalf("audit records = %d, want 100", n)
	}
}

// A POS that retries while its first call is still deciding gets the first
// call's answer, not a second decision.
func TestGateway_ConcurrentSameTransaction(t *testing.T) {
	h := newHarness(t)
	h.central.set(func(c *fakeCentral) { c.delay = 50 * time.Millisecond })
	tok := h.mint(t, "acct-0001")
	results := make([]*gateway.AuthorizeResult, 10)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := h.gw.Authorize(context.Background(), basket("1", "same", tok))
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = res
		}()
	}
	wg.Wait()
	first := 0
	for _, r := range results {
		if r == nil || !r.Decision.Approved {
			t.Fatalf("result %+v, want every call approved with one settlement", r)
		}
		if !r.Replayed {
			first++
		}
		if r.Decision.SettlementID != results[0].Decision.SettlementID {
			t.Fatalf("settlements differ: %s and %s", r.Decision.SettlementID, results[0].Decision.SettlementID)
		}
	}
	if first != 1 {
		t.Fatalf("%d calls decided afresh, want 1", first)
	}
}

func TestGateway_SurvivesRestart(t *testing.T) {
	h := newHarness(t)
	tok := h.mint(t, "acct-0001")
	first := h.authorize(t, basket("1", "t1", tok))
	h.restart(t)
	if h.gw.Keyring() == nil || h.gw.Keyring().Version != 1 {
		t.Fatalf("keyset not reloaded after restart")
	}
	again := h.authorize(t, basket("1", "t1", tok))
	if !again.Replayed || again.Decision.SettlementID != first.Decision.SettlementID {
		t.Fatalf("after restart the retry got %+v, want the stored decision", again)
	}
	res := h.authorize(t, basket("2", "t2", tok))
	wantDecline(t, res, gateway.ReasonReplayed)
}

// Close refuses new decisions, waits for the one in flight to commit, and
// gives up when its context ends first.
func TestGateway_Close(t *testing.T) {
	h := newHarness(t)
	central := gatewaytest.NewHeldCentral(1)
	h.gw.Central, h.gw.CentralTimeout = central, time.Minute
	type answer struct {
		res *gateway.AuthorizeResult
		err error
	}
	inFlight := make(chan answer, 1)
	go func() {
		res, err := h.gw.Authorize(context.Background(), basket("1", "txn-in-flight", h.mint(t, "acct-1")))
		inFlight <- answer{res, err}
	}()
	<-central.Entered

	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.gw.Close(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a decision in flight and its context ended: got %v, want context.Canceled", err)
	}
	t.Run("ErrClosed", func(t *testing.T) {
		_, err := h.gw.Authorize(context.Background(), basket("2", "txn-after-close", h.mint(t, "acct-1")))
		if got := gateway.ErrorCode(err); got != gateway.EUNAVAILABLE {
			t.Errorf("Authorize after Close: got %q (%v), want %q", got, err, gateway.EUNAVAILABLE)
		}
	})

	closed := make(chan error, 1)
	go func() { closed <- h.gw.Close(context.Background()) }()
	close(central.Release)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	a := <-inFlight
	if a.err != nil || !a.res.Decision.Approved {
		t.Fatalf("the decision in flight: got %+v, %v, want approved", a.res, a.err)
	}
	if got, err := h.store.LookupDecision(context.Background(), gateway.IdempotencyKey{Lane: "1", POSTxnID: "txn-in-flight"}); err != nil || got == nil {
		t.Errorf("the decision in flight after Close: got %v, %v, want it stored", got, err)
	}
}

func TestGateway_Reverse(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.authorize(t, basket("1", "t1", h.mint(t, "acct-0001")))
	t.Run("OK", func(t *testing.T) {
		res, err := h.gw.Reverse(ctx, &gateway.ReverseRequest{Lane: "1", POSTxnID: "t1", Reason: "returned", Caller: posLane1})
		if err != nil || res.AlreadyReversed || res.Reversal.Amount != 1200 {
			t.Fatalf("reverse = %+v, %v", res, err)
		}
		again, err := h.gw.Reverse(ctx, &gateway.ReverseRequest{Lane: "1", POSTxnID: "t1", Reason: "returned", Caller: posLane1})
		if err != nil || !again.AlreadyReversed || again.Reversal.ID != res.Reversal.ID {
			t.Fatalf("second reverse = %+v, %v; want the first reversal %s", again, err, res.Reversal.ID)
		}
		if st, _ := h.store.OutboxStats(ctx); st.Depth != 2 {
			t.Fatalf("outbox depth = %d, want 2 (capture and reversal)", st.Depth)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := h.gw.Reverse(ctx, &gateway.ReverseRequest{Lane: "1", POSTxnID: "nope", Reason: "returned", Caller: posLane1})
		if gateway.ErrorCode(err) != gateway.ENOTFOUND {
			t.Fatalf("err = %v, want ENOTFOUND", err)
		}
	})
	t.Run("ErrDeclinedSale", func(t *testing.T) {
		h.authorize(t, basket("1", "bad", "SGP1:x"))
		_, err := h.gw.Reverse(ctx, &gateway.ReverseRequest{Lane: "1", POSTxnID: "bad", Reason: "returned", Caller: posLane1})
		if gateway.ErrorCode(err) != gateway.ECONFLICT {
			t.Fatalf("err = %v, want ECONFLICT", err)
		}
	})
}

func TestForwarder_Flush(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	for i := range 5 {
		h.authorize(t, basket("1", fmt.Sprintf("t%d", i), h.mint(t, "acct-0001")))
	}
	if _, err := h.gw.Reverse(ctx, &gateway.ReverseRequest{Lane: "1", POSTxnID: "t0", Reason: "returned", Caller: posLane1}); err != nil {
		t.Fatal(err)
	}
	f := gateway.NewForwarder("store-0001", h.store, h.central)
	f.Batch = 2
	t.Run("CentralDown", func(t *testing.T) {
		h.central.set(func(c *fakeCentral) { c.down = true })
		if _, err := f.Flush(ctx); err == nil {
			t.Fatal("flush succeeded with central down")
		}
		if st, _ := h.store.OutboxStats(ctx); st.Depth != 6 {
			t.Fatalf("outbox depth = %d, want 6: nothing may leave unacknowledged", st.Depth)
		}
	})
	t.Run("PartialAndRefused", func(t *testing.T) {
		pending, _ := h.store.PendingSettlements(ctx, 10)
		h.central.set(func(c *fakeCentral) {
			c.down = false
			c.refuse = map[string]bool{pending[1].ID: true}
			c.holdBack = map[string]bool{pending[5].ID: true}
		})
		n, err := f.Flush(ctx)
		if err != nil || n != 5 {
			t.Fatalf("flush = %d, %v; want 5 acknowledged", n, err)
		}
		st, _ := h.store.OutboxStats(ctx)
		if st.Depth != 1 || st.Disputed != 1 {
			t.Fatalf("outbox = %+v, want 1 held back and 1 disputed", st)
		}
		h.central.set(func(c *fakeCentral) { c.holdBack = nil })
		if n, err := f.Flush(ctx); err != nil || n != 1 {
			t.Fatalf("second flush = %d, %v; want 1", n, err)
		}
		if st, _ := h.store.OutboxStats(ctx); st.Depth != 0 {
			t.Fatalf("outbox depth = %d, want 0", st.Depth)
		}
		// Order is kept: the reversal reaches central after its capture.
		h.central.mu.Lock()
		defer h.central.mu.Unlock()
		last := h.central.got[len(h.central.got)-1]
		if last.Kind != gateway.SettlementReversal || last.ReversesID != h.central.got[0].ID {
			t.Fatalf("last settlement = %+v, want the reversal of %s", last, h.central.got[0].ID)
		}
	})
}

func TestGateway_ApplyKeyset(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	newPub, newPriv, _ := gateway.GenerateKey()
	v2, _ := gateway.SignKeyset(h.rootKey, gateway.NewKeyset(2, h.now, h.tokenKeys[0], newPub))
	if v, changed, err := h.gw.ApplyKeyset(ctx, v2); err != nil || !changed || v != 2 {
		t.Fatalf("apply v2 = %d, %v, %v", v, changed, err)
	}
	t.Run("ErrStale", func(t *testing.T) {
		v1, _ := gateway.SignKeyset(h.rootKey, gateway.NewKeyset(1, h.now, h.tokenKeys[0]))
		if _, _, err := h.gw.ApplyKeyset(ctx, v1); gateway.ErrorCode(err) != gateway.ESTALE {
			t.Fatalf("err = %v, want ESTALE", err)
		}
	})
	t.Run("ErrNotSignedByRoot", func(t *testing.T) {
		forged, _ := gateway.SignKeyset(newPriv, gateway.NewKeyset(3, h.now, newPub))
		if _, _, err := h.gw.ApplyKeyset(ctx, forged); gateway.ErrorCode(err) != gateway.EINVALID {
			t.Fatalf("err = %v, want EINVALID", err)
		}
	})
	t.Run("NewKeyInForce", func(t *testing.T) {
		id, _ := gateway.NewTokenID()
		tok, _ := gateway.MintToken(newPriv, gateway.Claims{Issuer: "hq", Account: "a", IssuedAt: h.now, Expires: h.now.Add(time.Minute), TokenID: id, Device: "d", Assurance: 2})
		if res := h.authorize(t, basket("1", "k2", tok)); !res.Decision.Approved {
			t.Fatalf("token of the new key declined: %+v", res.Decision)
		}
	})
}
