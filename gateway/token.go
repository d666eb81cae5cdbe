package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	// crypto/sha256 is used directly here, which also links it in for
	// go-cose: it looks hashes up through crypto.Hash and fails at run time
	// without it.
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// Token format limits. Sizes are checked before any decoding, so a hostile
// input costs at most this much work.
const (
	// TokenPrefix starts every payment token.
	TokenPrefix = "SGP1:"
	// MaxTokenText is the longest token text accepted, prefix included. A
	// real token is about 250 characters.
	MaxTokenText = 1024
	// TokenIDSize is the size of the cti claim.
	TokenIDSize = 16
	// DefaultMaxTokenLifetime caps exp − iat (DESIGN.md).
	DefaultMaxTokenLifetime = 300 * time.Second
	// DefaultClockSkew is how far iat may lie in the future and exp in the
	// past.
	DefaultClockSkew = 30 * time.Second
	// maxClaimText bounds the text claims.
	maxClaimText = 128
)

// Assurance levels of the "aal" claim.
const (
	// AssurancePassword: the token came from a session opened with a
	// password alone.
	AssurancePassword = 1
	// AssuranceDeviceBound: a device-bound key with a second factor.
	AssuranceDeviceBound = 2
)

// Claims are a payment token's CWT claims.
type Claims struct {
	Issuer    string
	Account   string
	IssuedAt  time.Time
	Expires   time.Time
	TokenID   []byte
	Device    string
	Assurance int
	// OfflineAllowance is the most, in minor units, that the store may
	// approve offline against this token.
	OfflineAllowance int64
}

// Token is a verified payment token.
type Token struct {
	Claims
	KeyID []byte
	// Fingerprint is a short, non-reversible name for the token text, safe
	// for logs and for the POS.
	Fingerprint string
}

// TokenError is a token that must be declined, with the reason to give.
type TokenError struct {
	Reason Reason
	Detail string
}

// Error returns the reason and its detail.
func (e *TokenError) Error() string { return e.Reason.String() + ": " + e.Detail }

func tokenErr(r Reason, format string, args ...any) error {
	return &TokenError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// TokenReason returns the decline reason of a token error, and false for
// other errors.
func TokenReason(err error) (Reason, bool) {
	var te *TokenError
	if errors.As(err, &te) {
		return te.Reason, true
	}
	return ReasonNone, false
}

// TokenVerifier checks payment tokens against a keyring.
type TokenVerifier struct {
	// MaxLifetime caps exp − iat; zero means DefaultMaxTokenLifetime.
	MaxLifetime time.Duration
	// Skew is the clock skew allowance; zero means DefaultClockSkew.
	Skew time.Duration
}

// cwtClaims is the wire form of the claims. Pointers tell a missing claim from
// a zero one. Integer keys come first in core deterministic order, then the
// text keys, which is what CoreDetEncOptions writes.
type cwtClaims struct {
	Iss *string `cbor:"1,keyasint,omitempty"`
	Sub *string `cbor:"2,keyasint,omitempty"`
	Exp *int64  `cbor:"4,keyasint,omitempty"`
	Iat *int64  `cbor:"6,keyasint,omitempty"`
	Cti []byte  `cbor:"7,keyasint,omitempty"`
	Aal *int64  `cbor:"aal,omitempty"`
	Dev *string `cbor:"dev,omitempty"`
	Ofl *int64  `cbor:"ofl,omitempty"`
}

var (
	claimsEnc cbor.EncMode
	claimsDec cbor.DecMode
)

func init() {
	var err error
	if claimsEnc, err = cbor.CoreDetEncOptions().EncMode(); err != nil {
		panic(err)
	}
	claimsDec, err = cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       32,
		UTF8:              cbor.UTF8RejectInvalid,
		IntDec:            cbor.IntDecConvertSignedOrFail,
		ExtraReturnErrors: cbor.ExtraDecErrorNone,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Fingerprint returns a short fingerprint of a credential's text: the first
// 6 bytes of its SHA-256, in hex. It names a token in logs without revealing
// it.
func Fingerprint(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:6])
}

// NewTokenID returns 16 random bytes for a token's cti claim.
func NewTokenID() ([]byte, error) {
	id := make([]byte, TokenIDSize)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("token id: %w", err)
	}
	return id, nil
}

// MintToken signs claims with a token-signing key and returns the token text.
// The central service does this for a customer's device; tools and tests use
// it too.
func MintToken(priv ed25519.PrivateKey, c Claims) (string, error) {
	if len(c.TokenID) != TokenIDSize {
		return "", Errorf(EINVALID, "token id is %d bytes, want %d", len(c.TokenID), TokenIDSize)
	}
	iss, sub, dev := c.Issuer, c.Account, c.Device
	exp, iat := c.Expires.Unix(), c.IssuedAt.Unix()
	aal, ofl := int64(c.Assurance), c.OfflineAllowance
	payload, err := claimsEnc.Marshal(cwtClaims{
		Iss: &iss, Sub: &sub, Exp: &exp, Iat: &iat, Cti: c.TokenID,
		Aal: &aal, Dev: &dev, Ofl: &ofl,
	})
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	raw, err := signCOSE(priv, nil, payload)
	if err != nil {
		return "", err
	}
	return TokenPrefix + Base45Encode(raw), nil
}

// signCOSE makes a tagged COSE_Sign1 with alg EdDSA and the key's kid in the
// protected header, plus the content type when one is given.
func signCOSE(priv ed25519.PrivateKey, contentType any, payload []byte) ([]byte, error) {
	signer, err := cose.NewSigner(cose.AlgorithmEdDSA, priv)
	if err != nil {
		return nil, fmt.Errorf("cose signer: %w", err)
	}
	hdr := cose.ProtectedHeader{
		cose.HeaderLabelAlgorithm: cose.AlgorithmEdDSA,
		cose.HeaderLabelKeyID:     KeyID(priv.Public().(ed25519.PublicKey)),
	}
	if contentType != nil {
		hdr[cose.HeaderLabelContentType] = contentType
	}
	msg := &cose.Sign1Message{Headers: cose.Headers{Protected: hdr}, Payload: payload}
	if err := msg.Sign(rand.Reader, nil, signer); err != nil {
		return nil, fmt.Errorf("cose sign: %w", err)
	}
	return msg.MarshalCBOR()
}

// decodeCOSE decodes a tagged COSE_Sign1 and returns it with the kid of its
// protected header. Algorithm, kid and everything else that matters must be
// protected: an unprotected header that is not empty is refused, so nothing
// unsigned can steer verification.
func decodeCOSE(raw []byte) (*cose.Sign1Message, []byte, error) {
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(raw); err != nil {
		return nil, nil, fmt.Errorf("not a COSE_Sign1: %w", err)
	}
	if len(msg.Headers.Unprotected) != 0 {
		return nil, nil, errors.New("unprotected header parameters are not accepted")
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil {
		return nil, nil, fmt.Errorf("protected alg: %w", err)
	}
	if alg != cose.AlgorithmEdDSA {
		return nil, nil, fmt.Errorf("algorithm %v, want EdDSA (-8)", alg)
	}
	kid, ok := msg.Headers.Protected[cose.HeaderLabelKeyID].([]byte)
	if !ok || len(kid) != KeyIDSize {
		return nil, nil, fmt.Errorf("protected kid missing or not %d bytes", KeyIDSize)
	}
	return &msg, kid, nil
}

// verifyCOSE checks msg's signature with pub.
func verifyCOSE(msg *cose.Sign1Message, pub ed25519.PublicKey) error {
	v, err := cose.NewVerifier(cose.AlgorithmEdDSA, pub)
	if err != nil {
		return fmt.Errorf("cose verifier: %w", err)
	}
	return msg.Verify(nil, v)
}

// Verify decodes and checks a payment token at time now. Every failure is a
// *TokenError carrying the decline reason. The order matters: sizes first,
// then the envelope, the key, the signature, and only then the claims, so
// that no unsigned claim is ever looked at.
func (v TokenVerifier) Verify(text string, keys *Keyring, now time.Time) (*Token, error) {
	maxLife, skew := v.MaxLifetime, v.Skew
	if maxLife <= 0 {
		maxLife = DefaultMaxTokenLifetime
	}
	if skew <= 0 {
		skew = DefaultClockSkew
	}
	if len(text) > MaxTokenText {
		return nil, tokenErr(ReasonInvalidToken, "token is %d characters, at most %d accepted", len(text), MaxTokenText)
	}
	if allDigits(text) {
		// Digits only: a payment code of the wrong length (a misread or
		// mistyped barcode), not a token with its prefix missing.
		return nil, tokenErr(ReasonInvalidToken, "a numeric payment code has %d to %d digits; this one has %d",
			MinPaymentCodeDigits, MaxPaymentCodeDigits, len(text))
	}
	body, ok := strings.CutPrefix(text, TokenPrefix)
	if !ok {
		return nil, tokenErr(ReasonInvalidToken, "token does not start with %q", TokenPrefix)
	}
	raw, err := Base45Decode(body)
	if err != nil {
		return nil, tokenErr(ReasonInvalidToken, "%v", err)
	}
	msg, kid, err := decodeCOSE(raw)
	if err != nil {
		return nil, tokenErr(ReasonInvalidToken, "%v", err)
	}
	key, ok := keys.Lookup(kid)
	if !ok || key.Use != KeyUseToken {
		// A policy key is not a token key: the gateway holds no token key by
		// that id.
		return nil, tokenErr(ReasonUnknownKey, "no token-signing key %s", kidString(kid))
	}
	if key.Retired {
		return nil, tokenErr(ReasonKeyRetired, "token-signing key %s is retired", kidString(kid))
	}
	if err := verifyCOSE(msg, key.Public); err != nil {
		return nil, tokenErr(ReasonBadSignature, "signature does not verify under key %s", kidString(kid))
	}
	var wc cwtClaims
	if err := claimsDec.Unmarshal(msg.Payload, &wc); err != nil {
		return nil, tokenErr(ReasonInvalidToken, "claims: %v", err)
	}
	c, err := wc.claims()
	if err != nil {
		return nil, err
	}
	life := c.Expires.Sub(c.IssuedAt)
	if life <= 0 || life > maxLife {
		return nil, tokenErr(ReasonInvalidToken, "lifetime %s outside (0, %s]", life, maxLife)
	}
	if now.After(c.Expires.Add(skew)) {
		return nil, tokenErr(ReasonExpired, "expired at %s", c.Expires.UTC().Format(time.RFC3339))
	}
	if c.IssuedAt.After(now.Add(skew)) {
		return nil, tokenErr(ReasonNotYetValid, "issued in the future, at %s", c.IssuedAt.UTC().Format(time.RFC3339))
	}
	return &Token{Claims: c, KeyID: kid, Fingerprint: Fingerprint(text)}, nil
}

// claims checks that every claim is present and in range.
func (w cwtClaims) claims() (Claims, error) {
	switch {
	case w.Iss == nil || *w.Iss == "" || len(*w.Iss) > maxClaimText:
		return Claims{}, tokenErr(ReasonInvalidToken, "claim iss (1) missing or out of range")
	case w.Sub == nil || *w.Sub == "" || len(*w.Sub) > maxClaimText:
		return Claims{}, tokenErr(ReasonInvalidToken, "claim sub (2) missing or out of range")
	case w.Exp == nil || w.Iat == nil:
		return Claims{}, tokenErr(ReasonInvalidToken, "claims exp (4) and iat (6) are required")
	case len(w.Cti) != TokenIDSize:
		return Claims{}, tokenErr(ReasonInvalidToken, "claim cti (7) must be %d bytes", TokenIDSize)
	case w.Dev == nil || *w.Dev == "" || len(*w.Dev) > maxClaimText:
		return Claims{}, tokenErr(ReasonInvalidToken, "claim dev missing or out of range")
	case w.Aal == nil || (*w.Aal != AssurancePassword && *w.Aal != AssuranceDeviceBound):
		return Claims{}, tokenErr(ReasonInvalidToken, "claim aal must be 1 or 2")
	case w.Ofl == nil || *w.Ofl < 0:
		return Claims{}, tokenErr(ReasonInvalidToken, "claim ofl missing or negative")
	}
	return Claims{
		Issuer:           *w.Iss,
		Account:          *w.Sub,
		IssuedAt:         time.Unix(*w.Iat, 0),
		Expires:          time.Unix(*w.Exp, 0),
		TokenID:          w.Cti,
		Device:           *w.Dev,
		Assurance:        int(*w.Aal),
		OfflineAllowance: *w.Ofl,
	}, nil
}
