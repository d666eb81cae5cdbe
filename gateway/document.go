package gateway

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/veraison/go-cose"
	"google.golang.org/protobuf/proto"

	documentv1 "storegate/proto/storegate/document/v1"
)

// Content types of HQ's signed documents. Each is in the COSE protected
// header, so a document signed as one kind is never accepted as another.
const (
	ContentTypeKeyset = "application/storegate.keyset+proto"
	ContentTypePolicy = "application/storegate.policy+proto"
	ContentTypeFreeze = "application/storegate.freeze+proto"
)

// MaxDocumentSize bounds a signed document before any decoding.
const MaxDocumentSize = 1 << 20

// MaxVersionStep is the furthest one signed keyset, policy or freeze-list
// snapshot may move its scope's version past the version held (freeze
// deltas move exactly one). Without it a document signed at version
// 2^64−1, by mistake or by a thief with the key, would lock its scope for
// ever: nothing could follow it, not even the emergency stop. The gateway
// holds it against the version it holds; the first document of a scope it
// takes at any version, so that a store joining late catches up with HQ's,
// whose publisher holds every version to the same step from 1 on.
const MaxVersionStep = 1000

// CheckVersionStep returns an EINVALID error naming what when next is more
// than MaxVersionStep past held; nil otherwise, older versions included
// (callers refuse those as ESTALE).
func CheckVersionStep(what string, held, next uint64) error {
	if next > held && next-held > MaxVersionStep {
		return Errorf(EINVALID, "%s version %d is more than %d past the version held, %d: refused, so that no one document can put its scope beyond every later one",
			what, next, MaxVersionStep, held)
	}
	return nil
}

// DocumentKind names a kind of signed document.
type DocumentKind string

// Document kinds, as stored.
const (
	DocumentKeyset DocumentKind = "keyset"
	DocumentPolicy DocumentKind = "policy"
	DocumentFreeze DocumentKind = "freeze"
)

// SignDocument signs a document payload with priv, naming contentType in the
// protected header.
func SignDocument(priv ed25519.PrivateKey, contentType string, payload []byte) ([]byte, error) {
	return signCOSE(priv, contentType, payload)
}

// OpenDocument checks a signed document and returns its payload and the kid
// that signed it. lookup returns the public key trusted for that kid and use,
// or false.
func OpenDocument(raw []byte, contentType string, lookup func(kid []byte) (ed25519.PublicKey, bool)) ([]byte, []byte, error) {
	if len(raw) == 0 || len(raw) > MaxDocumentSize {
		return nil, nil, Errorf(EINVALID, "signed document is %d bytes, want 1 to %d", len(raw), MaxDocumentSize)
	}
	msg, kid, err := decodeCOSE(raw)
	if err != nil {
		return nil, nil, &Error{Code: EINVALID, Message: "signed document", Err: err}
	}
	if ct, _ := msg.Headers.Protected[cose.HeaderLabelContentType].(string); ct != contentType {
		return nil, nil, Errorf(EINVALID, "signed document has content type %s, want %q", QuoteInput(ct), contentType)
	}
	pub, ok := lookup(kid)
	if !ok {
		return nil, nil, Errorf(EINVALID, "signed document: key %s is not trusted for %s", kidString(kid), contentType)
	}
	if err := verifyCOSE(msg, pub); err != nil {
		return nil, nil, Errorf(EINVALID, "signed document: signature does not verify under key %s", kidString(kid))
	}
	return msg.Payload, kid, nil
}

// SignKeyset signs a keyset with the root key.
func SignKeyset(root ed25519.PrivateKey, ks *documentv1.Keyset) ([]byte, error) {
	payload, err := proto.Marshal(ks)
	if err != nil {
		return nil, fmt.Errorf("encode keyset: %w", err)
	}
	return SignDocument(root, ContentTypeKeyset, payload)
}

// OpenKeyset verifies a keyset signed by the root key and returns its
// keyring.
func OpenKeyset(raw []byte, root ed25519.PublicKey) (*Keyring, error) {
	rootID := KeyID(root)
	payload, _, err := OpenDocument(raw, ContentTypeKeyset, func(kid []byte) (ed25519.PublicKey, bool) {
		return root, string(kid) == string(rootID)
	})
	if err != nil {
		return nil, err
	}
	var ks documentv1.Keyset
	if err := proto.Unmarshal(payload, &ks); err != nil {
		return nil, &Error{Code: EINVALID, Message: "keyset payload", Err: err}
	}
	if ks.GetVersion() == 0 {
		return nil, Errorf(EINVALID, "keyset: version must be at least 1")
	}
	keys := make([]TrustedKey, 0, len(ks.GetKeys()))
	for _, k := range ks.GetKeys() {
		use := KeyUse(0)
		switch k.GetUse() {
		case documentv1.KeyUse_KEY_USE_TOKEN:
			use = KeyUseToken
		case documentv1.KeyUse_KEY_USE_POLICY:
			use = KeyUsePolicy
		}
		keys = append(keys, TrustedKey{ID: k.GetKid(), Public: k.GetPublicKey(), Use: use, Retired: k.GetRetired()})
	}
	ring, err := NewKeyring(ks.GetVersion(), keys)
	if err != nil {
		return nil, fmt.Errorf("keyset: %w", err)
	}
	return ring, nil
}

// NewKeyset returns a keyset message for the given token-signing keys, for
// tools that publish one.
func NewKeyset(version uint64, issued time.Time, tokenKeys ...ed25519.PublicKey) *documentv1.Keyset {
	ks := &documentv1.Keyset{Version: version, IssuedAt: issued.Unix()}
	for _, pub := range tokenKeys {
		ks.Keys = append(ks.Keys, &documentv1.KeyEntry{Kid: KeyID(pub), PublicKey: pub, Use: documentv1.KeyUse_KEY_USE_TOKEN})
	}
	return ks
}

// openSigned checks a policy or freeze-list document: signed by the root
// key, or by a policy key of ring. A retired policy key is refused unless
// allowRetired, which only documents already held use: they were accepted
// while the key was current.
func openSigned(raw []byte, contentType, what string, root ed25519.PublicKey, ring *Keyring, allowRetired bool) ([]byte, []byte, error) {
	rootID := KeyID(root)
	var retired []byte
	payload, kid, err := OpenDocument(raw, contentType, func(kid []byte) (ed25519.PublicKey, bool) {
		if string(kid) == string(rootID) {
			return root, true
		}
		key, ok := ring.Lookup(kid)
		if !ok || key.Use != KeyUsePolicy {
			return nil, false
		}
		if key.Retired && !allowRetired {
			retired = kid
			return nil, false
		}
		return key.Public, true
	})
	if err != nil {
		if retired != nil {
			return nil, nil, Errorf(EINVALID, "%s: signed by key %s, which the keyset retired", what, kidString(retired))
		}
		return nil, nil, err
	}
	return payload, kid, nil
}

// DocumentVersions are the versions of HQ's signed documents a gateway
// holds; zero for a kind it holds none of.
type DocumentVersions struct {
	Keyset uint64
	// Policy is the chain-wide policy; StorePolicy the store's own.
	Policy      uint64
	StorePolicy uint64
	Freeze      uint64
}

// DocumentVersions returns the versions of the documents in force.
func (g *Gateway) DocumentVersions() DocumentVersions {
	var v DocumentVersions
	if k := g.keys.Load(); k != nil {
		v.Keyset = k.Version
	}
	pol := g.Policy()
	if pol.Chain != nil {
		v.Policy = pol.Chain.Version
	}
	if pol.Store != nil {
		v.StorePolicy = pol.Store.Version
	}
	v.Freeze = g.FreezeList().Version
	return v
}

// ApplyDocument applies a signed document of any kind: see ApplyKeyset,
// ApplyPolicy and ApplyFreezeList.
func (g *Gateway) ApplyDocument(ctx context.Context, kind DocumentKind, raw []byte) (uint64, bool, error) {
	switch kind {
	case DocumentKeyset:
		return g.ApplyKeyset(ctx, raw)
	case DocumentPolicy, DocumentStorePolicy:
		return g.ApplyPolicy(ctx, raw)
	case DocumentFreeze:
		return g.ApplyFreezeList(ctx, raw)
	}
	return 0, false, Errorf(EINVALID, "unknown document kind %q", kind)
}
