package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"storegate/gateway"
)

// caps are the offline caps of these tests.
var caps = gateway.OfflineCaps{MaxAmountPerTransaction: 2000, MaxAmountPerAccount: 3000, MaxStoreExposure: 5000}

// offlineHarness is a harness whose gateway approves offline within c.
func offlineHarness(t *testing.T, c gateway.OfflineCaps) *harness {
	t.Helper()
	h := newHarness(t)
	h.gw.Offline = gateway.FixedOffline{Caps: c}
	return h
}

// mintOfl returns a token for account whose ofl claim is ofl.
func (h *harness) mintOfl(t testing.TB, account string, ofl int64) string {
	t.Helper()
	id, _ := gateway.NewTokenID()
	tok, err := gateway.MintToken(h.tokenKey, gateway.Claims{
		Issuer: "storegate-hq", Account: account, IssuedAt: h.now.Add(-10 * time.Second), Expires: h.now.Add(110 * time.Second),
		TokenID: id, Device: "phone-1", Assurance: 2, OfflineAllowance: ofl,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// sale returns a one-line basket of amount.
func offlineSale(lane, txn, token string, amount int64, category string) *gateway.AuthorizeRequest {
	return &gateway.AuthorizeRequest{
		Lane: lane, POSTxnID: txn, Currency: "JPY", Token: token, Total: amount,
		Lines: []gateway.Line{{SKU: "4901234567894", Category: category, Quantity: 1, UnitPrice: amount}},
	}
}

func wantOfflineApproval(t *testing.T, res *gateway.AuthorizeResult) {
	t.Helper()
	d := res.Decision
	if !d.Approved || d.Mode != gateway.ModeOffline || d.AuthorizationID != "" || d.SettlementID == "" {
		t.Fatalf("decision = %+v, want an offline approval with a settlement and no authorization", d)
	}
}

func wantRule(t *testing.T, res *gateway.AuthorizeResult, reason gateway.Reason, rule string) {
	t.Helper()
	wantDecline(t, res, reason)
	if res.Decision.Rule != rule || res.Decision.Mode != gateway.ModeOffline {
		t.Fatalf("decline rule %q mode %s, want %q offline", res.Decision.Rule, res.Decision.Mode, rule)
	}
}

func (h *harness) exposure(t *testing.T) int64 {
	t.Helper()
	st, err := h.gw.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Outbox.OfflineExposure
}

// forbidCategory is an OfflinePolicy that forbids one category offline, as
// a policy rule for restricted goods would.
type forbidCategory struct {
	gateway.FixedOffline
	category, rule string
}

func (p forbidCategory) AllowOffline(lines []gateway.Line) (string, bool) {
	for _, l := range lines {
		if l.Category == p.category {
			return p.rule, false
		}
	}
	return "", true
}

func TestOffline_CentralDown(t *testing.T) {
	ctx := context.Background()
	down := func(c *fakeCentral) { c.down = true }

	t.Run("ApprovedWithinCaps", func(t *testing.T) {
		h := offlineHarness(t, caps)
		h.central.set(down)
		tok := h.mint(t, "acct-a")
		res := h.authorize(t, offlineSale("1", "t1", tok, 1200, "food"))
		wantOfflineApproval(t, res)
		if !strings.Contains(res.Decision.Message, "offline") || res.Decision.Account != "acct-a" {
			t.Errorf("decision = %+v, want it to say offline and name the token's account", res.Decision)
		}
		pending, err := h.store.PendingSettlements(ctx, 10)
		if err != nil || len(pending) != 1 {
			t.Fatalf("pending = %v, %v; want the capture", pending, err)
		}
		p := pending[0]
		if p.ID != res.Decision.SettlementID || p.Mode != gateway.ModeOffline || p.AuthorizationID != "" || len(p.TokenID) != gateway.TokenIDSize || p.Account != "acct-a" {
			t.Errorf("settlement = %+v, want an offline capture carrying the token id", p)
		}
		if got := h.exposure(t); got != 1200 {
			t.Errorf("exposure = %d, want 1200", got)
		}
		// The POS's retry gets the same answer, not a second charge.
		again := h.authorize(t, offlineSale("1", "t1", tok, 1200, "food"))
		if !again.Replayed || again.Decision.SettlementID != res.Decision.SettlementID {
			t.Errorf("retry = %+v, want the stored offline approval", again)
		}
	})
	t.Run("ErrPerTransaction", func(t *testing.T) {
		h := offlineHarness(t, caps)
		h.central.set(down)
		wantRule(t, h.authorize(t, offlineSale("1", "t1", h.mint(t, "acct-a"), 2001, "food")), gateway.ReasonOfflineLimit, "offline.max_amount_per_transaction")
	})
	t.Run("ErrPerAccount", func(t *testing.T) {
		h := offlineHarness(t, caps)
		h.central.set(down)
		wantOfflineApproval(t, h.authorize(t, offlineSale("1", "t1", h.mint(t, "acct-b"), 2000, "food")))
		wantOfflineApproval(t, h.authorize(t, offlineSale("2", "t2", h.mint(t, "acct-c"), 2000, "food")))
		wantRule(t, h.authorize(t, offlineSale("3", "t3", h.mint(t, "acct-b"), 1001, "food")), gateway.ReasonOfflineLimit, "offline.max_amount_per_account")
		wantOfflineApproval(t, h.authorize(t, offlineSale("3", "t4", h.mint(t, "acct-b"), 1000, "food")))
	})
	t.Run("ErrStoreExposure", func(t *testing.T) {
		h := offlineHarness(t, caps)
		h.central.set(down)
		for i, acct := range []string{"acct-a", "acct-b"} {
			wantOfflineApproval(t, h.authorize(t, offlineSale("1", fmt.Sprint("t", i), h.mint(t, acct), 2000, "food")))
		}
		res := h.authorize(t, offlineSale("1", "t9", h.mint(t, "acct-c"), 1001, "food"))
		wantRule(t, res, gateway.ReasonOfflineLimit, "offline.max_store_exposure")
		if got := h.exposure(t); got != 4000 {
			t.Errorf("exposure = %d, want 4000: a decline adds nothing", got)
		}
		wantOfflineApproval(t, h.authorize(t, offlineSale("1", "t10", h.mint(t, "acct-c"), 1000, "food")))
		if got := h.exposure(t); got != caps.MaxStoreExposure {
			t.Errorf("exposure = %d, want the cap %d", got, caps.MaxStoreExposure)
		}
	})
	t.Run("ErrOverTokenAllowance", func(t *testing.T) {
		h := offlineHarness(t, caps)
		h.central.set(down)
		wantRule(t, h.authorize(t, offlineSale("1", "t1", h.mintOfl(t, "acct-a", 1000), 1200, "food")), gateway.ReasonOfflineLimit, "offline.token_allowance")
		wantOfflineApproval(t, h.authorize(t, offlineSale("1", "t2", h.mintOfl(t, "acct-a", 1000), 1000, "food")))
	})
	t.Run("ErrTokenAllowsNoOffline", func(t *testing.T) {
		h := offlineHarness(t, caps)
		h.central.set(down)
		wantRule(t, h.authorize(t, offlineSale("1", "t1", h.mintOfl(t, "acct-a", 0), 100, "food")), gateway.ReasonOfflineNotAllowed, "offline.token")
	})
	t.Run("ErrNumericCode", func(t *testing.T) {
		h := offlineHarness(t, caps)
		h.central.set(down)
		res := h.authorize(t, offlineSale("1", "c1", "12345678901234567890", 100, "food"))
		wantDecline(t, res, gateway.ReasonOnlineOnlyCode)
		if got := h.exposure(t); got != 0 {
			t.Errorf("exposure = %d after a code, want 0", got)
		}
	})
	t.Run("ErrPolicyForbidsGoods", func(t *testing.T) {
		h := newHarness(t)
		h.gw.Offline = forbidCategory{FixedOffline: gateway.FixedOffline{Caps: caps}, category: "tobacco", rule: "tobacco-online-only"}
		h.central.set(down)
		wantRule(t, h.authorize(t, offlineSale("1", "t1", h.mint(t, "acct-a"), 500, "tobacco")), gateway.ReasonOfflineNotAllowed, "tobacco-online-only")
		wantOfflineApproval(t, h.authorize(t, offlineSale("1", "t2", h.mint(t, "acct-a"), 500, "food")))
	})
	t.Run("OfflineOff", func(t *testing.T) {
		h := offlineHarness(t, gateway.OfflineCaps{})
		h.central.set(down)
		wantRule(t, h.authorize(t, offlineSale("1", "t1", h.mint(t, "acct-a"), 100, "food")), gateway.ReasonCentralUnavailable, "central.unavailable")
	})
	t.Run("CentralAnswersOnline", func(t *testing.T) {
		// With central up, the caps play no part: a sale over them is
		// central's to decide.
		h := offlineHarness(t, caps)
		res := h.authorize(t, offlineSale("1", "t1", h.mint(t, "acct-a"), 9000, "food"))
		if !res.Decision.Approved || res.Decision.Mode != gateway.ModeOnline {
			t.Fatalf("decision = %+v, want an online approval", res.Decision)
		}
		if got := h.exposure(t); got != 0 {
			t.Errorf("exposure = %d after an online approval, want 0", got)
		}
	})
	t.Run("CentralDeclinesNotOverridden", func(t *testing.T) {
		h := offlineHarness(t, caps)
		h.central.set(func(c *fakeCentral) { c.decline = gateway.ReasonInsufficientFunds })
		wantDecline(t, h.authorize(t, offlineSale("1", "t1", h.mint(t, "acct-a"), 100, "food")), gateway.ReasonInsufficientFunds)
	})
}

func TestOffline_CentralSlowerThanDeadline(t *testing.T) {
	h := offlineHarness(t, caps)
	h.central.set(func(c *fakeCentral) { c.delay = 5 * time.Second })
	start := time.Now()
	res := h.authorize(t, offlineSale("1", "t1", h.mint(t, "acct-a"), 1200, "food"))
	wantOfflineApproval(t, res)
	if !strings.Contains(res.Decision.Message, "did not answer within 200ms") {
		t.Errorf("message %q, want it to name the deadline", res.Decision.Message)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("decision took %s, want about the 200ms deadline", took)
	}
}

// The breaker opens after three failures: the next customers are decided
// offline at once, without central being asked; after the cool-down one sale
// probes, and central's answer brings the gateway back online.
func TestGateway_BreakerOpensAndCloses(t *testing.T) {
	ctx := context.Background()
	h := offlineHarness(t, caps)
	clock := h.now
	h.gw.Now = func() time.Time { return clock }
	h.gw.Breaker.Now = h.gw.Now
	h.central.set(func(c *fakeCentral) { c.delay = 5 * time.Second })

	for i := range 3 {
		wantOfflineApproval(t, h.authorize(t, offlineSale("1", fmt.Sprint("slow-", i), h.mint(t, "acct-a"), 100, "food")))
	}
	st, _ := h.gw.Status(ctx)
	if st.Breaker.State != gateway.BreakerOpen || st.Breaker.Opened != 1 {
		t.Fatalf("breaker = %+v after 3 timeouts, want open, opened once", st.Breaker)
	}

	t.Run("OpenDecidesAtOnce", func(t *testing.T) {
		start := time.Now()
		res := h.authorize(t, offlineSale("2", "open-1", h.mint(t, "acct-b"), 100, "food"))
		wantOfflineApproval(t, res)
		if took := time.Since(start); took >= h.gw.CentralTimeout {
			t.Errorf("decision took %s with the breaker open, want no wait for the %s deadline", took, h.gw.CentralTimeout)
		}
		if got := h.central.calls.Load(); got != 3 {
			t.Errorf("central calls = %d, want 3: an open breaker asks no one", got)
		}
		wantDecline(t, h.authorize(t, offlineSale("2", "code-1", "12345678901234567890", 100, "food")), gateway.ReasonOnlineOnlyCode)
	})
	t.Run("ProbeFailsStaysOffline", func(t *testing.T) {
		clock = clock.Add(gateway.DefaultBreakerCooldown)
		wantOfflineApproval(t, h.authorize(t, offlineSale("3", "probe-1", h.mint(t, "acct-c"), 100, "food")))
		if got := h.central.calls.Load(); got != 4 {
			t.Errorf("central calls = %d, want 4: one probe", got)
		}
		if st, _ := h.gw.Status(ctx); st.Breaker.State != gateway.BreakerOpen || st.Breaker.Opened != 2 {
			t.Errorf("breaker = %+v after a failed probe, want open again", st.Breaker)
		}
	})
	t.Run("ProbeSucceedsCloses", func(t *testing.T) {
		h.central.set(func(c *fakeCentral) { c.delay = 0 })
		clock = clock.Add(gateway.DefaultBreakerCooldown - time.Second)
		wantOfflineApproval(t, h.authorize(t, offlineSale("3", "early", h.mint(t, "acct-c"), 100, "food")))
		clock = clock.Add(time.Second)
		res := h.authorize(t, offlineSale("3", "probe-2", h.mint(t, "acct-c"), 100, "food"))
		if !res.Decision.Approved || res.Decision.Mode != gateway.ModeOnline {
			t.Fatalf("probe decision = %+v, want online", res.Decision)
		}
		st, _ := h.gw.Status(ctx)
		if st.Breaker.State != gateway.BreakerClosed || st.Breaker.Closed != 1 || !st.Breaker.Since.Equal(clock) {
			t.Errorf("breaker = %+v, want closed since now", st.Breaker)
		}
		res = h.authorize(t, offlineSale("4", "after", h.mint(t, "acct-d"), 100, "food"))
		if res.Decision.Mode != gateway.ModeOnline {
			t.Errorf("decision after closing = %+v, want online", res.Decision)
		}
	})
}

// Status tells the three situations apart: no call yet, central reached
// (the breaker closed, whoever reached it), and central unreachable.
func TestGateway_StatusCentral(t *testing.T) {
	ctx := context.Background()
	h := offlineHarness(t, caps)
	st, _ := h.gw.Status(ctx)
	if st.CentralCalled || st.CentralReachable || !st.LastCentralContact.IsZero() || st.Breaker.State != gateway.BreakerClosed {
		t.Fatalf("before any call: %+v, want not called, not reachable, no contact, breaker closed", st)
	}

	h.central.set(func(c *fakeCentral) { c.down = true })
	for i := range gateway.DefaultBreakerFailures {
		h.authorize(t, offlineSale("1", fmt.Sprint("down-", i), h.mint(t, "acct-a"), 100, "food"))
	}
	st, _ = h.gw.Status(ctx)
	if !st.CentralCalled || st.CentralReachable || !st.LastCentralContact.IsZero() || st.Breaker.State != gateway.BreakerOpen {
		t.Fatalf("central down: %+v, want called, unreachable, no contact, breaker open", st)
	}

	// HQ is back and the forwarder's batch got through: before any sale
	// probes, status says online, reachable, with the contact's time.
	h.central.set(func(c *fakeCentral) { c.down = false })
	h.gw.NoteCentral(true)
	st, _ = h.gw.Status(ctx)
	if !st.CentralReachable || !st.LastCentralContact.Equal(h.now) || st.Breaker.State != gateway.BreakerClosed {
		t.Fatalf("after the forwarder reached HQ: %+v, want reachable, contact now, breaker closed", st)
	}
	if got := h.central.calls.Load(); got != int64(gateway.DefaultBreakerFailures) {
		t.Errorf("central Authorize calls = %d, want %d: no sale probed", got, gateway.DefaultBreakerFailures)
	}
	res := h.authorize(t, offlineSale("1", "back", h.mint(t, "acct-a"), 100, "food"))
	if res.Decision.Mode != gateway.ModeOnline {
		t.Errorf("next sale: %+v, want decided online", res.Decision)
	}
}

func TestBreaker(t *testing.T) {
	newBreaker := func() (*gateway.Breaker, *time.Time) {
		now := time.Unix(1794000000, 0)
		return &gateway.Breaker{Failures: 3, Cooldown: 5 * time.Second, Now: func() time.Time { return now }}, &now
	}
	allow := func(t *testing.T, b *gateway.Breaker) func(bool) {
		t.Helper()
		done, ok := b.Allow()
		if !ok {
			t.Fatalf("Allow = false in state %s, want true", b.Status().State)
		}
		return done
	}
	refuse := func(t *testing.T, b *gateway.Breaker) {
		t.Helper()
		if _, ok := b.Allow(); ok {
			t.Fatalf("Allow = true in state %s, want false", b.Status().State)
		}
	}
	wantState := func(t *testing.T, b *gateway.Breaker, want gateway.BreakerState) {
		t.Helper()
		if got := b.Status().State; got != want {
			t.Fatalf("state = %s, want %s", got, want)
		}
	}

	t.Run("SuccessResetsTheCount", func(t *testing.T) {
		b, _ := newBreaker()
		allow(t, b)(false)
		allow(t, b)(false)
		allow(t, b)(true)
		allow(t, b)(false)
		allow(t, b)(false)
		wantState(t, b, gateway.BreakerClosed)
		allow(t, b)(false)
		wantState(t, b, gateway.BreakerOpen)
	})
	t.Run("OpenThenProbe", func(t *testing.T) {
		b, now := newBreaker()
		for range 3 {
			allow(t, b)(false)
		}
		wantState(t, b, gateway.BreakerOpen)
		*now = now.Add(4 * time.Second)
		refuse(t, b)
		*now = now.Add(time.Second)
		probe := allow(t, b)
		wantState(t, b, gateway.BreakerHalfOpen)
		refuse(t, b) // one probe at a time
		probe(false)
		wantState(t, b, gateway.BreakerOpen)
		refuse(t, b)
		*now = now.Add(5 * time.Second)
		allow(t, b)(true)
		wantState(t, b, gateway.BreakerClosed)
		if st := b.Status(); st.Opened != 2 || st.Closed != 1 || !st.Since.Equal(*now) {
			t.Errorf("status = %+v, want opened 2, closed 1, since now", st)
		}
	})
	t.Run("StaleReportsIgnored", func(t *testing.T) {
		b, now := newBreaker()
		late := allow(t, b) // in flight while the breaker opens
		for range 3 {
			allow(t, b)(false)
		}
		late(true)
		wantState(t, b, gateway.BreakerOpen)
		*now = now.Add(5 * time.Second)
		probe := allow(t, b)
		late(false)
		wantState(t, b, gateway.BreakerHalfOpen)
		probe(true)
		wantState(t, b, gateway.BreakerClosed)
	})
	t.Run("LostProbeReplaced", func(t *testing.T) {
		b, now := newBreaker()
		for range 3 {
			allow(t, b)(false)
		}
		*now = now.Add(5 * time.Second)
		allow(t, b) // never reports
		*now = now.Add(4 * time.Second)
		refuse(t, b)
		*now = now.Add(time.Second)
		allow(t, b)(true)
		wantState(t, b, gateway.BreakerClosed)
	})
	t.Run("ReachedClosesOnProbation", func(t *testing.T) {
		// Another call reaching central (the forwarder's, the policy
		// stream's) closes an open breaker at once; the first sale that
		// fails opens it again, and Reached cannot close it again before
		// the cool-down: a central that takes settlements but answers no
		// sale costs one customer's wait per cool-down.
		b, now := newBreaker()
		for range 3 {
			allow(t, b)(false)
		}
		wantState(t, b, gateway.BreakerOpen)
		b.Reached()
		wantState(t, b, gateway.BreakerClosed)
		if st := b.Status(); st.Closed != 1 || !st.Since.Equal(*now) {
			t.Errorf("status = %+v, want closed once, since now", st)
		}
		allow(t, b)(false)
		wantState(t, b, gateway.BreakerOpen)
		*now = now.Add(4 * time.Second)
		b.Reached()
		wantState(t, b, gateway.BreakerOpen)
		*now = now.Add(time.Second)
		b.Reached()
		wantState(t, b, gateway.BreakerClosed)
		allow(t, b)(true)
		allow(t, b)(false)
		wantState(t, b, gateway.BreakerClosed) // off probation: three failures again
	})
	t.Run("ReachedWhileProbing", func(t *testing.T) {
		b, now := newBreaker()
		for range 3 {
			allow(t, b)(false)
		}
		*now = now.Add(5 * time.Second)
		probe := allow(t, b)
		wantState(t, b, gateway.BreakerHalfOpen)
		b.Reached()
		wantState(t, b, gateway.BreakerClosed)
		probe(false) // from before the change: ignored
		wantState(t, b, gateway.BreakerClosed)
		b.Reached() // closed: nothing to do
		if st := b.Status(); st.Closed != 1 {
			t.Errorf("closed %d times, want 1", st.Closed)
		}
	})
	t.Run("Defaults", func(t *testing.T) {
		var b gateway.Breaker
		for range gateway.DefaultBreakerFailures - 1 {
			done, _ := b.Allow()
			done(false)
		}
		wantState(t, &b, gateway.BreakerClosed)
		done, _ := b.Allow()
		done(false)
		wantState(t, &b, gateway.BreakerOpen)
	})
}

// authDown is a central whose Authorize fails while SubmitSettlements works:
// the store cannot get answers in time, but the forwarder gets through.
type authDown struct{ *fakeCentral }

func (authDown) Authorize(context.Context, *gateway.CentralRequest) (*gateway.CentralResult, error) {
	return nil, errors.New("connection refused")
}

// Eight lanes decide offline at once, over ten accounts, while the forwarder
// settles and releases exposure: neither the store's exposure nor any
// account's offline total ever exceeds its cap.
func TestOffline_ConcurrentLanesNeverExceedCaps(t *testing.T) {
	ctx := context.Background()
	c := gateway.OfflineCaps{MaxAmountPerTransaction: 1000, MaxAmountPerAccount: 2000, MaxStoreExposure: 6000}
	h := offlineHarness(t, c)
	h.gw.Central = authDown{h.central}
	const lanes, perLane, accounts = 8, 40, 10
	tokens := make([][]string, lanes)
	for l := range tokens {
		for range 2 * perLane {
			tokens[l] = append(tokens[l], h.mint(t, fmt.Sprintf("acct-%d", rand.IntN(accounts))))
		}
	}

	// sample watches the exposure until stop, failing on any sample over
	// the cap.
	sample := func(stop <-chan struct{}) *sync.WaitGroup {
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				st, err := h.gw.Status(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if st.Outbox.OfflineExposure > c.MaxStoreExposure {
					t.Errorf("exposure %d exceeds the cap %d", st.Outbox.OfflineExposure, c.MaxStoreExposure)
				}
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Microsecond):
				}
			}
		})
		return &wg
	}
	// run has every lane decide perLane sales, and returns the offline
	// approvals by account and the offline_limit declines.
	run := func(round int) (map[string]int64, int64) {
		var (
			mu       sync.Mutex
			approved = map[string]int64{}
			limited  atomic.Int64
			wg       sync.WaitGroup
		)
		for l := range lanes {
			wg.Go(func() {
				for i := range perLane {
					amount := int64(100 + rand.IntN(10)*100)
					res, err := h.gw.Authorize(ctx, offlineSale(fmt.Sprint(l+1), fmt.Sprintf("r%d-%d", round, i), tokens[l][round*perLane+i], amount, "food"))
					if err != nil {
						t.Error(err)
						return
					}
					switch d := res.Decision; {
					case d.Approved && d.Mode == gateway.ModeOffline:
						mu.Lock()
						approved[d.Account] += d.Amount
						mu.Unlock()
					case d.Reason == gateway.ReasonOfflineLimit:
						limited.Add(1)
					default:
						t.Errorf("decision %+v, want an offline approval or an offline_limit decline", d)
					}
				}
			})
		}
		wg.Wait()
		return approved, limited.Load()
	}

	t.Run("NoSettlements", func(t *testing.T) {
		stop := make(chan struct{})
		sampler := sample(stop)
		approved, limited := run(0)
		close(stop)
		sampler.Wait()
		var total int64
		for acct, n := range approved {
			total += n
			if n > c.MaxAmountPerAccount {
				t.Errorf("%s approved %d offline, over the cap %d", acct, n, c.MaxAmountPerAccount)
			}
			if got, _ := h.store.OfflineTotal(ctx, acct); got != n {
				t.Errorf("%s offline total %d, want the %d approved", acct, got, n)
			}
		}
		if total > c.MaxStoreExposure || total != h.exposure(t) {
			t.Errorf("approved %d offline, exposure %d; want equal and at most %d", total, h.exposure(t), c.MaxStoreExposure)
		}
		if limited == 0 || total < c.MaxStoreExposure-c.MaxAmountPerTransaction {
			t.Errorf("approved %d with %d declines: the test did not reach the caps", total, limited)
		}
	})
	t.Run("WhileSettling", func(t *testing.T) {
		fwd := gateway.NewForwarder("store-0001", h.store, h.central)
		fwd.Batch = 7
		stop := make(chan struct{})
		sampler := sample(stop)
		var settler sync.WaitGroup
		var settled atomic.Int64
		settler.Go(func() {
			for {
				n, err := fwd.Flush(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				settled.Add(int64(n))
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
		})
		_, limited := run(1)
		close(stop)
		sampler.Wait()
		settler.Wait()
		if settled.Load() == 0 {
			t.Errorf("nothing settled while the lanes decided (%d declined)", limited)
		}
		if _, err := fwd.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got := h.exposure(t); got != 0 {
			t.Errorf("exposure %d after everything settled, want 0", got)
		}
	})
}

// refusingCentral answers every authorization with an EINVALID error: central
// is up and says the request is malformed.
type refusingCentral struct{ *fakeCentral }

func (c refusingCentral) Authorize(context.Context, *gateway.CentralRequest) (*gateway.CentralResult, error) {
	c.calls.Add(1)
	return nil, gateway.Errorf(gateway.EINVALID, "central refused the request: lines: bad")
}

// Central answering that a request is malformed is an answer: the sale is
// declined, never approved offline, and the breaker stays closed.
func TestGateway_CentralRefusesRequest(t *testing.T) {
	h := offlineHarness(t, caps)
	h.gw.Central = refusingCentral{h.central}
	for i := range 5 {
		res := h.authorize(t, offlineSale("1", fmt.Sprint("t", i), h.mint(t, "acct-a"), 100, "food"))
		wantDecline(t, res, gateway.ReasonCentralDeclined)
		if res.Decision.Rule != "central.refused" || res.Decision.Mode != gateway.ModeOnline {
			t.Fatalf("decision = %+v, want central.refused, online", res.Decision)
		}
	}
	if st, _ := h.gw.Status(context.Background()); st.Breaker.State != gateway.BreakerClosed {
		t.Errorf("breaker = %+v, want closed: central answered", st.Breaker)
	}
	if got := h.central.calls.Load(); got != 5 {
		t.Errorf("central calls = %d, want 5", got)
	}
}
