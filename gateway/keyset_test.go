package gateway_test

import (
	"context"
	"testing"
	"time"

	"storegate/gateway"
)

// TestGateway_KeysetRotation: HQ adds a token-signing key, then retires the
// old one; the old key's tokens are declined as retired from the next sale
// on, the new key's are approved, and an older keyset cannot bring the old
// key back.
func TestGateway_KeysetRotation(t *testing.T) {
	h := newHarness(t)
	oldKey := h.tokenKey
	oldPub := h.tokenKeys[0]
	newPub, newKey, _ := gateway.GenerateKey()

	ks := h.gw.Keyring().KeysetProto(2, h.now)
	if err := gateway.AddKey(ks, newPub, gateway.KeyUseToken); err != nil {
		t.Fatal(err)
	}
	if err := gateway.AddKey(ks, newPub, gateway.KeyUseToken); gateway.ErrorCode(err) != gateway.EINVALID {
		t.Errorf("adding a key twice: got %v, want EINVALID", err)
	}
	h.applyKeyset(t, ks)
	h.tokenKey = newKey
	wantApproved(t, h.authorize(t, cart("1", "new-1", h.mint(t, "acct-1"), onigiri(1))))
	h.tokenKey = oldKey
	wantApproved(t, h.authorize(t, cart("1", "old-1", h.mint(t, "acct-1"), onigiri(1))))

	ks = h.gw.Keyring().KeysetProto(3, h.now)
	if err := gateway.RetireKey(ks, gateway.KeyID(oldPub)); err != nil {
		t.Fatal(err)
	}
	if err := gateway.RetireKey(ks, make([]byte, gateway.KeyIDSize)); gateway.ErrorCode(err) != gateway.ENOTFOUND {
		t.Errorf("retiring an unknown key: got %v, want ENOTFOUND", err)
	}
	h.applyKeyset(t, ks)
	res := h.authorize(t, cart("1", "old-2", h.mint(t, "acct-1"), onigiri(1)))
	wantDeclineRule(t, res, gateway.ReasonKeyRetired, "token.key_retired", "retired")
	h.tokenKey = newKey
	wantApproved(t, h.authorize(t, cart("1", "new-2", h.mint(t, "acct-1"), onigiri(1))))

	// Keyset version 2 still names the old key as current: refused.
	stale := h.gw.Keyring().KeysetProto(2, h.now.Add(-time.Hour))
	stale.Keys[0].Retired, stale.Keys[1].Retired = false, false
	raw, _ := gateway.SignKeyset(h.rootKey, stale)
	if _, _, err := h.gw.ApplyKeyset(context.Background(), raw); gateway.ErrorCode(err) != gateway.ESTALE {
		t.Fatalf("an older keyset: got %v, want ESTALE", err)
	}
	if k, _ := h.gw.Keyring().Lookup(gateway.KeyID(oldPub)); !k.Retired {
		t.Error("the old key is current again")
	}
}
