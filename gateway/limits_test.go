package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"storegate/gateway"
	"storegate/gateway/gatewaytest"
	documentv1 "storegate/proto/storegate/document/v1"
	"storegate/storecache"
)

// TestGateway_Limits checks every kind of rule at its boundary: a sale that
// reaches the cap is approved, one unit or yen over it is declined, naming
// the rule and the limit, without asking central.
func TestGateway_Limits(t *testing.T) {
	for _, c := range []struct {
		name string
		rule *documentv1.Rule
		// sales up to the cap, all approved, each as (account, line)
		atCap []sale
		// then this one is declined
		over   sale
		reason gateway.Reason
		words  []string
	}{
		{
			name:  "QuantityPerTransaction",
			rule:  &documentv1.Rule{Id: "tobacco", Categories: []string{"tobacco"}, MaxQuantityPerTransaction: 10},
			atCap: []sale{{"acct-1", cigarettes(10)}},
			over:  sale{"acct-1", cigarettes(11)}, reason: gateway.ReasonLimitExceeded,
			words: []string{"rule tobacco: at most 10 per transaction; this sale has 11"},
		},
		{
			name:  "AmountPerTransaction",
			rule:  &documentv1.Rule{Id: "gift-cards", Categories: []string{"giftcard"}, MaxAmountPerTransaction: 10000},
			atCap: []sale{{"acct-1", giftCard(10000)}},
			over:  sale{"acct-1", giftCard(10001)}, reason: gateway.ReasonLimitExceeded,
			words: []string{"rule gift-cards: at most 10000 JPY per transaction; this sale has 10001"},
		},
		{
			name:  "QuantityPerAccount",
			rule:  &documentv1.Rule{Id: "tobacco", Categories: []string{"tobacco"}, MaxQuantityPerAccount: 20, AccountWindowSeconds: 86400},
			atCap: []sale{{"acct-1", cigarettes(10)}, {"acct-2", cigarettes(20)}, {"acct-1", cigarettes(10)}},
			over:  sale{"acct-1", cigarettes(1)}, reason: gateway.ReasonLimitExceeded,
			words: []string{"rule tobacco: 20 per account per 24h; this sale would make 21"},
		},
		{
			name:  "AmountPerAccount",
			rule:  &documentv1.Rule{Id: "gift-cards", Categories: []string{"giftcard"}, MaxAmountPerAccount: 30000, AccountWindowSeconds: 86400},
			atCap: []sale{{"acct-1", giftCard(20000)}, {"acct-1", giftCard(10000)}},
			over:  sale{"acct-1", giftCard(1000)}, reason: gateway.ReasonLimitExceeded,
			words: []string{"rule gift-cards: 30000 JPY per account per 24h; this sale would make 31000"},
		},
		{
			name:  "AmountPerStore",
			rule:  &documentv1.Rule{Id: "gift-cards", Categories: []string{"giftcard"}, MaxAmountPerStore: 100000, StoreWindowSeconds: 3600},
			atCap: []sale{{"acct-1", giftCard(50000)}, {"acct-2", giftCard(30000)}, {"acct-3", giftCard(20000)}},
			over:  sale{"acct-4", giftCard(1)}, reason: gateway.ReasonLimitExceeded,
			words: []string{"rule gift-cards: 100000 JPY per store per 1h; this sale would make 100001"},
		},
		{
			name:  "MinAssurance",
			rule:  &documentv1.Rule{Id: "gift-cards", Categories: []string{"giftcard"}, MinAssurance: 2},
			atCap: []sale{{"acct-1", giftCard(5000)}},
			over:  sale{"weak:acct-1", giftCard(5000)}, reason: gateway.ReasonAssuranceRequired,
			words: []string{"rule gift-cards: needs assurance level 2; this token has 1"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.applyPolicy(t, policyDoc(1, c.rule))
			for i, s := range c.atCap {
				wantApproved(t, h.sell(t, fmt.Sprintf("ok-%d", i), s))
			}
			calls := h.central.calls.Load()
			wantDeclineRule(t, h.sell(t, "over", c.over), c.reason, c.rule.GetId(), c.words...)
			if got := h.central.calls.Load(); got != calls {
				t.Errorf("central called for a sale the store declines: %d calls, want %d", got, calls)
			}
			// Goods under no rule still sell.
			wantApproved(t, h.sell(t, "food", sale{c.over.account, onigiri(3)}))
		})
	}
}

// sale is one basket line bought by an account; "weak:" before the account
// makes the token assurance level 1.
type sale struct {
	account string
	line    gateway.Line
}

func (h *harness) sell(tb testing.TB, txn string, s sale, more ...gateway.Line) *gateway.AuthorizeResult {
	tb.Helper()
	aal := 2
	account := s.account
	if len(account) > 5 && account[:5] == "weak:" {
		aal, account = 1, account[5:]
	}
	tok := h.mintWith(tb, account, func(c *gateway.Claims) { c.Assurance = aal })
	res, err := h.gw.Authorize(context.Background(), cart("1", txn, tok, append([]gateway.Line{s.line}, more...)...))
	if err != nil {
		tb.Fatalf("Authorize(%s): %v", txn, err)
	}
	return res
}

func TestGateway_LimitWindow(t *testing.T) {
	tobacco := &documentv1.Rule{Id: "tobacco", Categories: []string{"tobacco"}, MaxQuantityPerAccount: 20, AccountWindowSeconds: 86400}

	t.Run("Expiry", func(t *testing.T) {
		h := newHarness(t)
		h.applyPolicy(t, policyDoc(1, tobacco))
		start := h.now
		wantApproved(t, h.sell(t, "t1", sale{"acct-1", cigarettes(20)}))
		// A charge counts for the whole window, and at most one counter
		// bucket more.
		h.now = start.Add(24 * time.Hour)
		wantDeclineRule(t, h.sell(t, "t2", sale{"acct-1", cigarettes(1)}), gateway.ReasonLimitExceeded, "tobacco")
		h.now = start.Add(24*time.Hour + gateway.CounterBucket)
		wantApproved(t, h.sell(t, "t3", sale{"acct-1", cigarettes(20)}))
		wantDeclineRule(t, h.sell(t, "t4", sale{"acct-1", cigarettes(1)}), gateway.ReasonLimitExceeded, "tobacco")
	})

	t.Run("ReversalReturnsQuota", func(t *testing.T) {
		h := newHarness(t)
		h.applyPolicy(t, policyDoc(1, tobacco))
		wantApproved(t, h.sell(t, "t1", sale{"acct-1", cigarettes(15)}))
		wantDeclineRule(t, h.sell(t, "t2", sale{"acct-1", cigarettes(10)}), gateway.ReasonLimitExceeded, "tobacco", "would make 25")
		if _, err := h.gw.Reverse(context.Background(), &gateway.ReverseRequest{Lane: "1", POSTxnID: "t1", Reason: "returned", Caller: posLane1}); err != nil {
			t.Fatal(err)
		}
		wantApproved(t, h.sell(t, "t3", sale{"acct-1", cigarettes(20)}))
	})

	t.Run("OnlyApprovalsCharge", func(t *testing.T) {
		h := newHarness(t)
		h.applyPolicy(t, policyDoc(1, tobacco))
		h.central.set(func(c *fakeCentral) { c.decline = gateway.ReasonInsufficientFunds })
		wantDeclineRule(t, h.sell(t, "t1", sale{"acct-1", cigarettes(20)}), gateway.ReasonInsufficientFunds, "central.insufficient_funds")
		h.central.set(func(c *fakeCentral) { c.decline, c.down = gateway.ReasonNone, true })
		wantDeclineRule(t, h.sell(t, "t2", sale{"acct-1", cigarettes(20)}), gateway.ReasonCentralUnavailable, "central.unavailable")
		h.central.set(func(c *fakeCentral) { c.down = false })
		wantApproved(t, h.sell(t, "t3", sale{"acct-1", cigarettes(20)}))
	})

	t.Run("SurvivesRestart", func(t *testing.T) {
		h := newHarness(t)
		h.applyPolicy(t, policyDoc(1, tobacco))
		wantApproved(t, h.sell(t, "t1", sale{"acct-1", cigarettes(20)}))
		h.restart(t)
		wantDeclineRule(t, h.sell(t, "t2", sale{"acct-1", cigarettes(1)}), gateway.ReasonLimitExceeded, "tobacco")
	})

	t.Run("Prune", func(t *testing.T) {
		h := newHarness(t)
		h.applyPolicy(t, policyDoc(1, tobacco))
		wantApproved(t, h.sell(t, "t1", sale{"acct-1", cigarettes(20)}))
		h.now = h.now.Add(12 * time.Hour)
		if n, err := h.gw.PruneCounters(context.Background()); err != nil || n != 0 {
			t.Fatalf("prune inside the window: got %d, %v, want 0", n, err)
		}
		h.now = h.now.Add(12*time.Hour + 2*gateway.CounterBucket)
		if n, err := h.gw.PruneCounters(context.Background()); err != nil || n != 1 {
			t.Fatalf("prune after the window: got %d, %v, want 1", n, err)
		}
	})
}

func TestGateway_LimitMatching(t *testing.T) {
	h := newHarness(t)
	h.applyPolicy(t, policyDoc(1,
		&documentv1.Rule{Id: "cigarette-jans", SkuPrefixes: []string{"4901777", "4902444"}, MaxQuantityPerTransaction: 10},
		&documentv1.Rule{Id: "prepaid", Categories: []string{"giftcard", "prepaid"}, MaxAmountPerTransaction: 10000},
	))
	jan := func(sku string, n int64) gateway.Line {
		return gateway.Line{SKU: sku, Category: "misc", Quantity: n, UnitPrice: 500}
	}

	t.Run("BySKUPrefix", func(t *testing.T) {
		// Lines of two makers' prefixes add up under one rule, whatever
		// their category.
		wantApproved(t, h.sell(t, "sku-1", sale{"acct-1", jan("4901777000011", 6)}, jan("4902444000022", 4)))
		wantDeclineRule(t, h.sell(t, "sku-2", sale{"acct-1", jan("4901777000011", 6)}, jan("4902444000022", 5)),
			gateway.ReasonLimitExceeded, "cigarette-jans", "this sale has 11")
		// Another maker's JAN is not matched.
		wantApproved(t, h.sell(t, "sku-3", sale{"acct-1", jan("4909999000011", 30)}))
	})
	t.Run("ByCategory", func(t *testing.T) {
		card := func(cat string, yen int64) gateway.Line {
			return gateway.Line{SKU: "0000000000000", Category: cat, Quantity: 1, UnitPrice: yen}
		}
		wantApproved(t, h.sell(t, "cat-1", sale{"acct-1", card("giftcard", 6000)}, card("prepaid", 4000)))
		wantDeclineRule(t, h.sell(t, "cat-2", sale{"acct-1", card("giftcard", 6000)}, card("prepaid", 4001)),
			gateway.ReasonLimitExceeded, "prepaid", "this sale has 10001")
		// Category matching is exact.
		wantApproved(t, h.sell(t, "cat-3", sale{"acct-1", card("giftcards", 50000)}))
	})
}

// TestGateway_SplitPurchase is the attack that beat per-sale limits in
// Japan: many small sales by one account. A per-transaction cap alone lets
// every one through; the per-account window stops them at its cap.
func TestGateway_SplitPurchase(t *testing.T) {
	h := newHarness(t)
	h.applyPolicy(t, policyDoc(1, &documentv1.Rule{Id: "gift-cards", Categories: []string{"giftcard"},
		MaxAmountPerTransaction: 10000, MaxAmountPerAccount: 30000, AccountWindowSeconds: 86400}))
	var approved, spent int64
	for i := range 17 {
		res := h.sell(t, fmt.Sprintf("split-%02d", i), sale{"acct-stolen", giftCard(1900)})
		if res.Decision.Approved {
			approved++
			spent += res.Decision.Amount
			continue
		}
		wantDeclineRule(t, res, gateway.ReasonLimitExceeded, "gift-cards", "30000 JPY per account per 24h")
		// Minutes later, in another lane: still stopped.
		h.now = h.now.Add(3 * time.Minute)
	}
	if approved != 15 || spent != 28500 {
		t.Fatalf("split purchase: got %d sales approved for %d JPY, want 15 for 28500 (the cap is 30000)", approved, spent)
	}
	// Another account is not held back by the thief's sales.
	wantApproved(t, h.sell(t, "honest", sale{"acct-honest", giftCard(9000)}))
}

func TestGateway_LimitPaymentCode(t *testing.T) {
	h := newHarness(t)
	h.applyPolicy(t, policyDoc(1,
		&documentv1.Rule{Id: "tobacco", Categories: []string{"tobacco"}, MaxQuantityPerAccount: 20, AccountWindowSeconds: 86400},
		&documentv1.Rule{Id: "gift-cards", Categories: []string{"giftcard"}, MinAssurance: 2},
		&documentv1.Rule{Id: "beer", Categories: []string{"alcohol"}, MaxAmountPerStore: 5000, StoreWindowSeconds: 3600},
	))
	code := func(txn string, l gateway.Line) *gateway.AuthorizeResult {
		return h.authorize(t, cart("1", txn, "12345678901234567"+txn[len(txn)-3:], l))
	}
	wantDeclineRule(t, code("c-001", cigarettes(1)), gateway.ReasonAssuranceRequired, "tobacco", "names no account")
	wantDeclineRule(t, code("c-002", giftCard(1000)), gateway.ReasonAssuranceRequired, "gift-cards", "carries none")
	beer := gateway.Line{SKU: "4901411000017", Category: "alcohol", Quantity: 10, UnitPrice: 250}
	wantApproved(t, code("c-003", beer))
	wantApproved(t, code("c-004", beer))
	wantDeclineRule(t, code("c-005", beer), gateway.ReasonLimitExceeded, "beer", "5000 JPY per store per 1h")
	if n := h.central.calls.Load(); n != 2 {
		t.Errorf("central calls: got %d, want 2 (the two approvals)", n)
	}
}

// TestGateway_LimitConcurrentLanes: eight lanes sell gift cards at once,
// while central takes its time; the store-wide cap is never exceeded.
func TestGateway_LimitConcurrentLanes(t *testing.T) {
	h := newHarness(t)
	h.central.set(func(c *fakeCentral) { c.delay = 3 * time.Millisecond })
	const cap = 100000
	h.applyPolicy(t, policyDoc(1, &documentv1.Rule{Id: "gift-cards", Categories: []string{"giftcard"},
		MaxAmountPerStore: cap, StoreWindowSeconds: 3600}))

	var sold, declined atomic.Int64
	var wg sync.WaitGroup
	for lane := range 8 {
		wg.Go(func() {
			for i := range 6 {
				tok := h.mintWith(t, fmt.Sprintf("acct-%d-%d", lane, i), nil)
				req := cart(fmt.Sprint(lane+1), fmt.Sprintf("g-%d-%d", lane, i), tok, giftCard(7000))
				res, err := h.gw.Authorize(context.Background(), req)
				if err != nil {
					t.Errorf("Authorize: %v", err)
					return
				}
				if res.Decision.Approved {
					sold.Add(res.Decision.Amount)
				} else if res.Decision.Reason == gateway.ReasonLimitExceeded {
					declined.Add(1)
				} else {
					t.Errorf("declined for %v (%s), want approved or limit_exceeded", res.Decision.Reason, res.Decision.Message)
				}
			}
		})
	}
	wg.Wait()
	// Reservations may decline a sale early in the instant between a
	// commit and its release, never approve one late: the cap is the bound.
	if got := sold.Load(); got > cap || got < cap/2 {
		t.Fatalf("gift cards sold: %d JPY, want at most the cap %d (and no fewer than half of it)", got, cap)
	}
	sums, err := h.store.CounterSums(context.Background(), h.now, []gateway.CounterWindow{{Counter: "store/chain/gift-cards/amount", Window: time.Hour}})
	if err != nil || sums[0] != sold.Load() {
		t.Fatalf("stored counter: got %v, %v, want %d (what was approved)", sums, err, sold.Load())
	}
	if st, _ := h.store.OutboxStats(context.Background()); st.Depth != sold.Load()/7000 {
		t.Errorf("settlements queued: got %d, want %d", st.Depth, sold.Load()/7000)
	}
	t.Logf("sold %d JPY, declined %d sales", sold.Load(), declined.Load())
}

// TestGateway_LimitRecheckAtCommit: two gateways on one store file share no
// reservations, so both pre-checks pass and central approves both; the
// re-check inside the commit's transaction lets one through and declines
// the other.
func TestGateway_LimitRecheckAtCommit(t *testing.T) {
	h := newHarness(t)
	h.applyPolicy(t, policyDoc(1, &documentv1.Rule{Id: "gift-cards", Categories: []string{"giftcard"},
		MaxAmountPerStore: 100000, StoreWindowSeconds: 3600}))
	central := gatewaytest.NewHeldCentral(2)
	gws := make([]*gateway.Gateway, 2)
	for i := range gws {
		gws[i] = gateway.NewGateway("store-0001", h.store, central, h.gw.RootKey)
		gws[i].CentralTimeout, gws[i].Now = 5*time.Second, func() time.Time { return h.now }
		if err := gws[i].Open(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	results := make([]*gateway.AuthorizeResult, 2)
	var wg sync.WaitGroup
	for i, gw := range gws {
		tok := h.mintWith(t, fmt.Sprintf("acct-%d", i), nil)
		wg.Go(func() {
			res, err := gw.Authorize(context.Background(), cart(fmt.Sprint(i+1), "race", tok, giftCard(60000)))
			if err != nil {
				t.Errorf("Authorize on gateway %d: %v", i, err)
				return
			}
			results[i] = res
		})
	}
	// Both decisions are at central before either may go on to commit.
	<-central.Entered
	<-central.Entered
	close(central.Release)
	wg.Wait()
	if t.Failed() {
		return
	}
	approved := 0
	for _, r := range results {
		if r.Decision.Approved {
			approved++
		} else {
			wantDeclineRule(t, r, gateway.ReasonLimitExceeded, "gift-cards", "100000 JPY per store per 1h; this sale would make 120000")
			if r.Decision.AuthorizationID == "" || r.Decision.SettlementID != "" {
				t.Errorf("declined after central approved: got authorization %q settlement %q, want the authorization kept for HQ and no settlement",
					r.Decision.AuthorizationID, r.Decision.SettlementID)
			}
		}
	}
	if approved != 1 {
		t.Fatalf("approved: got %d, want exactly 1", approved)
	}
	if n := h.auditCount(t); n != 2 {
		t.Errorf("audit records: got %d, want 2 (the approval and the decline)", n)
	}
}

// TestGateway_LimitStoreError: a store that cannot read its counters makes
// Authorize fail rather than sell past a cap unchecked.
func TestGateway_LimitStoreError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	st := storecache.NewStore(path)
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	rootPub, rootPriv, _ := gateway.GenerateKey()
	tokPub, tokPriv, _ := gateway.GenerateKey()
	gw := gateway.NewGateway("store-0001", st, &fakeCentral{}, rootPub)
	if err := gw.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ks, _ := gateway.SignKeyset(rootPriv, gateway.NewKeyset(1, time.Now(), tokPub))
	if _, _, err := gw.ApplyKeyset(context.Background(), ks); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gw.ApplyPolicy(context.Background(), mustSign(t, rootPriv, policyDoc(1,
		&documentv1.Rule{Id: "tobacco", Categories: []string{"tobacco"}, MaxQuantityPerAccount: 20, AccountWindowSeconds: 86400}))); err != nil {
		t.Fatal(err)
	}
	st.Close(context.Background())
	id, _ := gateway.NewTokenID()
	tok, _ := gateway.MintToken(tokPriv, gateway.Claims{Issuer: "hq", Account: "acct-1", IssuedAt: time.Now(), Expires: time.Now().Add(time.Minute),
		TokenID: id, Device: "d", Assurance: 2})
	_, err := gw.Authorize(context.Background(), cart("1", "t1", tok, cigarettes(1)))
	if err == nil || !errors.Is(err, storecache.ErrClosed) {
		t.Fatalf("Authorize with the store closed: got %v, want an error wrapping ErrClosed", err)
	}
}
