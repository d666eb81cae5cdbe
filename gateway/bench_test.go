package gateway_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"storegate/gateway"
)

// BenchmarkTokenVerifier_Verify measures the whole token check of one
// Authorize (base45, COSE_Sign1, CBOR claims, Ed25519), the largest CPU
// cost of a decision in storegate-bench's profiles; Ed25519 is the bare
// signature check on the same bytes, its floor.
func BenchmarkTokenVerifier_Verify(b *testing.B) {
	pub, priv, err := gateway.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	ring, err := gateway.NewKeyring(1, []gateway.TrustedKey{{ID: gateway.KeyID(pub), Public: pub, Use: gateway.KeyUseToken}})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	id, err := gateway.NewTokenID()
	if err != nil {
		b.Fatal(err)
	}
	tok, err := gateway.MintToken(priv, gateway.Claims{
		Issuer: "storegate-hq", Account: "acct-0001", IssuedAt: now, Expires: now.Add(time.Minute),
		TokenID: id, Device: "phone-1", Assurance: gateway.AssuranceDeviceBound, OfflineAllowance: 5000,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Token", func(b *testing.B) {
		var v gateway.TokenVerifier
		for b.Loop() {
			if _, err := v.Verify(tok, ring, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Ed25519", func(b *testing.B) {
		msg := []byte(tok)
		sig := ed25519.Sign(priv, msg)
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("verify failed")
			}
		}
	})
}
