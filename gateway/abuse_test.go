package gateway_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
)

// Hostile tokens, built by hand: every one must be declined with its own
// reason, at the verifier and through Authorize, and none may reach central.

// abuseKeys are the keys an attacker's tokens are signed with: the live token
// key, a retired token key and the policy key, all in one keyset signed by
// the root key.
type abuseKeys struct {
	token, retired, policy ed25519.PrivateKey
	keyset                 []byte
}

func newAbuseKeys(t testing.TB, root ed25519.PrivateKey, version uint64) *abuseKeys {
	t.Helper()
	k := &abuseKeys{}
	var entries []*documentv1.KeyEntry
	for _, e := range []struct {
		priv    *ed25519.PrivateKey
		use     documentv1.KeyUse
		retired bool
	}{
		{&k.token, documentv1.KeyUse_KEY_USE_TOKEN, false},
		{&k.retired, documentv1.KeyUse_KEY_USE_TOKEN, true},
		{&k.policy, documentv1.KeyUse_KEY_USE_POLICY, false},
	} {
		pub, priv, err := gateway.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		*e.priv = priv
		entries = append(entries, &documentv1.KeyEntry{Kid: gateway.KeyID(pub), PublicKey: pub, Use: e.use, Retired: e.retired})
	}
	var err error
	k.keyset, err = gateway.SignKeyset(root, &documentv1.Keyset{Version: version, IssuedAt: 1794000000, Keys: entries})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ring opens the keyset the way the gateway does, so that the retired flag
// and the policy use travel through the signed document.
func (k *abuseKeys) ring(t testing.TB, root ed25519.PrivateKey) *gateway.Keyring {
	t.Helper()
	ring, err := gateway.OpenKeyset(k.keyset, root.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

func kidOf(priv ed25519.PrivateKey) []byte { return gateway.KeyID(priv.Public().(ed25519.PublicKey)) }

// pair is one key and value of a hand-encoded CBOR map.
type pair struct{ key, value any }

// cborMap encodes pairs as a definite-length CBOR map in the order given,
// duplicates kept: encoders refuse duplicate keys, so the header is written
// by hand.
func cborMap(t testing.TB, pairs ...pair) []byte {
	t.Helper()
	if len(pairs) >= 24 {
		t.Fatalf("cborMap: %d pairs, at most 23 supported", len(pairs))
	}
	b := []byte{0xa0 | byte(len(pairs))}
	for _, p := range pairs {
		for _, x := range []any{p.key, p.value} {
			enc, err := cbor.Marshal(x)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, enc...)
		}
	}
	return b
}

// claimPairs are the claims of a good token issued 10 s before now with a
// 120 s lifetime, in the order core deterministic encoding writes them.
func claimPairs(now time.Time, cti []byte) []pair {
	return []pair{
		{1, "storegate-hq"}, {2, "acct-0001"},
		{4, now.Add(110 * time.Second).Unix()}, {6, now.Add(-10 * time.Second).Unix()},
		{7, cti}, {"aal", 2}, {"dev", "phone-1"}, {"ofl", 5000},
	}
}

// withClaim returns pairs with the value of key replaced.
func withClaim(pairs []pair, key, value any) []pair {
	out := append([]pair(nil), pairs...)
	for i := range out {
		if out[i].key == key {
			out[i].value = value
		}
	}
	return out
}

// protectedHeader is the header a real token carries: alg EdDSA and the kid.
func protectedHeader(t testing.TB, priv ed25519.PrivateKey) []byte {
	return cborMap(t, pair{1, -8}, pair{4, kidOf(priv)})
}

// emptyMap is the unprotected header of a real token.
var emptyMap = []byte{0xa0}

// sign1 builds a tagged COSE_Sign1 and signs it with Ed25519 over the
// Sig_structure of RFC 9052 section 4.4, whatever its headers claim, so that
// a test can put anything in them.
func sign1(t testing.TB, priv ed25519.PrivateKey, protected, unprotected, payload []byte) []byte {
	t.Helper()
	tbs, err := cbor.Marshal([]any{"Signature1", protected, []byte{}, payload})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := cbor.Marshal(cbor.Tag{Number: 18, Content: []any{protected, cbor.RawMessage(unprotected), payload, ed25519.Sign(priv, tbs)}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func asToken(raw []byte) string { return gateway.TokenPrefix + gateway.Base45Encode(raw) }

// abuseCase is one hostile token and the reason it must be declined with;
// ReasonNone marks a control that must verify.
type abuseCase struct {
	name  string
	token string
	want  gateway.Reason
}

// abuseCases builds the hostile tokens at now. Each comment says which check
// refuses it, and what would happen without that check.
func abuseCases(t testing.TB, k *abuseKeys, now time.Time) []abuseCase {
	t.Helper()
	n := 0
	cti := func() []byte {
		n++
		id := make([]byte, gateway.TokenIDSize)
		copy(id, fmt.Sprintf("abuse-%010d", n))
		return id
	}
	build := func(priv ed25519.PrivateKey, protected, unprotected []byte, claims []pair) string {
		return asToken(sign1(t, priv, protected, unprotected, cborMap(t, claims...)))
	}
	good := func() []pair { return claimPairs(now, cti()) }
	hdr := protectedHeader(t, k.token)

	control := build(k.token, hdr, emptyMap, good())
	body := strings.TrimPrefix(control, gateway.TokenPrefix)
	controlRaw, err := gateway.Base45Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	lifetime := func(iat time.Time, life time.Duration) []pair {
		c := withClaim(good(), 6, iat.Unix())
		return withClaim(c, 4, iat.Add(life).Unix())
	}

	cases := []abuseCase{
		// The hand-built token is a real one: it verifies. Every case below
		// changes one thing about it.
		{"Control", control, gateway.ReasonNone},

		// Algorithm confusion: the header says ES256, the signature is
		// Ed25519. decodeCOSE refuses any alg but EdDSA; without it,
		// go-cose's own alg check would answer bad_signature instead.
		{"AlgES256", build(k.token, cborMap(t, pair{1, -7}, pair{4, kidOf(k.token)}), emptyMap, good()), gateway.ReasonInvalidToken},
		{"AlgMissing", build(k.token, cborMap(t, pair{4, kidOf(k.token)}), emptyMap, good()), gateway.ReasonInvalidToken},
		{"AlgAsText", build(k.token, cborMap(t, pair{1, "EdDSA"}, pair{4, kidOf(k.token)}), emptyMap, good()), gateway.ReasonInvalidToken},

		// The kid only in the unprotected header, where anyone can change
		// it after signing: refused, only a protected kid counts.
		{"UnprotectedKid", build(k.token, cborMap(t, pair{1, -8}), cborMap(t, pair{4, kidOf(k.token)}), good()), gateway.ReasonInvalidToken},
		// A correctly signed token with an unprotected kid added beside the
		// protected one. Nothing reads the unprotected kid, so without the
		// refusal of a non-empty unprotected header this token verifies.
		{"UnprotectedHeaderAdded", build(k.token, hdr, cborMap(t, pair{4, kidOf(k.retired)}), good()), gateway.ReasonInvalidToken},
		{"UnprotectedAlg", build(k.token, hdr, cborMap(t, pair{1, -8}), good()), gateway.ReasonInvalidToken},
		{"KidWrongSize", build(k.token, cborMap(t, pair{1, -8}, pair{4, kidOf(k.token)[:7]}), emptyMap, good()), gateway.ReasonInvalidToken},
		// go-cose decodes headers with duplicate keys refused.
		{"DuplicateProtectedAlg", build(k.token, cborMap(t, pair{1, -8}, pair{1, -8}, pair{4, kidOf(k.token)}), emptyMap, good()), gateway.ReasonInvalidToken},

		// A retired key's signature is still good; the keyset says no.
		{"RetiredKey", build(k.retired, protectedHeader(t, k.retired), emptyMap, good()), gateway.ReasonKeyRetired},
		// The policy key is trusted, but not for tokens: the gateway holds no
		// token key by its id.
		{"PolicyKey", build(k.policy, protectedHeader(t, k.policy), emptyMap, good()), gateway.ReasonUnknownKey},

		// Lifetime: exp − iat over the 300 s cap, or not positive.
		{"LifetimeOverCap", build(k.token, hdr, emptyMap, lifetime(now.Add(-10*time.Second), 301*time.Second)), gateway.ReasonInvalidToken},
		{"LifetimeAtCap", build(k.token, hdr, emptyMap, lifetime(now.Add(-10*time.Second), 300*time.Second)), gateway.ReasonNone},
		{"LifetimeNegative", build(k.token, hdr, emptyMap, lifetime(now.Add(-10*time.Second), -time.Second)), gateway.ReasonInvalidToken},
		{"LifetimeZero", build(k.token, hdr, emptyMap, lifetime(now.Add(-10*time.Second), 0)), gateway.ReasonInvalidToken},

		// iat past the 30 s skew allowance in the future; exactly at it is
		// still accepted.
		{"IssuedInTheFuture", build(k.token, hdr, emptyMap, lifetime(now.Add(31*time.Second), time.Minute)), gateway.ReasonNotYetValid},
		{"IssuedAtSkewEdge", build(k.token, hdr, emptyMap, lifetime(now.Add(30*time.Second), time.Minute)), gateway.ReasonNone},

		// Duplicate claims: which one counts would depend on the decoder.
		// Without DupMapKeyEnforcedAPF the last one silently wins and these
		// verify, naming another account or a bigger offline allowance.
		{"DuplicateSub", build(k.token, hdr, emptyMap, append(good(), pair{2, "acct-9999"})), gateway.ReasonInvalidToken},
		{"DuplicateOfl", build(k.token, hdr, emptyMap, append(good(), pair{"ofl", 1_000_000})), gateway.ReasonInvalidToken},
		{"DuplicateExp", build(k.token, hdr, emptyMap, append(good(), pair{4, now.Add(time.Hour).Unix()})), gateway.ReasonInvalidToken},

		// Trailing bytes, after the COSE array or inside the signed payload
		// after the claims map. A decoder that stops at the first item would
		// accept both.
		{"TrailingAfterCOSE", asToken(append(append([]byte(nil), controlRaw...), 0x00)), gateway.ReasonInvalidToken},
		{"TrailingAfterClaims", asToken(sign1(t, k.token, hdr, emptyMap, append(cborMap(t, good()...), 0xf6))), gateway.ReasonInvalidToken},
		{"UntaggedCOSE", asToken(controlRaw[1:]), gateway.ReasonInvalidToken},

		// The claims' encoding: indefinite lengths, tags, wrong types,
		// missing or short claims.
		{"IndefiniteClaims", asToken(sign1(t, k.token, hdr, emptyMap, indefinite(cborMap(t, good()...)))), gateway.ReasonInvalidToken},
		{"TaggedExp", build(k.token, hdr, emptyMap, withClaim(good(), 4, cbor.Tag{Number: 1, Content: now.Add(time.Minute).Unix()})), gateway.ReasonInvalidToken},
		{"FloatExp", build(k.token, hdr, emptyMap, withClaim(good(), 4, float64(now.Add(time.Minute).Unix()))), gateway.ReasonInvalidToken},
		{"ShortTokenID", build(k.token, hdr, emptyMap, withClaim(good(), 7, make([]byte, 15))), gateway.ReasonInvalidToken},
		{"MissingSub", build(k.token, hdr, emptyMap, dropClaim(good(), 2)), gateway.ReasonInvalidToken},
		{"NegativeOfl", build(k.token, hdr, emptyMap, withClaim(good(), "ofl", -1)), gateway.ReasonInvalidToken},
		{"AssuranceThree", build(k.token, hdr, emptyMap, withClaim(good(), "aal", 3)), gateway.ReasonInvalidToken},

		// The text around the COSE bytes.
		{"PrefixSGP2", "SGP2:" + body, gateway.ReasonInvalidToken},
		{"PrefixLowercase", "sgp1:" + body, gateway.ReasonInvalidToken},
		{"PrefixMissing", body, gateway.ReasonInvalidToken},
		{"PrefixNoColon", "SGP1" + body, gateway.ReasonInvalidToken},
		{"LeadingSpace", " " + control, gateway.ReasonInvalidToken},
		{"TrailingNewline", control + "\n", gateway.ReasonInvalidToken},
		{"Base45Lowercase", gateway.TokenPrefix + strings.ToLower(body), gateway.ReasonInvalidToken},
		{"Base45OutsideAlphabet", gateway.TokenPrefix + body[:len(body)-3] + "#AB", gateway.ReasonInvalidToken},
		{"Base45GroupOverflow", gateway.TokenPrefix + body[:len(body)-3] + "GGW", gateway.ReasonInvalidToken},
		{"TooLong", control + strings.Repeat("0", gateway.MaxTokenText), gateway.ReasonInvalidToken},
	}
	// Truncation at every length: no prefix of a good token is a token.
	for cut := len(gateway.TokenPrefix); cut < len(control); cut++ {
		cases = append(cases, abuseCase{fmt.Sprintf("Truncated%d", cut), control[:cut], gateway.ReasonInvalidToken})
	}
	return cases
}

// indefinite rewrites a definite-length map header (0xa0|n) as an
// indefinite-length map (0xbf … 0xff).
func indefinite(m []byte) []byte {
	out := append([]byte{0xbf}, m[1:]...)
	return append(out, 0xff)
}

func dropClaim(pairs []pair, key any) []pair {
	var out []pair
	for _, p := range pairs {
		if p.key != key {
			out = append(out, p)
		}
	}
	return out
}

func TestTokenAbuse_Verify(t *testing.T) {
	_, root, _ := gateway.GenerateKey()
	k := newAbuseKeys(t, root, 1)
	ring := k.ring(t, root)
	now := time.Unix(1794000060, 0)

	// The hand encoder writes what MintToken writes, byte for byte, so
	// every case differs from a real token only in what it names.
	cti := []byte("abuse-0000000001")
	minted, err := gateway.MintToken(k.token, gateway.Claims{
		Issuer: "storegate-hq", Account: "acct-0001", IssuedAt: now.Add(-10 * time.Second), Expires: now.Add(110 * time.Second),
		TokenID: cti, Device: "phone-1", Assurance: 2, OfflineAllowance: 5000,
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := abuseCases(t, k, now)
	if cases[0].name != "Control" || cases[0].token != minted {
		t.Fatalf("hand-built control token differs from MintToken's\n got %s\nwant %s", cases[0].token, minted)
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := gateway.TokenVerifier{}.Verify(c.token, ring, now)
			if c.want == gateway.ReasonNone {
				if err != nil {
					t.Fatalf("Verify: %v, want the token accepted", err)
				}
				if tok.Account != "acct-0001" {
					t.Fatalf("account = %q, want acct-0001", tok.Account)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted the token (account %q, ofl %d), want %v", tok.Account, tok.OfflineAllowance, c.want)
			}
			got, ok := gateway.TokenReason(err)
			if !ok || got != c.want {
				t.Fatalf("reason = %v (%v), want %v", got, err, c.want)
			}
		})
	}
}

// The same tokens through Authorize: each declined with its reason and
// audited, nothing queued for settlement, and central never asked.
func TestTokenAbuse_Authorize(t *testing.T) {
	h := newHarness(t)
	k := newAbuseKeys(t, h.rootKey, 2)
	if _, _, err := h.gw.ApplyKeyset(context.Background(), k.keyset); err != nil {
		t.Fatal(err)
	}
	declines := uint64(0)
	for i, c := range abuseCases(t, k, h.now) {
		req := basket("1", fmt.Sprintf("abuse-%d", i), c.token)
		switch {
		case c.want == gateway.ReasonNone:
			continue
		case len(c.token) > gateway.MaxTokenText:
			// Too long to be a token: a malformed request, not a decision.
			if _, err := h.gw.Authorize(context.Background(), req); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Errorf("%s: err = %v, want EINVALID", c.name, err)
			}
			continue
		}
		res := h.authorize(t, req)
		if res.Decision.Approved || res.Decision.Reason != c.want {
			t.Errorf("%s: decision approved %v reason %v (%s), want declined %v", c.name, res.Decision.Approved, res.Decision.Reason, res.Decision.Message, c.want)
		}
		if want := "token." + c.want.String(); res.Decision.Rule != want {
			t.Errorf("%s: rule %q, want %q", c.name, res.Decision.Rule, want)
		}
		declines++
	}
	if got := h.central.calls.Load(); got != 0 {
		t.Errorf("central called %d times for hostile tokens, want 0", got)
	}
	if st, _ := h.store.OutboxStats(context.Background()); st.Depth != 0 {
		t.Errorf("outbox depth = %d after declines only, want 0", st.Depth)
	}
	if n := h.auditCount(t); n != declines {
		t.Errorf("audit records = %d, want %d: every decline is audited", n, declines)
	}
}
