package storecache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// LoadFreezeList returns the freeze list the store holds: the version of
// the last freeze document applied and every frozen account. Version 0 and
// no accounts when it holds none.
func (s *Store) LoadFreezeList(ctx context.Context) (*gateway.FreezeSet, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var version uint64
	accounts := make(map[string]gateway.FrozenAccount)
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if version, err = heldVersion(tx, gateway.DocumentFreeze); err != nil {
			return err
		}
		b := tx.Bucket(bucketFrozen)
		if b == nil {
			return nil // an older read-only store: nothing frozen yet
		}
		return b.ForEach(func(k, v []byte) error {
			var fa gateway.FrozenAccount
			if err := json.Unmarshal(v, &fa); err != nil {
				return fmt.Errorf("decode frozen account %q: %w", k, err)
			}
			accounts[string(k)] = fa
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return gateway.NewFreezeSet(version, accounts), nil
}

// heldVersion returns the version of the document of a kind the store
// holds, 0 for none.
func heldVersion(tx *bolt.Tx, kind gateway.DocumentKind) (uint64, error) {
	v := tx.Bucket(bucketDocuments).Get([]byte(kind))
	if v == nil {
		return 0, nil
	}
	var held documentRecord
	if err := json.Unmarshal(v, &held); err != nil {
		return 0, fmt.Errorf("decode held %s document: %w", kind, err)
	}
	return held.Version, nil
}

// ApplyFreezeList durably applies a checked freeze list and stores its
// signed document, in one transaction: a snapshot replaces every frozen
// account, a delta freezes and unfreezes on top. It checks
// gateway.FreezeFollows against the version it holds first and returns its
// error (ESTALE for an older version, ECONFLICT for a delta after a gap),
// having written nothing; false and no error when it holds this version.
func (s *Store) ApplyFreezeList(ctx context.Context, list *gateway.FreezeList, raw []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	switch {
	case list == nil || list.Version == 0:
		return false, gateway.Errorf(gateway.EINVALID, "apply freeze list: no list, or version 0")
	case len(raw) == 0 || len(raw) > gateway.MaxDocumentSize:
		return false, gateway.Errorf(gateway.EINVALID, "apply freeze list: document is %d bytes, want 1 to %d", len(raw), gateway.MaxDocumentSize)
	}
	enc, err := json.Marshal(&documentRecord{Version: list.Version, Raw: raw})
	if err != nil {
		return false, fmt.Errorf("encode freeze document: %w", err)
	}
	applied := false
	err = s.update(func(tx *bolt.Tx) error {
		held, err := heldVersion(tx, gateway.DocumentFreeze)
		if err != nil {
			return err
		}
		if ok, err := gateway.FreezeFollows(held, list); err != nil || !ok {
			if err == nil {
				var rec documentRecord
				if v := tx.Bucket(bucketDocuments).Get([]byte(gateway.DocumentFreeze)); v != nil && json.Unmarshal(v, &rec) == nil && !bytes.Equal(rec.Raw, raw) {
					s.logger.Warn("freeze list with the held version but other bytes ignored", "version", list.Version)
				}
			}
			return err
		}
		if list.Snapshot {
			// A snapshot replaces the whole list.
			if err := tx.DeleteBucket(bucketFrozen); err != nil {
				return fmt.Errorf("clear freeze list: %w", err)
			}
			if _, err := tx.CreateBucket(bucketFrozen); err != nil {
				return fmt.Errorf("clear freeze list: %w", err)
			}
		}
		b := tx.Bucket(bucketFrozen)
		err = list.Each(func(account string, fa gateway.FrozenAccount) error {
			v, err := json.Marshal(fa)
			if err != nil {
				return fmt.Errorf("encode frozen account: %w", err)
			}
			if err := b.Put([]byte(account), v); err != nil {
				return fmt.Errorf("freeze %s: %w", account, err)
			}
			return nil
		}, func(account string) error {
			if err := b.Delete([]byte(account)); err != nil {
				return fmt.Errorf("unfreeze %s: %w", account, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketDocuments).Put([]byte(gateway.DocumentFreeze), enc); err != nil {
			return fmt.Errorf("store freeze document: %w", err)
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return applied, nil
}

// checkFreeze checks that every frozen account decodes and was frozen by a
// version the store holds.
func checkFreeze(tx *bolt.Tx, report func(format string, args ...any)) {
	b := tx.Bucket(bucketFrozen)
	if b == nil {
		return
	}
	held, err := heldVersion(tx, gateway.DocumentFreeze)
	if err != nil {
		report("%v", err)
		return
	}
	_ = b.ForEach(func(k, v []byte) error {
		var fa gateway.FrozenAccount
		if err := json.Unmarshal(v, &fa); err != nil {
			report("frozen %q: undecodable: %v", k, err)
		} else if fa.Version == 0 || fa.Version > held {
			report("frozen %q: frozen by version %d, the store holds freeze version %d", k, fa.Version, held)
		}
		return nil
	})
}
