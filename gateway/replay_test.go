package gateway_test

import (
	"context"
	"testing"
	"time"

	"storegate/gateway"
)

// Replays at the edges of a token's life, and with the host clock stepping
// forward and back. The gateway's clock is injected (h.now); the fake
// central approves whatever it is asked, so every refusal here is the
// gateway's own.

// mintAt mints a token for acct-0001 issued at iat, living life.
func (h *harness) mintAt(t *testing.T, iat time.Time, life time.Duration) (string, []byte) {
	t.Helper()
	id, _ := gateway.NewTokenID()
	tok, err := gateway.MintToken(h.tokenKey, gateway.Claims{
		Issuer: "storegate-hq", Account: "acct-0001", IssuedAt: iat, Expires: iat.Add(life),
		TokenID: id, Device: "phone-1", Assurance: 2, OfflineAllowance: 5000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok, id
}

func (h *harness) spent(t *testing.T, id []byte) bool {
	t.Helper()
	spent, err := h.store.TokenSpent(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return spent
}

// wantRefused accepts any of the given decline reasons, and never an
// approval.
func wantRefused(t *testing.T, res *gateway.AuthorizeResult, reasons ...gateway.Reason) {
	t.Helper()
	if res.Decision.Approved {
		t.Fatalf("replay approved (settlement %s), want one of %v", res.Decision.SettlementID, reasons)
	}
	for _, r := range reasons {
		if res.Decision.Reason == r {
			return
		}
	}
	t.Fatalf("decline reason %v (%s), want one of %v", res.Decision.Reason, res.Decision.Message, reasons)
}

// A token is good up to its expiry plus the skew allowance, to the second,
// and spent once: exactly one approval, at the last good second.
func TestReplay_ExpiryEdges(t *testing.T) {
	h := newHarness(t)
	skew := gateway.DefaultClockSkew
	issued := h.now
	tok, _ := h.mintAt(t, issued, 2*time.Minute)
	exp := issued.Add(2 * time.Minute)

	h.now = exp.Add(skew)
	wantApproved(t, h.authorize(t, basket("1", "edge-1", tok)))
	wantDecline(t, h.authorize(t, basket("2", "edge-2", tok)), gateway.ReasonReplayed)
	h.now = exp.Add(skew + time.Second)
	wantDecline(t, h.authorize(t, basket("3", "edge-3", tok)), gateway.ReasonExpired)

	t.Run("NeverUsed", func(t *testing.T) {
		tok, id := h.mintAt(t, issued, 2*time.Minute)
		h.now = exp.Add(skew + time.Second)
		wantDecline(t, h.authorize(t, basket("1", "late-1", tok)), gateway.ReasonExpired)
		h.now = issued.Add(-skew - time.Second)
		wantDecline(t, h.authorize(t, basket("1", "early-1", tok)), gateway.ReasonNotYetValid)
		if h.spent(t, id) {
			t.Fatal("a declined token's id was recorded as spent")
		}
		// Declines spend nothing: the token still pays once, from the first
		// second the skew allows.
		h.now = issued.Add(-skew)
		wantApproved(t, h.authorize(t, basket("1", "first-1", tok)))
		wantDecline(t, h.authorize(t, basket("2", "first-2", tok)), gateway.ReasonReplayed)
	})
}

// The host clock jumps two hours ahead (a bad NTP server, a hand-set clock)
// while the prune loop runs with the daemon's one-hour margin, then steps
// back. The jump makes the gateway forget ids of tokens that are still valid
// in real time; once the clock is right again such a token must still not
// pay twice, and fresh tokens must pay as before.
func TestClock_ForwardJumpThenBack(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	real := h.now
	tok, _ := h.mintAt(t, real.Add(-10*time.Second), 2*time.Minute)
	wantApproved(t, h.authorize(t, basket("1", "t1", tok)))

	h.now = real.Add(2 * time.Hour)
	wantRefused(t, h.authorize(t, basket("2", "t2", tok)), gateway.ReasonExpired, gateway.ReasonReplayed)
	if n, err := h.gw.PruneSpent(ctx, time.Hour); err != nil || n != 1 {
		t.Fatalf("PruneSpent two hours ahead = %d, %v; want the spent id forgotten", n, err)
	}

	h.now = real.Add(20 * time.Second)
	wantDecline(t, h.authorize(t, basket("3", "t3", tok)), gateway.ReasonReplayed)
	fresh, _ := h.mintAt(t, h.now, 2*time.Minute)
	wantApproved(t, h.authorize(t, basket("4", "t4", fresh)))
	if st, _ := h.store.OutboxStats(ctx); st.Depth != 2 {
		t.Fatalf("outbox depth = %d, want 2 approvals", st.Depth)
	}
}

// The clock is right while a spent id is pruned long after its expiry, then
// steps three hours back (a dead RTC battery at boot): the old token looks
// valid again and its id is gone, yet it must not pay a second time.
func TestClock_BackwardJumpAfterPrune(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	start := h.now
	old, oldID := h.mintAt(t, start.Add(-10*time.Second), 2*time.Minute)
	wantApproved(t, h.authorize(t, basket("1", "t1", old)))

	h.now = start.Add(3 * time.Hour)
	fresh, _ := h.mintAt(t, h.now, 2*time.Minute)
	wantApproved(t, h.authorize(t, basket("1", "t2", fresh)))
	n, err := h.gw.PruneSpent(ctx, time.Hour)
	if err != nil || n != 1 || h.spent(t, oldID) {
		t.Fatalf("PruneSpent = %d, %v (old id spent %v), want the old id forgotten", n, err, h.spent(t, oldID))
	}

	h.restart(t)
	h.now = start.Add(20 * time.Second)
	res := h.authorize(t, basket("2", "t3", old))
	wantRefused(t, res, gateway.ReasonReplayed, gateway.ReasonExpired)
	if st, _ := h.store.OutboxStats(ctx); st.Depth != 2 {
		t.Fatalf("outbox depth = %d, want the 2 first approvals only", st.Depth)
	}
}

// Pruning with no margin forgets an id exactly when its token stops being
// valid, never a second before; and a small backward step never lets a spent
// token pay again.
func TestClock_PruneOnlyPastExpiryAndSkew(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	start := h.now
	skew := gateway.DefaultClockSkew
	tok, id := h.mintAt(t, start, time.Minute)
	exp := start.Add(time.Minute)
	wantApproved(t, h.authorize(t, basket("1", "t0", tok)))

	for i, now := range []time.Time{exp, exp.Add(skew - time.Second), exp.Add(skew), exp.Add(skew + 500*time.Millisecond)} {
		h.now = now
		// Lanes keep paying meanwhile.
		recent, _ := h.mintAt(t, now.Truncate(time.Second), time.Minute)
		wantApproved(t, h.authorize(t, basket("1", "r"+string(rune('a'+i)), recent)))
		if _, err := h.gw.PruneSpent(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if !h.spent(t, id) {
			t.Fatalf("at exp%+v the id of a token still valid was pruned", now.Sub(exp))
		}
		res := h.authorize(t, basket("2", "x"+string(rune('a'+i)), tok))
		if now.After(exp.Add(skew)) {
			// Half a second past: expired, though its id is still held.
			wantRefused(t, res, gateway.ReasonExpired)
		} else {
			wantDecline(t, res, gateway.ReasonReplayed)
		}
	}

	h.now = exp.Add(skew + time.Second)
	recent, _ := h.mintAt(t, h.now, time.Minute)
	wantApproved(t, h.authorize(t, basket("1", "late", recent)))
	if n, err := h.gw.PruneSpent(ctx, 0); err != nil || n != 1 || h.spent(t, id) {
		t.Fatalf("PruneSpent one second after exp+skew = %d, %v, want the expired id forgotten", n, err)
	}
	wantDecline(t, h.authorize(t, basket("2", "after-prune", tok)), gateway.ReasonExpired)

	// Ten minutes back: the token is valid again on the host clock, its id
	// forgotten; it must still not pay.
	h.now = exp.Add(-10 * time.Second)
	wantRefused(t, h.authorize(t, basket("3", "stepped-back", tok)), gateway.ReasonReplayed, gateway.ReasonExpired)
}
