package gateway_test

import (
	"crypto/ed25519"
	"encoding/binary"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
)

// Fixed keys, so that a fuzz input means the same thing in every run.
var (
	fuzzRoot  = ed25519.NewKeyFromSeed([]byte("storegate fuzz root key seed 32b"))
	fuzzToken = ed25519.NewKeyFromSeed([]byte("storegate fuzz token key seed 32"))
)

func fuzzRing(tb testing.TB) *gateway.Keyring {
	tb.Helper()
	pub := fuzzToken.Public().(ed25519.PublicKey)
	ring, err := gateway.NewKeyring(1, []gateway.TrustedKey{{ID: gateway.KeyID(pub), Public: pub, Use: gateway.KeyUseToken}})
	if err != nil {
		tb.Fatal(err)
	}
	return ring
}

// FuzzVerifyClaims signs arbitrary bytes as a token's claims with a trusted
// key, so that fuzzing reaches what FuzzVerifyToken cannot: the claims
// decoder and the checks behind the signature. A token it accepts must be
// inside every limit at the time given, and mean the same claims when
// minted again.
func FuzzVerifyClaims(f *testing.F) {
	now := time.Unix(1794000060, 0)
	cti := []byte("fuzz-token-id-16")
	good := claimPairs(now, cti)
	f.Add(cborMap(f, good...), now.Unix())
	f.Add(cborMap(f, good...), now.Add(140*time.Second).Unix())
	f.Add(cborMap(f, append(good, pair{2, "acct-9999"})...), now.Unix())
	f.Add(indefinite(cborMap(f, good...)), now.Unix())
	f.Add(cborMap(f, withClaim(good, 4, int64(1<<63-1))...), now.Unix())
	f.Add(cborMap(f, withClaim(withClaim(good, 4, int64(1<<63-1)), 6, int64(1<<63-101))...), int64(1<<63-1))
	f.Add(cborMap(f, withClaim(withClaim(good, 4, int64(-1<<63)), 6, int64(-1<<63))...), int64(-1<<63))
	f.Add(cborMap(f, withClaim(good, "ofl", uint64(1<<63))...), now.Unix())
	f.Add([]byte{0xa0}, now.Unix())
	f.Add([]byte{}, now.Unix())

	ring := fuzzRing(f)
	hdr := protectedHeader(f, fuzzToken)
	f.Fuzz(func(t *testing.T, payload []byte, at int64) {
		text := asToken(sign1(t, fuzzToken, hdr, emptyMap, payload))
		now := time.Unix(at, 0)
		v := gateway.TokenVerifier{}
		tok, err := v.Verify(text, ring, now)
		if err != nil {
			if _, ok := gateway.TokenReason(err); !ok {
				t.Fatalf("error %v is not a token decline", err)
			}
			return
		}
		c := tok.Claims
		life := c.Expires.Sub(c.IssuedAt)
		switch {
		case life <= 0 || life > gateway.DefaultMaxTokenLifetime:
			t.Fatalf("accepted a lifetime of %s", life)
		case now.After(c.Expires.Add(gateway.DefaultClockSkew)):
			t.Fatalf("accepted at %v a token that expired at %v", now, c.Expires)
		case c.IssuedAt.After(now.Add(gateway.DefaultClockSkew)):
			t.Fatalf("accepted at %v a token issued at %v", now, c.IssuedAt)
		case len(c.TokenID) != gateway.TokenIDSize:
			t.Fatalf("accepted a %d-byte token id", len(c.TokenID))
		case c.Issuer == "" || c.Account == "" || c.Device == "" || len(c.Account) > 128:
			t.Fatalf("accepted empty or long text claims: %+v", c)
		case c.Assurance != gateway.AssurancePassword && c.Assurance != gateway.AssuranceDeviceBound:
			t.Fatalf("accepted assurance %d", c.Assurance)
		case c.OfflineAllowance < 0:
			t.Fatalf("accepted a negative offline allowance %d", c.OfflineAllowance)
		}
		again, err := gateway.MintToken(fuzzToken, c)
		if err != nil {
			t.Fatalf("re-mint accepted claims: %v", err)
		}
		tok2, err := v.Verify(again, ring, now)
		if err != nil {
			t.Fatalf("re-minted token refused: %v", err)
		}
		if !reflect.DeepEqual(tok2.Claims, c) {
			t.Fatalf("claims changed on re-mint:\n got %+v\nwant %+v", tok2.Claims, c)
		}
	})
}

// FuzzOpenKeyset opens arbitrary bytes as a keyset document, and arbitrary
// payloads signed by the root key: no input may panic, every refusal is
// EINVALID, and an accepted keyset holds only keys whose id is their own.
func FuzzOpenKeyset(f *testing.F) {
	rootPub := fuzzRoot.Public().(ed25519.PublicKey)
	tokPub := fuzzToken.Public().(ed25519.PublicKey)
	full := &documentv1.Keyset{Version: 7, IssuedAt: 1794000000, Keys: []*documentv1.KeyEntry{
		{Kid: gateway.KeyID(tokPub), PublicKey: tokPub, Use: documentv1.KeyUse_KEY_USE_TOKEN},
		{Kid: gateway.KeyID(rootPub), PublicKey: rootPub, Use: documentv1.KeyUse_KEY_USE_POLICY, Retired: true},
	}}
	for _, ks := range []*documentv1.Keyset{
		full,
		gateway.NewKeyset(1, time.Unix(1794000000, 0), tokPub),
		{Version: 0},
		{Version: 2, Keys: []*documentv1.KeyEntry{{Kid: []byte("12345678"), PublicKey: tokPub, Use: documentv1.KeyUse_KEY_USE_TOKEN}}},
		{Version: 3, Keys: []*documentv1.KeyEntry{{Kid: gateway.KeyID(tokPub), PublicKey: tokPub}}},
		{Version: 4, Keys: []*documentv1.KeyEntry{full.Keys[0], full.Keys[0]}},
	} {
		payload, err := proto.Marshal(ks)
		if err != nil {
			f.Fatal(err)
		}
		signed, err := gateway.SignDocument(fuzzRoot, gateway.ContentTypeKeyset, payload)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(signed, payload)
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte("\xd2\x84\x40\xa0\x40\x40"), []byte{0x08, 0x01})

	f.Fuzz(func(t *testing.T, raw, payload []byte) {
		check := func(raw []byte) {
			ring, err := gateway.OpenKeyset(raw, rootPub)
			if err != nil {
				if gateway.ErrorCode(err) != gateway.EINVALID {
					t.Fatalf("OpenKeyset error %v has code %q, want %q", err, gateway.ErrorCode(err), gateway.EINVALID)
				}
				return
			}
			if ring.Version < 1 {
				t.Fatalf("accepted keyset version %d", ring.Version)
			}
			for _, k := range ring.Keys() {
				if len(k.Public) != ed25519.PublicKeySize || string(k.ID) != string(gateway.KeyID(k.Public)) {
					t.Fatalf("accepted key %x under id %x", k.Public, k.ID)
				}
				if k.Use != gateway.KeyUseToken && k.Use != gateway.KeyUsePolicy {
					t.Fatalf("accepted key use %d", k.Use)
				}
				if got, ok := ring.Lookup(k.ID); !ok || !got.Public.Equal(k.Public) {
					t.Fatalf("Lookup(%x) = %v, %v", k.ID, got, ok)
				}
			}
		}
		check(raw)
		if len(payload) == 0 {
			return // go-cose refuses to sign an empty payload
		}
		signed, err := gateway.SignDocument(fuzzRoot, gateway.ContentTypeKeyset, payload)
		if err != nil {
			t.Fatal(err)
		}
		check(signed)
		// The same bytes signed as another kind of document are never a
		// keyset.
		policy, err := gateway.SignDocument(fuzzRoot, gateway.ContentTypePolicy, payload)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gateway.OpenKeyset(policy, rootPub); err == nil {
			t.Fatal("a document signed as a policy opened as a keyset")
		}
	})
}

// fuzzLines decodes basket lines from b: a length byte and the SKU, a length
// byte and the category, then the quantity and the unit price as 8 bytes
// each. repeat copies the lines, to reach the line limit.
func fuzzLines(b []byte, repeat uint8) []gateway.Line {
	var lines []gateway.Line
	take := func(n int) []byte {
		if n > len(b) {
			n = len(b)
		}
		out := b[:n]
		b = b[n:]
		return out
	}
	for len(b) > 0 {
		var l gateway.Line
		l.SKU = string(take(int(take(1)[0])))
		if len(b) > 0 {
			l.Category = string(take(int(take(1)[0])))
		}
		var num [16]byte
		copy(num[:], take(16))
		l.Quantity = int64(binary.BigEndian.Uint64(num[:8]))
		l.UnitPrice = int64(binary.BigEndian.Uint64(num[8:]))
		lines = append(lines, l)
	}
	out := lines
	for range int(repeat) {
		out = append(out, lines...)
	}
	return out
}

// FuzzAuthorizeRequest checks Validate against a slow restatement of the
// rules in exact arithmetic, and that the basket digest tells baskets apart.
func FuzzAuthorizeRequest(f *testing.F) {
	line := func(sku string, q, p int64) []byte {
		b := append([]byte{byte(len(sku))}, sku...)
		b = append(b, 4)
		b = append(b, "food"...)
		b = binary.BigEndian.AppendUint64(b, uint64(q))
		return binary.BigEndian.AppendUint64(b, uint64(p))
	}
	two := append(line("4901234567894", 2, 300), line("4909876543210", 1, 600)...)
	f.Add("1", "t1", "JPY", "SGP1:X", "", int64(1200), two, uint8(0))
	f.Add("1", "t1", "JPY", "", "scan-1", int64(1200), two, uint8(0))
	f.Add("1", "t1", "JPY", "SGP1:X", "", int64(-1<<63), line("a", 1<<32, 1<<31), uint8(0))
	f.Add("1", "t1", "JPY", "SGP1:X", "", int64(2*gateway.MaxQuantity*gateway.MaxUnitPrice), line("x", gateway.MaxQuantity, gateway.MaxUnitPrice), uint8(1))
	f.Add("1", "t1", "JPY", "SGP1:X", "", int64(201*580), line("tobacco", 1, 580), uint8(200))
	f.Add("", "", "jpy", "", "", int64(0), []byte{}, uint8(0))
	f.Add("lane 1", "t\x00", "JPY", strings.Repeat("A", 1100), "x y", int64(1), line("", 0, -1), uint8(0))

	f.Fuzz(func(t *testing.T, lane, txn, currency, token, scanID string, total int64, lineBytes []byte, repeat uint8) {
		req := &gateway.AuthorizeRequest{Lane: lane, POSTxnID: txn, Currency: currency, Token: token, ScanID: scanID,
			Total: total, Lines: fuzzLines(lineBytes, repeat)}
		err := req.Validate("JPY")
		if err != nil {
			if gateway.ErrorCode(err) != gateway.EINVALID {
				t.Fatalf("Validate error %v has code %q, want %q", err, gateway.ErrorCode(err), gateway.EINVALID)
			}
			msg := gateway.ErrorMessage(err)
			named := false
			for _, field := range []string{"lane", "pos_transaction_id", "currency", "credential", "token", "scan_id", "lines", "total"} {
				named = named || strings.HasPrefix(msg, field)
			}
			if !named {
				t.Fatalf("Validate error %q names no field", msg)
			}
		} else {
			sum := new(big.Int)
			for i, l := range req.Lines {
				if l.SKU == "" || len(l.SKU) > gateway.MaxSKULength || len(l.Category) > gateway.MaxCategoryLen ||
					l.Quantity < 1 || l.Quantity > gateway.MaxQuantity || l.UnitPrice < 0 || l.UnitPrice > gateway.MaxUnitPrice {
					t.Fatalf("accepted line %d: %+v", i, l)
				}
				sum.Add(sum, new(big.Int).Mul(big.NewInt(l.Quantity), big.NewInt(l.UnitPrice)))
			}
			switch {
			case !gateway.ValidID(lane) || !gateway.ValidID(txn) || currency != "JPY":
				t.Fatalf("accepted lane %q, transaction %q, currency %q", lane, txn, currency)
			case (token == "") == (scanID == "") || len(token) > gateway.MaxTokenText:
				t.Fatalf("accepted token %q with scan id %q", token, scanID)
			case len(req.Lines) == 0 || len(req.Lines) > gateway.MaxLines:
				t.Fatalf("accepted %d lines", len(req.Lines))
			case total <= 0 || sum.Cmp(big.NewInt(total)) != 0:
				t.Fatalf("accepted total %d for lines summing to %s", total, sum)
			}
		}

		// The digest covers the basket and nothing else.
		d := req.Digest()
		other := *req
		other.Token, other.ScanID = token+"x", ""
		if other.Digest() != d {
			t.Fatal("the digest depends on the credential")
		}
		other = *req
		other.Total++
		if other.Digest() == d {
			t.Fatal("two totals share a digest")
		}
		if len(req.Lines) > 0 {
			other = *req
			other.Lines = append([]gateway.Line(nil), req.Lines...)
			other.Lines[0].SKU += "x"
			if other.Digest() == d {
				t.Fatal("two SKUs share a digest")
			}
			other.Lines = append(append([]gateway.Line(nil), req.Lines...), req.Lines[0])
			if other.Digest() == d {
				t.Fatal("two line counts share a digest")
			}
		}
	})
}
