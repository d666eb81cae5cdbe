package gateway

import (
	"crypto/ed25519"
	"encoding/hex"
)

// KeyUse says what a trusted key may sign.
type KeyUse int

// Key uses.
const (
	KeyUseToken KeyUse = iota + 1
	KeyUsePolicy
)

// TrustedKey is one public key of a keyset.
type TrustedKey struct {
	ID      []byte
	Public  ed25519.PublicKey
	Use     KeyUse
	Retired bool
}

// Keyring is the set of keys the gateway trusts, at one keyset version. It is
// immutable once built, so the decision path reads it without locks.
type Keyring struct {
	Version uint64
	keys    map[string]TrustedKey
}

// NewKeyring builds a keyring. A key whose id is not the id of its public key
// is an error, so that a keyset cannot alias one key under another's id.
func NewKeyring(version uint64, keys []TrustedKey) (*Keyring, error) {
	k := &Keyring{Version: version, keys: make(map[string]TrustedKey, len(keys))}
	for i, key := range keys {
		if len(key.Public) != ed25519.PublicKeySize {
			return nil, Errorf(EINVALID, "keys[%d]: public key is %d bytes, want %d", i, len(key.Public), ed25519.PublicKeySize)
		}
		if want := KeyID(key.Public); string(want) != string(key.ID) {
			return nil, Errorf(EINVALID, "keys[%d]: kid %x is not the id of its key (%x)", i, key.ID, want)
		}
		if key.Use != KeyUseToken && key.Use != KeyUsePolicy {
			return nil, Errorf(EINVALID, "keys[%d]: unknown use %d", i, key.Use)
		}
		id := string(key.ID)
		if _, dup := k.keys[id]; dup {
			return nil, Errorf(EINVALID, "keys[%d]: kid %x listed twice", i, key.ID)
		}
		k.keys[id] = key
	}
	return k, nil
}

// Lookup returns the key with the given id.
func (k *Keyring) Lookup(kid []byte) (TrustedKey, bool) {
	if k == nil {
		return TrustedKey{}, false
	}
	key, ok := k.keys[string(kid)]
	return key, ok
}

// Len returns the number of keys, retired ones included.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	return len(k.keys)
}

// Keys returns every key, for tools that print the keyset.
func (k *Keyring) Keys() []TrustedKey {
	if k == nil {
		return nil
	}
	out := make([]TrustedKey, 0, len(k.keys))
	for _, key := range k.keys {
		out = append(out, key)
	}
	return out
}

func kidString(kid []byte) string { return hex.EncodeToString(kid) }
