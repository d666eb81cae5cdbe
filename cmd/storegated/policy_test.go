package main_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
	storegatev1 "storegate/proto/storegate/v1"
)

// examplePolicy is the documented example, published as it is.
const examplePolicy = "../../systemd/policy.example.yaml"

// hqctl runs a storegatectl command that signs with HQ's root key and
// publishes through HQ's admin service: words name the command, rest are
// its other flags and arguments.
func (w *world) hqctl(t *testing.T, words []string, rest ...string) (string, int) {
	t.Helper()
	args := append(append([]string(nil), words...), "--hq", w.hqAdmin, "--root-key", filepath.Join(w.keysDir, "root.key"))
	return ctl(t, append(args, rest...)...)
}

func (w *world) mustHQCtl(t *testing.T, words []string, rest ...string) string {
	t.Helper()
	out, code := w.hqctl(t, words, rest...)
	if code != 0 {
		t.Fatalf("storegatectl %s: exit %d: %s", strings.Join(words, " "), code, out)
	}
	return out
}

// mintAAL mints a fresh token for account at assurance level aal.
func (w *world) mintAAL(t *testing.T, account string, aal int) string {
	t.Helper()
	id, _ := gateway.NewTokenID()
	now := time.Now()
	tok, err := gateway.MintToken(w.keys.Token, gateway.Claims{
		Issuer: "storegate-hq", Account: account, IssuedAt: now, Expires: now.Add(time.Minute),
		TokenID: id, Device: "phone-1", Assurance: aal,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// until authorizes a fresh basket for account until the decision satisfies
// ok or the wait is over, and returns the last decision and how long it
// took.
func (w *world) until(t *testing.T, account, prefix string, wait time.Duration, ok func(d *storegatev1.Decision) bool) (*storegatev1.Decision, time.Duration, bool) {
	t.Helper()
	start := time.Now()
	var d *storegatev1.Decision
	for i := 0; ; i++ {
		d = w.authorize(t, sale("1", fmt.Sprintf("%s-%d", prefix, i), w.mintAAL(t, account, 2))).GetDecision()
		if ok(d) {
			return d, time.Since(start), true
		}
		if time.Since(start) > wait {
			return d, time.Since(start), false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func approved(d *storegatev1.Decision) bool {
	return d.GetOutcome() == storegatev1.Outcome_OUTCOME_APPROVED
}

func declinedBy(reason storegatev1.DeclineReason, rule string) func(d *storegatev1.Decision) bool {
	return func(d *storegatev1.Decision) bool { return d.GetReason() == reason && d.GetRule() == rule }
}

// waitStatus polls the gateway's status until ok.
func (w *world) waitStatus(t *testing.T, what string, ok func(st *storegatev1.GetStatusResponse) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := w.payments.GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
		if err == nil && ok(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s: status %v, %v\n%s", what, st, err, w.gw.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStoregated_Policy(t *testing.T) {
	w := newWorld(t)
	giftCard := func(yen int64) *storegatev1.BasketLine {
		return &storegatev1.BasketLine{Sku: "9784000000001", Category: "giftcard", Quantity: 1, UnitPrice: yen}
	}

	out := w.mustHQCtl(t, []string{"policy", "publish"}, examplePolicy)
	if !strings.Contains(out, "policy version 1 (chain-wide) published") {
		t.Fatalf("policy publish: %s", out)
	}
	w.waitStatus(t, "policy v1 at the store", func(st *storegatev1.GetStatusResponse) bool { return st.GetPolicyVersion() == 1 })

	t.Run("Show", func(t *testing.T) {
		out, code := ctl(t, "policy", "show", "--admin-socket", w.adminSocket())
		for _, want := range []string{
			"store store-0001: mode normal, token lifetime cap 2m0s",
			"freeze list version 0 (frozen accounts: 0); keyset version 1",
			"chain-wide policy version 1, issued",
			"id: gift-cards", "max_amount_per_store: 100000", "store_window: 1h", "min_assurance: 2",
			"store policy: none",
		} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("policy show: exit %d, want %q in:\n%s", code, want, out)
			}
		}
	})
	t.Run("GiftCardsPerAccount", func(t *testing.T) {
		if d := w.authorize(t, sale("2", "gc-1", w.mintAAL(t, "acct-0001", 2), giftCard(30000))).GetDecision(); !approved(d) {
			t.Fatalf("30000 JPY of gift cards: got %v, want approved", d)
		}
		d := w.authorize(t, sale("2", "gc-2", w.mintAAL(t, "acct-0001", 2), giftCard(1000))).GetDecision()
		if !declinedBy(storegatev1.DeclineReason_DECLINE_REASON_LIMIT_EXCEEDED, "gift-cards")(d) ||
			!strings.Contains(d.GetMessage(), "rule gift-cards: 30000 JPY per account per 24h; this sale would make 31000") {
			t.Fatalf("1000 JPY more: got %v, want LIMIT_EXCEEDED by gift-cards naming the limit", d)
		}
	})
	t.Run("GiftCardsNeedAssurance", func(t *testing.T) {
		d := w.authorize(t, sale("2", "gc-3", w.mintAAL(t, "acct-0001", 1), giftCard(500))).GetDecision()
		if !declinedBy(storegatev1.DeclineReason_DECLINE_REASON_ASSURANCE_REQUIRED, "gift-cards")(d) {
			t.Fatalf("gift card with an aal 1 token: got %v, want ASSURANCE_REQUIRED", d)
		}
	})
	t.Run("TobaccoPerTransaction", func(t *testing.T) {
		packs := &storegatev1.BasketLine{Sku: "4901777300001", Category: "tobacco", Quantity: 11, UnitPrice: 600}
		d := w.authorize(t, sale("2", "tb-1", w.mintAAL(t, "acct-0001", 2), packs)).GetDecision()
		if !declinedBy(storegatev1.DeclineReason_DECLINE_REASON_LIMIT_EXCEEDED, "tobacco")(d) {
			t.Fatalf("11 packs: got %v, want LIMIT_EXCEEDED by tobacco", d)
		}
	})

	// A freeze published at HQ declines the account's next token at the
	// store within one second. The store's own decline (rule
	// freeze.account, decided locally) is what counts: central refuses the
	// account too, as rule central.account_frozen.
	t.Run("FreezeWithinOneSecond", func(t *testing.T) {
		if d := w.authorize(t, sale("1", "pre-freeze", w.mintAAL(t, "acct-0001", 2))).GetDecision(); !approved(d) {
			t.Fatalf("before the freeze: got %v, want approved", d)
		}
		ran := time.Now()
		out := w.mustHQCtl(t, []string{"freeze"}, "--reason", "password-list attack", "acct-0001")
		published := time.Now()
		if !strings.Contains(out, "freeze list version 1 (chain-wide) published") {
			t.Fatalf("freeze: %s", out)
		}
		d, _, ok := w.until(t, "acct-0001", "fz", time.Second, declinedBy(storegatev1.DeclineReason_DECLINE_REASON_ACCOUNT_FROZEN, "freeze.account"))
		latency := time.Since(published)
		if !ok {
			t.Fatalf("acct-0001's token was not declined by the store within 1s of HQ publishing the freeze (%s): last decision %v\n%s",
				latency.Round(time.Millisecond), d, w.gw.log)
		}
		if d.GetMode() != storegatev1.DecisionMode_DECISION_MODE_LOCAL {
			t.Errorf("mode: got %v, want a local decision", d.GetMode())
		}
		t.Logf("freeze propagation: the next token was declined by the store %s after HQ published the freeze (%s after storegatectl started)",
			latency.Round(time.Millisecond), time.Since(ran).Round(time.Millisecond))
		if d := w.authorize(t, sale("1", "other-acct", w.mintAAL(t, "acct-0002", 2), &storegatev1.BasketLine{Sku: "4901234567894", Category: "food", Quantity: 1, UnitPrice: 100})).GetDecision(); !approved(d) {
			t.Errorf("another account: got %v, want approved", d)
		}
	})
	t.Run("Unfreeze", func(t *testing.T) {
		w.mustHQCtl(t, []string{"unfreeze"}, "acct-0001")
		if d, _, ok := w.until(t, "acct-0001", "unfz", 5*time.Second, approved); !ok {
			t.Fatalf("after unfreezing: got %v, want approved", d)
		}
	})
	suspended := filepath.Join(t.TempDir(), "suspend-v2.cose")
	t.Run("SuspendChain", func(t *testing.T) {
		w.mustHQCtl(t, []string{"suspend"}, "--chain", "--out", suspended)
		if d, _, ok := w.until(t, "acct-0001", "susp", 5*time.Second, declinedBy(storegatev1.DeclineReason_DECLINE_REASON_STORE_SUSPENDED, "policy.suspended")); !ok {
			t.Fatalf("chain suspended: got %v, want STORE_SUSPENDED", d)
		}
		admin := storegatev1.NewAdminServiceClient(dial(t, "unix://"+w.adminSocket()))
		if pol, err := admin.GetPolicy(context.Background(), &storegatev1.GetPolicyRequest{}); err != nil ||
			pol.GetMode() != documentv1.StoreMode_STORE_MODE_SUSPENDED || pol.GetChain().GetVersion() != 2 {
			t.Errorf("policy while suspended: got %v, %v, want chain v2 suspended", pol, err)
		}
		w.mustHQCtl(t, []string{"resume"}, "--chain")
		if d, _, ok := w.until(t, "acct-0001", "res", 5*time.Second, approved); !ok {
			t.Fatalf("chain resumed: got %v, want approved", d)
		}
		// The rules came through the suspension unchanged.
		pol, err := admin.GetPolicy(context.Background(), &storegatev1.GetPolicyRequest{})
		if err != nil || pol.GetChain().GetVersion() != 3 || len(pol.GetChain().GetRules()) != 3 {
			t.Errorf("policy after resuming: got %v, %v, want chain v3 with its 3 rules", pol, err)
		}
	})
	t.Run("ErrOlderOrTamperedPushed", func(t *testing.T) {
		// The suspension (chain v2) pushed straight to the store after the
		// resume (v3): refused as older, and the store keeps selling.
		out, code := ctl(t, "document", "apply", "--kind", "policy", "--admin-socket", w.adminSocket(), suspended)
		if code != 1 || !strings.Contains(out, "FailedPrecondition") || !strings.Contains(out, "older than the held version 3") {
			t.Errorf("document apply of an older policy: exit %d: %s", code, out)
		}
		raw, err := os.ReadFile(suspended)
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)/2] ^= 0x20
		tampered := filepath.Join(t.TempDir(), "tampered.cose")
		os.WriteFile(tampered, raw, 0o644)
		if out, code := ctl(t, "document", "apply", "--kind", "policy", "--admin-socket", w.adminSocket(), tampered); code != 1 || !strings.Contains(out, "InvalidArgument") {
			t.Errorf("document apply of a tampered policy: exit %d: %s", code, out)
		}
		if d, _, ok := w.until(t, "acct-0001", "push", time.Second, approved); !ok {
			t.Errorf("after refused pushes: got %v, want approved", d)
		}
	})
	t.Run("SuspendStore", func(t *testing.T) {
		w.mustHQCtl(t, []string{"suspend"}, "--store", "store-0001")
		if d, _, ok := w.until(t, "acct-0001", "ssusp", 5*time.Second, declinedBy(storegatev1.DeclineReason_DECLINE_REASON_STORE_SUSPENDED, "policy.suspended")); !ok {
			t.Fatalf("store suspended: got %v, want STORE_SUSPENDED", d)
		}
		w.mustHQCtl(t, []string{"resume"}, "--store", "store-0001")
		if d, _, ok := w.until(t, "acct-0001", "sres", 5*time.Second, approved); !ok {
			t.Fatalf("store resumed: got %v, want approved", d)
		}
	})
	t.Run("ResumesAfterHQRestart", func(t *testing.T) {
		addr := w.hq.addr
		w.hq.stop()
		w.startHQ(addr)
		w.mustHQCtl(t, []string{"freeze"}, "--reason", "chargebacks", "acct-0002")
		if d, _, ok := w.until(t, "acct-0002", "hqr", 15*time.Second, declinedBy(storegatev1.DeclineReason_DECLINE_REASON_ACCOUNT_FROZEN, "freeze.account")); !ok {
			t.Fatalf("after HQ restarted: got %v, want the store to decline the newly frozen account\n%s", d, w.gw.log)
		}
		if n := strings.Count(w.gw.log.String(), `"msg":"policy stream open"`); n < 2 {
			t.Errorf("policy stream opened %d times, want a reconnect", n)
		}
	})
	t.Run("SurvivesGatewayRestart", func(t *testing.T) {
		w.gw.stop()
		w.startGateway()
		d := w.authorize(t, sale("1", "after-restart", w.mintAAL(t, "acct-0002", 2))).GetDecision()
		if !declinedBy(storegatev1.DeclineReason_DECLINE_REASON_ACCOUNT_FROZEN, "freeze.account")(d) {
			t.Fatalf("after a gateway restart: got %v, want acct-0002 still frozen", d)
		}
		if out, _ := ctl(t, "policy", "show", "--admin-socket", w.adminSocket()); !strings.Contains(out, "freeze list version 3 (frozen accounts: 1)") {
			t.Errorf("policy show after a restart:\n%s", out)
		}
	})
	t.Run("KeysetRotation", func(t *testing.T) {
		newPub, newKey, _ := gateway.GenerateKey()
		pem, _ := gateway.MarshalPublicKeyPEM(newPub)
		pubFile := filepath.Join(t.TempDir(), "token-2.pub")
		if err := os.WriteFile(pubFile, pem, 0o644); err != nil {
			t.Fatal(err)
		}
		if out := w.mustHQCtl(t, []string{"keyset", "add"}, "--pub", pubFile, "--use", "token"); !strings.Contains(out, "keyset version 2") {
			t.Fatalf("keyset add: %s", out)
		}
		w.waitStatus(t, "keyset v2 at the store", func(st *storegatev1.GetStatusResponse) bool { return st.GetKeysetVersion() == 2 })
		oldKey := w.keys.Token
		w.keys.Token = newKey
		if d := w.authorize(t, sale("1", "newkey-1", w.mintAAL(t, "acct-0001", 2))).GetDecision(); !approved(d) {
			t.Fatalf("a token of the added key: got %v, want approved (by the store and central)", d)
		}
		oldKID := gateway.KeyIDString(oldKey.Public().(ed25519.PublicKey))
		if out := w.mustHQCtl(t, []string{"keyset", "retire"}, "--kid", oldKID); !strings.Contains(out, "keyset version 3") {
			t.Fatalf("keyset retire: %s", out)
		}
		w.waitStatus(t, "keyset v3 at the store", func(st *storegatev1.GetStatusResponse) bool { return st.GetKeysetVersion() == 3 })
		w.keys.Token = oldKey
		d := w.authorize(t, sale("1", "oldkey-1", w.mintAAL(t, "acct-0001", 2))).GetDecision()
		w.keys.Token = newKey
		if !declinedBy(storegatev1.DeclineReason_DECLINE_REASON_KEY_RETIRED, "token.key_retired")(d) {
			t.Fatalf("a token of the retired key: got %v, want KEY_RETIRED at the store", d)
		}
		if d := w.authorize(t, sale("1", "newkey-2", w.mintAAL(t, "acct-0001", 2))).GetDecision(); !approved(d) {
			t.Fatalf("a token of the current key: got %v, want approved", d)
		}
	})
}
