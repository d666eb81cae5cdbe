package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"slices"
	"time"

	documentv1 "storegate/proto/storegate/document/v1"
)

// keyUses translates key uses to the wire.
var keyUses = map[KeyUse]documentv1.KeyUse{
	KeyUseToken:  documentv1.KeyUse_KEY_USE_TOKEN,
	KeyUsePolicy: documentv1.KeyUse_KEY_USE_POLICY,
}

// KeysetProto returns the keyring's keys as a keyset message at a new
// version, ordered by kid, for tools that add or retire a key and sign the
// result with the root key.
func (k *Keyring) KeysetProto(version uint64, issued time.Time) *documentv1.Keyset {
	ks := &documentv1.Keyset{Version: version, IssuedAt: issued.Unix()}
	keys := k.Keys()
	slices.SortFunc(keys, func(a, b TrustedKey) int { return bytes.Compare(a.ID, b.ID) })
	for _, key := range keys {
		ks.Keys = append(ks.Keys, &documentv1.KeyEntry{
			Kid:       bytes.Clone(key.ID),
			PublicKey: bytes.Clone(key.Public),
			Use:       keyUses[key.Use],
			Retired:   key.Retired,
		})
	}
	return ks
}

// AddKey adds a current key to a keyset message. Adding a key it already
// lists is EINVALID.
func AddKey(ks *documentv1.Keyset, pub ed25519.PublicKey, use KeyUse) error {
	kid := KeyID(pub)
	for _, e := range ks.GetKeys() {
		if bytes.Equal(e.GetKid(), kid) {
			return Errorf(EINVALID, "key %s is already in the keyset", kidString(kid))
		}
	}
	wire, ok := keyUses[use]
	if !ok {
		return Errorf(EINVALID, "unknown key use %d", use)
	}
	ks.Keys = append(ks.Keys, &documentv1.KeyEntry{Kid: kid, PublicKey: bytes.Clone(pub), Use: wire})
	return nil
}

// RetireKey marks a key of a keyset message retired: the gateway then
// declines its tokens as key_retired and refuses documents it signs. An
// unknown kid is ENOTFOUND.
func RetireKey(ks *documentv1.Keyset, kid []byte) error {
	for _, e := range ks.GetKeys() {
		if bytes.Equal(e.GetKid(), kid) {
			e.Retired = true
			return nil
		}
	}
	return Errorf(ENOTFOUND, "no key %s in the keyset", kidString(kid))
}

// Keyring returns the keyring in force, or nil before any keyset.
func (g *Gateway) Keyring() *Keyring { return g.keys.Load() }

// ApplyKeyset verifies a keyset signed by the root key and, when it is newer
// than the one held, stores it durably and puts it in force. An older version
// is ESTALE, one more than MaxVersionStep past the held one EINVALID. It
// returns the version now held and whether it changed.
func (g *Gateway) ApplyKeyset(ctx context.Context, raw []byte) (uint64, bool, error) {
	ring, err := OpenKeyset(raw, g.RootKey)
	if err != nil {
		return 0, false, err
	}
	g.docs.Lock()
	defer g.docs.Unlock()
	if cur := g.keys.Load(); cur != nil {
		if cur.Version > ring.Version {
			return cur.Version, false, Errorf(ESTALE, "keyset version %d is older than the held version %d", ring.Version, cur.Version)
		}
		if err := CheckVersionStep("keyset", cur.Version, ring.Version); err != nil {
			return cur.Version, false, err
		}
	}
	changed, err := g.Store.SaveDocument(ctx, DocumentKeyset, ring.Version, raw)
	if err != nil {
		return 0, false, err
	}
	if changed {
		g.keys.Store(ring)
		g.Logger.Info("keyset applied", "version", ring.Version, "keys", ring.Len())
	}
	return ring.Version, changed, nil
}
