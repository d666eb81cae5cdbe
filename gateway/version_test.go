package gateway_test

import (
	"context"
	"math"
	"testing"

	"storegate/gateway"
)

// A correctly signed document at version 2^64−1 would lock its scope for
// ever: nothing, not even the emergency stop, could follow it.
func TestGateway_MaxVersionStep(t *testing.T) {
	ctx := context.Background()
	t.Run("ErrPolicyAtMaxUint64", func(t *testing.T) {
		h := newHarness(t)
		h.applyPolicy(t, policyDoc(3))
		_, _, err := h.gw.ApplyPolicy(ctx, mustSign(t, h.rootKey, policyDoc(math.MaxUint64)))
		if gateway.ErrorCode(err) != gateway.EINVALID {
			t.Fatalf("policy at 2^64-1: err = %v, want EINVALID", err)
		}
		if got := h.gw.DocumentVersions().Policy; got != 3 {
			t.Fatalf("policy held = %d, want 3", got)
		}
		// The emergency stop, the next version, still goes through.
		stop := policyDoc(4)
		stop.Mode = modeSuspended
		h.applyPolicy(t, stop)
		wantDecline(t, h.authorize(t, basket("1", "t1", h.mint(t, "acct-0001"))), gateway.ReasonStoreSuspended)
	})
	t.Run("PolicyStepEdge", func(t *testing.T) {
		h := newHarness(t)
		h.applyPolicy(t, policyDoc(1))
		if _, _, err := h.gw.ApplyPolicy(ctx, mustSign(t, h.rootKey, policyDoc(2+gateway.MaxVersionStep))); gateway.ErrorCode(err) != gateway.EINVALID {
			t.Fatalf("policy %d past the held one: err = %v, want EINVALID", 1+gateway.MaxVersionStep, err)
		}
		h.applyPolicy(t, policyDoc(1+gateway.MaxVersionStep))
	})
	t.Run("StorePolicyToo", func(t *testing.T) {
		h := newHarness(t)
		p := policyDoc(1)
		p.StoreId = "store-0001"
		h.applyPolicy(t, p)
		p.Version = math.MaxUint64
		if _, _, err := h.gw.ApplyPolicy(ctx, mustSign(t, h.rootKey, p)); gateway.ErrorCode(err) != gateway.EINVALID {
			t.Fatalf("store policy at 2^64-1: err = %v, want EINVALID", err)
		}
	})
	t.Run("ErrKeysetAtMaxUint64", func(t *testing.T) {
		h := newHarness(t)
		raw, err := gateway.SignKeyset(h.rootKey, gateway.NewKeyset(math.MaxUint64, h.now, h.tokenKeys...))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := h.gw.ApplyKeyset(ctx, raw); gateway.ErrorCode(err) != gateway.EINVALID {
			t.Fatalf("keyset at 2^64-1: err = %v, want EINVALID", err)
		}
		h.applyKeyset(t, gateway.NewKeyset(2, h.now, h.tokenKeys...))
		if got := h.gw.DocumentVersions().Keyset; got != 2 {
			t.Fatalf("keyset held = %d, want 2", got)
		}
	})
	t.Run("ErrFreezeSnapshotAtMaxUint64", func(t *testing.T) {
		h := newHarness(t)
		h.applyFreeze(t, freezeDoc(1, false, freezeOf("acct-1", "takeover")))
		_, _, err := h.gw.ApplyFreezeList(ctx, mustSignFreeze(t, h.rootKey, freezeDoc(math.MaxUint64, true)))
		if gateway.ErrorCode(err) != gateway.EINVALID {
			t.Fatalf("freeze snapshot at 2^64-1: err = %v, want EINVALID", err)
		}
		h.applyFreeze(t, freezeDoc(2, false, freezeOf("acct-2", "takeover")))
		if got := h.gw.FreezeList(); got.Version != 2 || got.Len() != 2 {
			t.Fatalf("freeze list = v%d with %d accounts, want v2 with 2", got.Version, got.Len())
		}
	})
	t.Run("FirstDocumentAnyVersion", func(t *testing.T) {
		// A store joining late holds nothing and takes HQ's current
		// version, however high; HQ's publisher bounds that one.
		h := newHarness(t)
		h.applyPolicy(t, policyDoc(50_000))
		h.applyFreeze(t, freezeDoc(80_000, true, freezeOf("acct-1", "takeover")))
	})
}

func TestFreezeFollows_Step(t *testing.T) {
	for _, c := range []struct {
		held uint64
		list *gateway.FreezeList
		code string
	}{
		{5, &gateway.FreezeList{Version: 5 + gateway.MaxVersionStep, Snapshot: true}, ""},
		{5, &gateway.FreezeList{Version: 6 + gateway.MaxVersionStep, Snapshot: true}, gateway.EINVALID},
		{5, &gateway.FreezeList{Version: math.MaxUint64, Snapshot: true}, gateway.EINVALID},
		{5, &gateway.FreezeList{Version: math.MaxUint64}, gateway.ECONFLICT},
		{0, &gateway.FreezeList{Version: math.MaxUint64, Snapshot: true}, ""},
	} {
		if _, err := gateway.FreezeFollows(c.held, c.list); gateway.ErrorCode(err) != c.code {
			t.Errorf("FreezeFollows(%d, v%d snapshot %v) = %v, want code %q", c.held, c.list.Version, c.list.Snapshot, err, c.code)
		}
	}
}
