package gateway_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
)

func freezeDoc(version uint64, snapshot bool, entries ...*documentv1.FreezeEntry) *documentv1.FreezeList {
	return &documentv1.FreezeList{Version: version, IssuedAt: 1794000000, Snapshot: snapshot, Entries: entries}
}

func freezeOf(account, reason string) *documentv1.FreezeEntry {
	return &documentv1.FreezeEntry{Account: account, Frozen: true, Reason: reason}
}

func unfreezeOf(account string) *documentv1.FreezeEntry {
	return &documentv1.FreezeEntry{Account: account}
}

func mustSignFreeze(tb testing.TB, priv ed25519.PrivateKey, m *documentv1.FreezeList) []byte {
	tb.Helper()
	raw, err := gateway.SignFreezeList(priv, m)
	if err != nil {
		tb.Fatalf("SignFreezeList: %v", err)
	}
	return raw
}

// applyFreeze signs a freeze list with the root key and applies it.
func (h *harness) applyFreeze(tb testing.TB, m *documentv1.FreezeList) {
	tb.Helper()
	if _, changed, err := h.gw.ApplyFreezeList(context.Background(), mustSignFreeze(tb, h.rootKey, m)); err != nil || !changed {
		tb.Fatalf("ApplyFreezeList(v%d): got changed %v, %v; want applied", m.GetVersion(), changed, err)
	}
}

func TestGateway_Freeze(t *testing.T) {
	ctx := context.Background()

	t.Run("FrozenAccountDeclined", func(t *testing.T) {
		h := newHarness(t)
		wantApproved(t, h.authorize(t, cart("1", "t1", h.mint(t, "acct-1"), onigiri(1))))
		h.applyFreeze(t, freezeDoc(1, false, freezeOf("acct-1", "password-list attack, case 42")))
		tok := h.mint(t, "acct-1")
		res := h.authorize(t, cart("1", "t2", tok, onigiri(1)))
		wantDeclineRule(t, res, gateway.ReasonAccountFrozen, "freeze.account", "frozen by HQ (freeze list version 1)")
		if strings.Contains(res.Decision.Message, "case 42") {
			t.Errorf("message %q tells the lane HQ's reason", res.Decision.Message)
		}
		if res.Decision.Mode != gateway.ModeLocal || h.central.calls.Load() != 1 {
			t.Errorf("mode %s, central calls %d: want a local decline, central asked once (for t1)", res.Decision.Mode, h.central.calls.Load())
		}
		// Other accounts are unaffected.
		wantApproved(t, h.authorize(t, cart("1", "t3", h.mint(t, "acct-2"), onigiri(1))))
		// The declined token is spent: unfreezing does not revive it.
		h.applyFreeze(t, freezeDoc(2, false, unfreezeOf("acct-1")))
		wantDeclineRule(t, h.authorize(t, cart("1", "t4", tok, onigiri(1))), gateway.ReasonReplayed, "token.replayed")
		wantApproved(t, h.authorize(t, cart("1", "t5", h.mint(t, "acct-1"), onigiri(1))))
	})

	t.Run("Snapshot", func(t *testing.T) {
		h := newHarness(t)
		h.applyFreeze(t, freezeDoc(1, false, freezeOf("acct-1", ""), freezeOf("acct-2", "")))
		h.applyFreeze(t, freezeDoc(7, true, freezeOf("acct-3", "")))
		set := h.gw.FreezeList()
		if _, ok := set.Lookup("acct-1"); ok || set.Len() != 1 || set.Version != 7 {
			t.Fatalf("after a snapshot: got v%d %v, want v7 with acct-3 alone", set.Version, set.Accounts())
		}
		wantApproved(t, h.authorize(t, cart("1", "t1", h.mint(t, "acct-1"), onigiri(1))))
		wantDeclineRule(t, h.authorize(t, cart("1", "t2", h.mint(t, "acct-3"), onigiri(1))), gateway.ReasonAccountFrozen, "freeze.account")
	})

	t.Run("ErrStaleAndGap", func(t *testing.T) {
		h := newHarness(t)
		h.applyFreeze(t, freezeDoc(1, false, freezeOf("acct-1", "")))
		h.applyFreeze(t, freezeDoc(2, false, freezeOf("acct-2", "")))
		v, changed, err := h.gw.ApplyFreezeList(ctx, mustSignFreeze(t, h.rootKey, freezeDoc(1, false, unfreezeOf("acct-1"))))
		if gateway.ErrorCode(err) != gateway.ESTALE || changed || v != 2 {
			t.Errorf("an older delta: got v%d changed %v, %v; want ESTALE at v2", v, changed, err)
		}
		_, _, err = h.gw.ApplyFreezeList(ctx, mustSignFreeze(t, h.rootKey, freezeDoc(4, false, unfreezeOf("acct-1"))))
		if gateway.ErrorCode(err) != gateway.ECONFLICT {
			t.Errorf("a delta after a gap: got %v, want ECONFLICT", err)
		}
		if _, ok := h.gw.FreezeList().Lookup("acct-1"); !ok {
			t.Error("a refused delta unfroze acct-1")
		}
		if v, changed, err := h.gw.ApplyFreezeList(ctx, mustSignFreeze(t, h.rootKey, freezeDoc(2, false, freezeOf("acct-2", "")))); err != nil || changed || v != 2 {
			t.Errorf("the held version again: got v%d changed %v, %v; want v2 unchanged", v, changed, err)
		}
	})

	t.Run("ErrTamperedOrUntrusted", func(t *testing.T) {
		h := newHarness(t)
		raw := mustSignFreeze(t, h.rootKey, freezeDoc(1, false, freezeOf("acct-1", "")))
		i := strings.Index(string(raw), "acct-1")
		tampered := append([]byte(nil), raw...)
		tampered[i+5] = '2'
		if _, _, err := h.gw.ApplyFreezeList(ctx, tampered); gateway.ErrorCode(err) != gateway.EINVALID {
			t.Errorf("tampered freeze list: got %v, want EINVALID", err)
		}
		_, stranger, _ := gateway.GenerateKey()
		if _, _, err := h.gw.ApplyFreezeList(ctx, mustSignFreeze(t, stranger, freezeDoc(1, false, freezeOf("acct-1", "")))); gateway.ErrorCode(err) != gateway.EINVALID {
			t.Errorf("freeze list signed by a stranger: got %v, want EINVALID", err)
		}
		// A policy is not a freeze list, though both are signed by the root.
		if _, _, err := h.gw.ApplyFreezeList(ctx, mustSign(t, h.rootKey, policyDoc(1))); gateway.ErrorCode(err) != gateway.EINVALID {
			t.Errorf("a policy as a freeze list: got %v, want EINVALID", err)
		}
		if set := h.gw.FreezeList(); set.Version != 0 || set.Len() != 0 {
			t.Errorf("freeze list in force: got v%d with %d accounts, want none", set.Version, set.Len())
		}
	})

	t.Run("SurvivesRestart", func(t *testing.T) {
		h := newHarness(t)
		h.applyFreeze(t, freezeDoc(1, false, freezeOf("acct-1", "takeover")))
		h.restart(t)
		if set := h.gw.FreezeList(); set.Version != 1 {
			t.Fatalf("freeze version after a restart: got %d, want 1", set.Version)
		}
		wantDeclineRule(t, h.authorize(t, cart("1", "t1", h.mint(t, "acct-1"), onigiri(1))), gateway.ReasonAccountFrozen, "freeze.account")
	})

	t.Run("PaymentCode", func(t *testing.T) {
		// A code names its account only once central answers; the fake
		// central charges "acct-from-central".
		h := newHarness(t)
		h.applyFreeze(t, freezeDoc(1, false, freezeOf("acct-from-central", "")))
		res := h.authorize(t, cart("1", "c1", "12345678901234567890", onigiri(1)))
		wantDeclineRule(t, res, gateway.ReasonAccountFrozen, "freeze.account")
		if res.Decision.SettlementID != "" {
			t.Errorf("settlement %q queued for a frozen account", res.Decision.SettlementID)
		}
		if st, _ := h.store.OutboxStats(ctx); st.Depth != 0 {
			t.Errorf("outbox depth: got %d, want 0", st.Depth)
		}
	})
}

func TestValidateFreezeList(t *testing.T) {
	for name, c := range map[string]struct {
		m    *documentv1.FreezeList
		want string
	}{
		"NoVersion":         {freezeDoc(0, false, freezeOf("acct-1", "")), "freeze list: version: must be at least 1"},
		"EmptyDelta":        {freezeDoc(1, false), "freeze list: entries: a delta must freeze or unfreeze at least one account"},
		"BadAccount":        {freezeDoc(1, false, freezeOf("acct 1", "")), "freeze list: entries[0].account: want 1-64 characters"},
		"Duplicate":         {freezeDoc(1, false, freezeOf("acct-1", ""), unfreezeOf("acct-1")), "freeze list: entries[1].account: acct-1 is also entries[0]"},
		"UnfreezeSnapshot":  {freezeDoc(1, true, unfreezeOf("acct-1")), "freeze list: entries[0].frozen: a snapshot lists frozen accounts only"},
		"LongReason":        {freezeDoc(1, false, freezeOf("acct-1", strings.Repeat("x", 257))), "freeze list: entries[0].reason: longer than 256"},
		"NegativeIssuedAt":  {&documentv1.FreezeList{Version: 1, IssuedAt: -1, Entries: []*documentv1.FreezeEntry{freezeOf("a", "")}}, "freeze list: issued_at: negative"},
		"EmptySnapshotOK":   {freezeDoc(1, true), ""},
		"UnfreezeInDeltaOK": {freezeDoc(1, false, unfreezeOf("acct-1")), ""},
	} {
		t.Run(name, func(t *testing.T) {
			err := gateway.ValidateFreezeList(c.m)
			if c.want == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if gateway.ErrorCode(err) != gateway.EINVALID || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want EINVALID containing %q", err, c.want)
			}
		})
	}
}
