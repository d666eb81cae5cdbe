package gateway_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
)

const (
	modeNormal     = documentv1.StoreMode_STORE_MODE_NORMAL
	modeOnlineOnly = documentv1.StoreMode_STORE_MODE_ONLINE_ONLY
	modeSuspended  = documentv1.StoreMode_STORE_MODE_SUSPENDED
)

// policyDoc returns a chain-wide policy at version with the given rules.
func policyDoc(version uint64, rules ...*documentv1.Rule) *documentv1.Policy {
	return &documentv1.Policy{Version: version, IssuedAt: 1794000000, Mode: modeNormal, Rules: rules}
}

// mustSign signs a policy message, failing the test when it is invalid.
func mustSign(tb testing.TB, priv ed25519.PrivateKey, m *documentv1.Policy) []byte {
	tb.Helper()
	raw, err := gateway.SignPolicy(priv, m)
	if err != nil {
		tb.Fatalf("SignPolicy: %v", err)
	}
	return raw
}

// applyPolicy signs m with HQ's root key and applies it.
func (h *harness) applyPolicy(tb testing.TB, m *documentv1.Policy) {
	tb.Helper()
	if _, changed, err := h.gw.ApplyPolicy(context.Background(), mustSign(tb, h.rootKey, m)); err != nil || !changed {
		tb.Fatalf("ApplyPolicy(%s v%d): got changed %v, %v; want applied", m.GetStoreId(), m.GetVersion(), changed, err)
	}
}

// applyKeyset signs a keyset with the root key and applies it.
func (h *harness) applyKeyset(tb testing.TB, ks *documentv1.Keyset) {
	tb.Helper()
	raw, err := gateway.SignKeyset(h.rootKey, ks)
	if err != nil {
		tb.Fatal(err)
	}
	if _, _, err := h.gw.ApplyKeyset(context.Background(), raw); err != nil {
		tb.Fatalf("ApplyKeyset(v%d): %v", ks.GetVersion(), err)
	}
}

// mintWith mints a token for account at the harness's time, changed by
// edit.
func (h *harness) mintWith(tb testing.TB, account string, edit func(c *gateway.Claims)) string {
	tb.Helper()
	id, _ := gateway.NewTokenID()
	c := gateway.Claims{
		Issuer: "storegate-hq", Account: account, IssuedAt: h.now.Add(-10 * time.Second), Expires: h.now.Add(110 * time.Second),
		TokenID: id, Device: "phone-1", Assurance: 2,
	}
	if edit != nil {
		edit(&c)
	}
	tok, err := gateway.MintToken(h.tokenKey, c)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// cart is a basket of lines paid with token; the total is their sum.
func cart(lane, txn, token string, lines ...gateway.Line) *gateway.AuthorizeRequest {
	req := &gateway.AuthorizeRequest{Lane: lane, POSTxnID: txn, Currency: "JPY", Token: token, Lines: lines}
	for _, l := range lines {
		req.Total += l.Quantity * l.UnitPrice
	}
	return req
}

// Lines of a convenience store's basket.
func cigarettes(packs int64) gateway.Line {
	return gateway.Line{SKU: "4901777300001", Category: "tobacco", Quantity: packs, UnitPrice: 600}
}

func giftCard(yen int64) gateway.Line {
	return gateway.Line{SKU: "9784000000001", Category: "giftcard", Quantity: 1, UnitPrice: yen}
}

func onigiri(n int64) gateway.Line {
	return gateway.Line{SKU: "4901234567894", Category: "food", Quantity: n, UnitPrice: 150}
}

func wantApproved(tb testing.TB, res *gateway.AuthorizeResult) {
	tb.Helper()
	if !res.Decision.Approved {
		tb.Fatalf("decision: declined %v rule %q (%s), want approved", res.Decision.Reason, res.Decision.Rule, res.Decision.Message)
	}
}

// wantDeclineRule checks the reason, the rule and words of the message.
func wantDeclineRule(tb testing.TB, res *gateway.AuthorizeResult, reason gateway.Reason, rule string, words ...string) {
	tb.Helper()
	d := res.Decision
	if d.Approved || d.Reason != reason || d.Rule != rule {
		tb.Fatalf("decision: approved %v reason %v rule %q (%s), want declined %v by rule %q", d.Approved, d.Reason, d.Rule, d.Message, reason, rule)
	}
	for _, w := range words {
		if !strings.Contains(d.Message, w) {
			tb.Errorf("message %q: want it to contain %q", d.Message, w)
		}
	}
}

func TestValidatePolicy(t *testing.T) {
	valid := func() *documentv1.Policy {
		return policyDoc(1, &documentv1.Rule{Id: "tobacco", Categories: []string{"tobacco"}, MaxQuantityPerAccount: 20, AccountWindowSeconds: 86400})
	}
	if err := gateway.ValidatePolicy(valid()); err != nil {
		t.Fatalf("a valid policy: %v", err)
	}
	for name, c := range map[string]struct {
		edit func(p *documentv1.Policy)
		want string
	}{
		"NegativeCap":     {func(p *documentv1.Policy) { p.Rules[0].MaxAmountPerAccount = -1 }, "policy: rules[0].max_amount_per_account: negative"},
		"UnknownMode":     {func(p *documentv1.Policy) { p.Mode = 7 }, "policy: mode: unknown value 7"},
		"NoMode":          {func(p *documentv1.Policy) { p.Mode = 0 }, "policy: mode: required"},
		"NoVersion":       {func(p *documentv1.Policy) { p.Version = 0 }, "policy: version: must be at least 1"},
		"WindowNoCap":     {func(p *documentv1.Policy) { p.Rules[0].MaxQuantityPerAccount = 0 }, "policy: rules[0].account_window: set without a per-account cap"},
		"CapNoWindow":     {func(p *documentv1.Policy) { p.Rules[0].AccountWindowSeconds = 0 }, "policy: rules[0].account_window: required"},
		"StoreCapNoWin":   {func(p *documentv1.Policy) { p.Rules[0].MaxAmountPerStore = 100000 }, "policy: rules[0].store_window: required"},
		"StoreWinNoCap":   {func(p *documentv1.Policy) { p.Rules[0].StoreWindowSeconds = 3600 }, "policy: rules[0].store_window: set without max_amount_per_store"},
		"WindowTooLong":   {func(p *documentv1.Policy) { p.Rules[0].AccountWindowSeconds = 40 * 86400 }, "policy: rules[0].account_window: 3456000s is over the longest window"},
		"WindowTooShort":  {func(p *documentv1.Policy) { p.Rules[0].AccountWindowSeconds = 30 }, "policy: rules[0].account_window: 30s is shorter than a counter bucket"},
		"MatchesNothing":  {func(p *documentv1.Policy) { p.Rules[0].Categories = nil }, "policy: rules[0]: matches nothing"},
		"EmptyCategory":   {func(p *documentv1.Policy) { p.Rules[0].Categories = []string{""} }, "policy: rules[0].categories[0]: want 1 to 64 characters"},
		"EmptyPrefix":     {func(p *documentv1.Policy) { p.Rules[0].SkuPrefixes = []string{""} }, "policy: rules[0].sku_prefixes[0]"},
		"BadAssurance":    {func(p *documentv1.Policy) { p.Rules[0].MinAssurance = 3 }, "policy: rules[0].min_assurance: 3 is not 0, 1 or 2"},
		"BadRuleID":       {func(p *documentv1.Policy) { p.Rules[0].Id = "gift cards" }, "policy: rules[0].id: want 1-64 characters"},
		"BadStoreID":      {func(p *documentv1.Policy) { p.StoreId = "store 1" }, "policy: store_id: want empty (every store)"},
		"LongLifetime":    {func(p *documentv1.Policy) { p.MaxTokenLifetimeSeconds = 301 }, "policy: max_token_lifetime: 301s is over the 5m0s"},
		"NegativeOffline": {func(p *documentv1.Policy) { p.Offline = &documentv1.OfflineCaps{MaxStoreExposure: -5} }, "policy: offline.max_store_exposure: negative"},
		"HugeAmount":      {func(p *documentv1.Policy) { p.Rules[0].MaxAmountPerTransaction = gateway.MaxPolicyAmount + 1 }, "policy: rules[0].max_amount_per_transaction: 4503599627370497 is over"},
		"DuplicateIDs": {func(p *documentv1.Policy) {
			p.Rules = append(p.Rules, &documentv1.Rule{Id: "tobacco", Categories: []string{"cigars"}, MaxQuantityPerTransaction: 5})
		}, `policy: rules[1].id: "tobacco" is also the id of rules[0]`},
		"NoLimit": {func(p *documentv1.Policy) {
			p.Rules = append(p.Rules, &documentv1.Rule{Id: "noop", Categories: []string{"x"}, OfflineAllowed: true})
		}, "policy: rules[1]: sets no limit"},
	} {
		t.Run(name, func(t *testing.T) {
			p := valid()
			c.edit(p)
			err := gateway.ValidatePolicy(p)
			if gateway.ErrorCode(err) != gateway.EINVALID || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want EINVALID containing %q", err, c.want)
			}
			if _, err := gateway.SignPolicy(ed25519.NewKeyFromSeed(make([]byte, 32)), p); err == nil {
				t.Error("SignPolicy signed an invalid policy")
			}
		})
	}
	t.Run("EveryProblem", func(t *testing.T) {
		p := valid()
		p.Mode, p.Rules[0].MaxAmountPerAccount = 9, -1
		err := gateway.ValidatePolicy(p)
		for _, want := range []string{"mode: unknown value 9", "rules[0].max_amount_per_account: negative"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want it to list %q", err, want)
			}
		}
	})
}

func TestGateway_ApplyPolicy(t *testing.T) {
	ctx := context.Background()
	tobacco := &documentv1.Rule{Id: "tobacco", Categories: []string{"tobacco"}, MaxQuantityPerTransaction: 10}

	t.Run("OK", func(t *testing.T) {
		h := newHarness(t)
		h.applyPolicy(t, policyDoc(3, tobacco))
		if p := h.gw.Policy().Chain; p == nil || p.Version != 3 || len(p.Rules) != 1 || p.Rules[0].ID != "tobacco" {
			t.Fatalf("policy in force: got %+v, want v3 with rule tobacco", p)
		}
		if raw, v, _ := h.store.LoadDocument(ctx, gateway.DocumentPolicy); v != 3 || raw == nil {
			t.Errorf("stored policy: got v%d, want v3", v)
		}
		// The same document again changes nothing.
		if v, changed, err := h.gw.ApplyPolicy(ctx, mustSign(t, h.rootKey, policyDoc(3, tobacco))); err != nil || changed || v != 3 {
			t.Errorf("the held version again: got v%d changed %v, %v; want v3 unchanged", v, changed, err)
		}
	})

	t.Run("ErrOlderVersion", func(t *testing.T) {
		h := newHarness(t)
		h.applyPolicy(t, policyDoc(5, tobacco))
		loose := policyDoc(4)
		v, changed, err := h.gw.ApplyPolicy(ctx, mustSign(t, h.rootKey, loose))
		if gateway.ErrorCode(err) != gateway.ESTALE || changed || v != 5 {
			t.Fatalf("older policy: got v%d changed %v, %v; want ESTALE holding v5", v, changed, err)
		}
		if p := h.gw.Policy().Chain; p.Version != 5 || len(p.Rules) != 1 {
			t.Errorf("policy in force: got v%d, want v5 unchanged", p.Version)
		}
		wantDeclineRule(t, h.authorize(t, cart("1", "t1", h.mint(t, "acct-1"), cigarettes(11))), gateway.ReasonLimitExceeded, "tobacco")
	})

	t.Run("ErrTampered", func(t *testing.T) {
		h := newHarness(t)
		m := policyDoc(2, tobacco)
		raw := mustSign(t, h.rootKey, m)
		payload, _ := proto.Marshal(m)
		at, cap := bytes.Index(raw, payload), bytes.Index(payload, []byte{0x20, 0x0a})
		if at < 0 || cap < 0 {
			t.Fatal("cap not found in the signed policy")
		}
		// Raise the cap inside the signed payload, from 10 to 99.
		tampered := append([]byte(nil), raw...)
		tampered[at+cap+1] = 99
		_, _, err := h.gw.ApplyPolicy(ctx, tampered)
		if gateway.ErrorCode(err) != gateway.EINVALID || !strings.Contains(err.Error(), "signature does not verify") {
			t.Fatalf("tampered policy: got %v, want EINVALID, signature does not verify", err)
		}
		if h.gw.Policy().Chain != nil {
			t.Error("a tampered policy is in force")
		}
	})

	t.Run("ErrUntrustedKey", func(t *testing.T) {
		h := newHarness(t)
		_, stranger, _ := gateway.GenerateKey()
		_, _, err := h.gw.ApplyPolicy(ctx, mustSign(t, stranger, policyDoc(1, tobacco)))
		if gateway.ErrorCode(err) != gateway.EINVALID || !strings.Contains(err.Error(), "not trusted") {
			t.Fatalf("policy signed by a stranger: got %v, want EINVALID, not trusted", err)
		}
		// The token key is trusted for tokens, never for policies.
		_, _, err = h.gw.ApplyPolicy(ctx, mustSign(t, h.tokenKey, policyDoc(1, tobacco)))
		if gateway.ErrorCode(err) != gateway.EINVALID {
			t.Fatalf("policy signed by the token key: got %v, want EINVALID", err)
		}
	})

	t.Run("PolicyKeyThenRetired", func(t *testing.T) {
		h := newHarness(t)
		polPub, polKey, _ := gateway.GenerateKey()
		ks := gateway.NewKeyset(2, h.now, h.tokenKeys...)
		if err := gateway.AddKey(ks, polPub, gateway.KeyUsePolicy); err != nil {
			t.Fatal(err)
		}
		h.applyKeyset(t, ks)
		if _, _, err := h.gw.ApplyPolicy(ctx, mustSign(t, polKey, policyDoc(1, tobacco))); err != nil {
			t.Fatalf("policy signed by the keyset's policy key: %v", err)
		}
		ks = h.gw.Keyring().KeysetProto(3, h.now)
		if err := gateway.RetireKey(ks, gateway.KeyID(polPub)); err != nil {
			t.Fatal(err)
		}
		h.applyKeyset(t, ks)
		_, _, err := h.gw.ApplyPolicy(ctx, mustSign(t, polKey, policyDoc(2)))
		if gateway.ErrorCode(err) != gateway.EINVALID || !strings.Contains(err.Error(), "retired") {
			t.Fatalf("policy signed by a retired key: got %v, want EINVALID naming the retired key", err)
		}
		if p := h.gw.Policy().Chain; p.Version != 1 {
			t.Errorf("policy in force: got v%d, want v1", p.Version)
		}
		// Held documents stay in force across a restart, though their key
		// has since been retired.
		h.restart(t)
		if p := h.gw.Policy().Chain; p == nil || p.Version != 1 {
			t.Errorf("after a restart: got %+v, want v1 in force", p)
		}
	})

	t.Run("ErrOtherStore", func(t *testing.T) {
		h := newHarness(t)
		p := policyDoc(1, tobacco)
		p.StoreId = "store-0999"
		_, _, err := h.gw.ApplyPolicy(ctx, mustSign(t, h.rootKey, p))
		if gateway.ErrorCode(err) != gateway.EINVALID || !strings.Contains(err.Error(), "store-0999") {
			t.Fatalf("another store's policy: got %v, want EINVALID", err)
		}
	})

	t.Run("ErrNotAPolicy", func(t *testing.T) {
		h := newHarness(t)
		ks, _ := gateway.SignKeyset(h.rootKey, gateway.NewKeyset(9, h.now, h.tokenKeys...))
		if _, _, err := h.gw.ApplyPolicy(ctx, ks); gateway.ErrorCode(err) != gateway.EINVALID {
			t.Fatalf("a keyset as a policy: got %v, want EINVALID", err)
		}
	})

	t.Run("ScopesVersionApart", func(t *testing.T) {
		h := newHarness(t)
		h.applyPolicy(t, policyDoc(7, tobacco))
		own := policyDoc(1)
		own.StoreId = "store-0001"
		own.Mode = modeOnlineOnly
		h.applyPolicy(t, own)
		got := h.gw.DocumentVersions()
		if got.Policy != 7 || got.StorePolicy != 1 {
			t.Fatalf("versions: got %+v, want chain 7 and store 1", got)
		}
		h.restart(t)
		if got := h.gw.DocumentVersions(); got.Policy != 7 || got.StorePolicy != 1 {
			t.Errorf("versions after a restart: got %+v, want chain 7 and store 1", got)
		}
		if m := h.gw.Policy().Mode(); m != gateway.StoreOnlineOnly {
			t.Errorf("mode after a restart: got %v, want online_only", m)
		}
	})
}

func TestGateway_StoreMode(t *testing.T) {
	suspend := func(version uint64, store string, mode documentv1.StoreMode) *documentv1.Policy {
		p := policyDoc(version)
		p.StoreId, p.Mode = store, mode
		return p
	}
	t.Run("ChainSuspended", func(t *testing.T) {
		h := newHarness(t)
		h.applyPolicy(t, suspend(1, "", modeSuspended))
		res := h.authorize(t, cart("1", "t1", h.mint(t, "acct-1"), onigiri(1)))
		wantDeclineRule(t, res, gateway.ReasonStoreSuspended, "policy.suspended", "chain policy version 1")
		wantDeclineRule(t, h.authorize(t, cart("1", "c1", "12345678901234567890", onigiri(1))), gateway.ReasonStoreSuspended, "policy.suspended")
		if n := h.central.calls.Load(); n != 0 {
			t.Fatalf("central called %d times while suspended, want 0", n)
		}
		h.applyPolicy(t, suspend(2, "", modeNormal))
		wantApproved(t, h.authorize(t, cart("1", "t2", h.mint(t, "acct-1"), onigiri(1))))
	})
	t.Run("StricterModeWins", func(t *testing.T) {
		h := newHarness(t)
		// This store alone is suspended; the chain is normal.
		h.applyPolicy(t, suspend(1, "", modeNormal))
		h.applyPolicy(t, suspend(1, "store-0001", modeSuspended))
		wantDeclineRule(t, h.authorize(t, cart("1", "t1", h.mint(t, "acct-1"), onigiri(1))), gateway.ReasonStoreSuspended, "policy.suspended", "store store-0001")
		// Resuming the chain does not lift the store's own suspension.
		h.applyPolicy(t, suspend(2, "", modeNormal))
		wantDeclineRule(t, h.authorize(t, cart("1", "t2", h.mint(t, "acct-1"), onigiri(1))), gateway.ReasonStoreSuspended, "policy.suspended")
		// Suspending the chain stops a store whose own policy is normal.
		h.applyPolicy(t, suspend(2, "store-0001", modeNormal))
		h.applyPolicy(t, suspend(3, "", modeSuspended))
		wantDeclineRule(t, h.authorize(t, cart("1", "t3", h.mint(t, "acct-1"), onigiri(1))), gateway.ReasonStoreSuspended, "policy.suspended", "chain")
		h.applyPolicy(t, suspend(4, "", modeNormal))
		wantApproved(t, h.authorize(t, cart("1", "t4", h.mint(t, "acct-1"), onigiri(1))))
	})
	t.Run("OfflineAllowed", func(t *testing.T) {
		h := newHarness(t)
		p := policyDoc(1, &documentv1.Rule{Id: "tobacco", Categories: []string{"tobacco"}, MaxQuantityPerTransaction: 10},
			&documentv1.Rule{Id: "drinks", Categories: []string{"drink"}, MaxQuantityPerTransaction: 24, OfflineAllowed: true})
		p.Offline = &documentv1.OfflineCaps{MaxAmountPerTransaction: 5000, MaxAmountPerAccount: 10000, MaxStoreExposure: 300000}
		h.applyPolicy(t, p)
		pol := h.gw.Policy()
		if ok, rule := pol.OfflineAllowed([]gateway.Line{cigarettes(1), onigiri(1)}); ok || rule != "tobacco" {
			t.Errorf("tobacco offline: got %v %q, want forbidden by tobacco", ok, rule)
		}
		if ok, _ := pol.OfflineAllowed([]gateway.Line{{SKU: "1", Category: "drink", Quantity: 2, UnitPrice: 150}, onigiri(1)}); !ok {
			t.Error("drinks and food offline: got forbidden, want allowed")
		}
		own := policyDoc(1)
		own.StoreId, own.Mode = "store-0001", modeOnlineOnly
		own.Offline = &documentv1.OfflineCaps{MaxAmountPerTransaction: 3000}
		h.applyPolicy(t, own)
		pol = h.gw.Policy()
		if ok, rule := pol.OfflineAllowed([]gateway.Line{onigiri(1)}); ok || rule != "policy.online_only" {
			t.Errorf("online-only store: got %v %q, want forbidden by policy.online_only", ok, rule)
		}
		want := gateway.OfflineCaps{MaxAmountPerTransaction: 3000, MaxAmountPerAccount: 10000, MaxStoreExposure: 300000}
		if got := pol.Offline(); got != want {
			t.Errorf("offline caps in force: got %+v, want %+v (the lower non-zero of each)", got, want)
		}
	})
}

func TestGateway_PolicyTokenLifetime(t *testing.T) {
	h := newHarness(t)
	life := func(d time.Duration) func(c *gateway.Claims) {
		return func(c *gateway.Claims) {
			c.IssuedAt, c.Expires = h.now.Add(-10*time.Second), h.now.Add(d-10*time.Second)
		}
	}
	wantApproved(t, h.authorize(t, cart("1", "t1", h.mintWith(t, "acct-1", life(2*time.Minute)), onigiri(1))))

	p := policyDoc(1)
	p.MaxTokenLifetimeSeconds = 60
	h.applyPolicy(t, p)
	if got := h.gw.Policy().MaxTokenLifetime(); got != time.Minute {
		t.Fatalf("lifetime cap in force: got %s, want 1m", got)
	}
	res := h.authorize(t, cart("1", "t2", h.mintWith(t, "acct-1", life(2*time.Minute)), onigiri(1)))
	wantDeclineRule(t, res, gateway.ReasonInvalidToken, "token.invalid_token", "lifetime 2m0s outside (0, 1m0s]")
	wantApproved(t, h.authorize(t, cart("1", "t3", h.mintWith(t, "acct-1", life(time.Minute)), onigiri(1))))

	// A policy never raises the cap above the verifier's own.
	p = policyDoc(2)
	p.MaxTokenLifetimeSeconds = 300
	h.applyPolicy(t, p)
	h.gw.Verifier.MaxLifetime = 90 * time.Second
	res = h.authorize(t, cart("1", "t4", h.mintWith(t, "acct-1", life(2*time.Minute)), onigiri(1)))
	wantDeclineRule(t, res, gateway.ReasonInvalidToken, "token.invalid_token", "1m30s")
}

func TestPolicy_Proto(t *testing.T) {
	m := policyDoc(4,
		&documentv1.Rule{Id: "gift-cards", Categories: []string{"giftcard"}, SkuPrefixes: []string{"978"}, MaxAmountPerTransaction: 30000,
			MaxAmountPerAccount: 30000, AccountWindowSeconds: 86400, MaxAmountPerStore: 100000, StoreWindowSeconds: 3600, MinAssurance: 2},
	)
	m.StoreId, m.MaxTokenLifetimeSeconds = "store-0001", 120
	m.Offline = &documentv1.OfflineCaps{MaxAmountPerTransaction: 5000, MaxAmountPerAccount: 10000, MaxStoreExposure: 300000}
	p, err := gateway.PolicyFromProto(m)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(p.Proto()), fmt.Sprint(m); got != want {
		t.Errorf("round trip:\n got %s\nwant %s", got, want)
	}
	if p.Rules[0].AccountWindow != 24*time.Hour || p.Rules[0].StoreWindow != time.Hour || p.MaxTokenLifetime != 2*time.Minute {
		t.Errorf("durations: got %+v", p.Rules[0])
	}
}
