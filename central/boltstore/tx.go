package boltstore

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"storegate/central"
	"storegate/gateway"
)

// tx is central.Tx over a bbolt transaction.
type tx struct{ btx *bolt.Tx }

var _ central.Tx = (*tx)(nil)

// getJSON decodes the value under key into v and reports whether there was
// one. The decoded value does not alias bbolt's memory.
func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	return true, decodeJSON(raw, v)
}

// decodeJSON decodes a stored record into v.
func decodeJSON(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	return nil
}

// putJSON encodes v under key.
func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	return b.Put(key, raw)
}

func (t *tx) bucket(name []byte) *bolt.Bucket { return t.btx.Bucket(name) }

func (t *tx) Accounts(ids []string) (map[string]*central.Account, error) {
	out := make(map[string]*central.Account, len(ids))
	b := t.bucket(accountsBucket)
	for _, id := range ids {
		var a central.Account
		found, err := getJSON(b, []byte(id), &a)
		if err != nil {
			return nil, fmt.Errorf("account %s: %w", id, err)
		}
		if found {
			a.ID = id
			out[id] = &a
		}
	}
	return out, nil
}

func (t *tx) InsertAccount(a *central.Account) (bool, error) {
	b := t.bucket(accountsBucket)
	if b.Get([]byte(a.ID)) != nil {
		return false, nil
	}
	return true, putJSON(b, []byte(a.ID), a)
}

func (t *tx) PutAccounts(accts []*central.Account) error {
	b := t.bucket(accountsBucket)
	for _, a := range accts {
		if err := putJSON(b, []byte(a.ID), a); err != nil {
			return fmt.Errorf("account %s: %w", a.ID, err)
		}
	}
	return nil
}

func (t *tx) EachAccount(fn func(*central.Account) error) error {
	return t.bucket(accountsBucket).ForEach(func(k, v []byte) error {
		var a central.Account
		if err := decodeJSON(v, &a); err != nil {
			return fmt.Errorf("account %s: %w", k, err)
		}
		a.ID = string(k)
		return fn(&a)
	})
}

func (t *tx) PaymentCode(code string) (string, bool, error) {
	v := t.bucket(codesBucket).Get([]byte(code))
	if v == nil {
		return "", false, nil
	}
	return string(v), true, nil
}

func (t *tx) InsertPaymentCode(code, account string) (bool, error) {
	b := t.bucket(codesBucket)
	if b.Get([]byte(code)) != nil {
		return false, nil
	}
	return true, b.Put([]byte(code), []byte(account))
}

// authorization reads the authorization under key, or nil.
func (t *tx) authorization(key []byte) (*central.Authorization, error) {
	var a central.Authorization
	found, err := getJSON(t.bucket(authorizationsBucket), key, &a)
	if err != nil {
		return nil, fmt.Errorf("authorization %x: %w", key, err)
	}
	if !found {
		return nil, nil
	}
	a.Key = central.CredentialKey(key)
	return &a, nil
}

func (t *tx) Authorizations(keys []central.CredentialKey) (map[central.CredentialKey]*central.Authorization, error) {
	out := make(map[central.CredentialKey]*central.Authorization, len(keys))
	for _, k := range keys {
		a, err := t.authorization([]byte(k))
		if err != nil {
			return nil, err
		}
		if a != nil {
			out[k] = a
		}
	}
	return out, nil
}

func (t *tx) AuthorizationsByID(ids []string) (map[string]*central.Authorization, error) {
	out := make(map[string]*central.Authorization, len(ids))
	index := t.bucket(authorizationIDsBucket)
	for _, id := range ids {
		key := index.Get([]byte(id))
		if key == nil {
			continue
		}
		a, err := t.authorization(key)
		if err != nil {
			return nil, err
		}
		if a == nil {
			return nil, fmt.Errorf("authorization %s: indexed under %x, which holds none", id, key)
		}
		out[id] = a
	}
	return out, nil
}

func (t *tx) InsertAuthorizations(auths []*central.Authorization) (int, error) {
	b, index := t.bucket(authorizationsBucket), t.bucket(authorizationIDsBucket)
	n := 0
	for _, a := range auths {
		key := []byte(a.Key)
		if b.Get(key) != nil {
			continue
		}
		if a.ID != "" {
			if index.Get([]byte(a.ID)) != nil {
				return n, fmt.Errorf("authorization %s: the id is recorded already", a.ID)
			}
			if err := index.Put([]byte(a.ID), key); err != nil {
				return n, err
			}
		}
		if err := putJSON(b, key, a); err != nil {
			return n, fmt.Errorf("authorization %x: %w", key, err)
		}
		n++
	}
	return n, nil
}

func (t *tx) UpdateAuthorizations(auths []*central.Authorization) error {
	b := t.bucket(authorizationsBucket)
	for _, a := range auths {
		stored, err := t.authorization([]byte(a.Key))
		if err != nil {
			return err
		}
		if stored == nil {
			return fmt.Errorf("authorization %x: not recorded", a.Key)
		}
		stored.Status, stored.Reason, stored.Message = a.Status, a.Reason, a.Message
		stored.CapturedBy, stored.VoidedAt = a.CapturedBy, a.VoidedAt
		if err := putJSON(b, []byte(a.Key), stored); err != nil {
			return fmt.Errorf("authorization %x: %w", a.Key, err)
		}
	}
	return nil
}

func (t *tx) HeldBefore(cutoff time.Time, limit int) ([]*central.Authorization, error) {
	var held []*central.Authorization
	err := t.EachAuthorization(func(a *central.Authorization) error {
		if a.Status == central.AuthHeld && a.Created.Before(cutoff) {
			held = append(held, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(held, func(x, y *central.Authorization) int {
		return cmp.Or(x.Created.Compare(y.Created), strings.Compare(string(x.Key), string(y.Key)))
	})
	return held[:min(len(held), limit)], nil
}

func (t *tx) EachAuthorization(fn func(*central.Authorization) error) error {
	return t.bucket(authorizationsBucket).ForEach(func(k, v []byte) error {
		var a central.Authorization
		if err := decodeJSON(v, &a); err != nil {
			return fmt.Errorf("authorization %x: %w", k, err)
		}
		a.Key = central.CredentialKey(k)
		return fn(&a)
	})
}

func (t *tx) Settlements(ids []string) (map[string]*central.BookedSettlement, error) {
	out := make(map[string]*central.BookedSettlement, len(ids))
	b := t.bucket(settlementsBucket)
	for _, id := range ids {
		var s central.BookedSettlement
		found, err := getJSON(b, []byte(id), &s)
		if err != nil {
			return nil, fmt.Errorf("settlement %s: %w", id, err)
		}
		if found {
			out[id] = &s
		}
	}
	return out, nil
}

func (t *tx) InsertSettlements(stls []*central.BookedSettlement) (int, error) {
	b := t.bucket(settlementsBucket)
	n := 0
	for _, s := range stls {
		if b.Get([]byte(s.ID)) != nil {
			continue
		}
		if err := putJSON(b, []byte(s.ID), s); err != nil {
			return n, fmt.Errorf("settlement %s: %w", s.ID, err)
		}
		n++
	}
	return n, nil
}

func (t *tx) SetReversedBy(reversals map[string]string) error {
	b := t.bucket(settlementsBucket)
	for id, by := range reversals {
		var s central.BookedSettlement
		found, err := getJSON(b, []byte(id), &s)
		switch {
		case err != nil:
			return fmt.Errorf("settlement %s: %w", id, err)
		case !found:
			return fmt.Errorf("settlement %s: not booked", id)
		}
		s.ReversedBy = by
		if err := putJSON(b, []byte(id), &s); err != nil {
			return fmt.Errorf("settlement %s: %w", id, err)
		}
	}
	return nil
}

func (t *tx) EachSettlement(fn func(*central.BookedSettlement) error) error {
	return t.bucket(settlementsBucket).ForEach(func(k, v []byte) error {
		var s central.BookedSettlement
		if err := decodeJSON(v, &s); err != nil {
			return fmt.Errorf("settlement %s: %w", k, err)
		}
		return fn(&s)
	})
}

func (t *tx) Frozen(ids []string) (map[string]gateway.FrozenAccount, error) {
	out := make(map[string]gateway.FrozenAccount)
	b := t.bucket(frozenBucket)
	for _, id := range ids {
		var fa gateway.FrozenAccount
		found, err := getJSON(b, []byte(id), &fa)
		if err != nil {
			return nil, fmt.Errorf("frozen account %s: %w", id, err)
		}
		if found {
			out[id] = fa
		}
	}
	return out, nil
}

func (t *tx) PutFrozen(accounts map[string]gateway.FrozenAccount) error {
	b := t.bucket(frozenBucket)
	for id, fa := range accounts {
		if err := putJSON(b, []byte(id), fa); err != nil {
			return fmt.Errorf("freeze %s: %w", id, err)
		}
	}
	return nil
}

func (t *tx) DeleteFrozen(ids []string) error {
	b := t.bucket(frozenBucket)
	for _, id := range ids {
		if err := b.Delete([]byte(id)); err != nil {
			return fmt.Errorf("unfreeze %s: %w", id, err)
		}
	}
	return nil
}

// clear empties a bucket.
func (t *tx) clear(name []byte) error {
	if err := t.btx.DeleteBucket(name); err != nil {
		return fmt.Errorf("clear %s: %w", name, err)
	}
	if _, err := t.btx.CreateBucket(name); err != nil {
		return fmt.Errorf("clear %s: %w", name, err)
	}
	return nil
}

func (t *tx) ClearFrozen() error { return t.clear(frozenBucket) }

func (t *tx) EachFrozen(fn func(string, gateway.FrozenAccount) error) error {
	return t.bucket(frozenBucket).ForEach(func(k, v []byte) error {
		var fa gateway.FrozenAccount
		if err := decodeJSON(v, &fa); err != nil {
			return fmt.Errorf("frozen account %s: %w", k, err)
		}
		return fn(string(k), fa)
	})
}

// storedDocument is a documents or freeze_log bucket record.
type storedDocument struct {
	Version     uint64    `json:"version"`
	StoreID     string    `json:"store_id,omitempty"`
	Snapshot    bool      `json:"snapshot,omitempty"`
	Raw         []byte    `json:"raw"`
	PublishedAt time.Time `json:"published_at"`
}

func stored(d *central.Document) storedDocument {
	return storedDocument{Version: d.Version, StoreID: d.StoreID, Snapshot: d.Snapshot, Raw: d.Raw, PublishedAt: d.PublishedAt}
}

func (s storedDocument) document(kind gateway.DocumentKind) *central.Document {
	return &central.Document{Kind: kind, Version: s.Version, StoreID: s.StoreID, Snapshot: s.Snapshot, Raw: s.Raw, PublishedAt: s.PublishedAt}
}

// documentKey is the documents bucket's key of the latest keyset or policy
// of a scope: the kind, then "/" and the store id for a store's policy.
func documentKey(kind gateway.DocumentKind, storeID string) []byte {
	if storeID == "" {
		return []byte(kind)
	}
	return []byte(string(kind) + "/" + storeID)
}

func (t *tx) Document(kind gateway.DocumentKind, storeID string) (*central.Document, error) {
	var sd storedDocument
	found, err := getJSON(t.bucket(documentsBucket), documentKey(kind, storeID), &sd)
	if err != nil || !found {
		return nil, err
	}
	return sd.document(kind), nil
}

func (t *tx) PutDocument(d *central.Document) error {
	return putJSON(t.bucket(documentsBucket), documentKey(d.Kind, d.StoreID), stored(d))
}

func (t *tx) EachDocument(fn func(*central.Document) error) error {
	return t.bucket(documentsBucket).ForEach(func(k, v []byte) error {
		var sd storedDocument
		if err := decodeJSON(v, &sd); err != nil {
			return fmt.Errorf("document %s: %w", k, err)
		}
		kind, _, _ := strings.Cut(string(k), "/")
		return fn(sd.document(gateway.DocumentKind(kind)))
	})
}

func (t *tx) LatestFreeze() (*central.Document, error) {
	k, v := t.bucket(freezeLogBucket).Cursor().Last()
	if k == nil {
		return nil, nil
	}
	var sd storedDocument
	if err := decodeJSON(v, &sd); err != nil {
		return nil, fmt.Errorf("freeze log %x: %w", k, err)
	}
	return sd.document(gateway.DocumentFreeze), nil
}

func (t *tx) AppendFreeze(d *central.Document) (bool, error) {
	b := t.bucket(freezeLogBucket)
	key := binary.BigEndian.AppendUint64(nil, d.Version)
	if b.Get(key) != nil {
		return false, nil
	}
	return true, putJSON(b, key, stored(d))
}

func (t *tx) ClearFreezeLog() error { return t.clear(freezeLogBucket) }

func (t *tx) EachFreeze(fn func(*central.Document) error) error {
	return t.bucket(freezeLogBucket).ForEach(func(k, v []byte) error {
		var sd storedDocument
		if err := decodeJSON(v, &sd); err != nil {
			return fmt.Errorf("freeze log %x: %w", k, err)
		}
		return fn(sd.document(gateway.DocumentFreeze))
	})
}
