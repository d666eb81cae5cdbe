package central

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// applyFreeze applies a checked freeze list to the ledger's frozen
// accounts inside tx: a snapshot replaces them, a delta freezes and
// unfreezes on top.
func applyFreeze(tx *bolt.Tx, list *gateway.FreezeList) error {
	if list.Snapshot {
		// A snapshot replaces the whole list.
		if err := tx.DeleteBucket(frozenBucket); err != nil {
			return fmt.Errorf("clear freeze list: %w", err)
		}
		if _, err := tx.CreateBucket(frozenBucket); err != nil {
			return fmt.Errorf("clear freeze list: %w", err)
		}
	}
	b := tx.Bucket(frozenBucket)
	return list.Each(func(account string, fa gateway.FrozenAccount) error {
		if err := putJSON(b, []byte(account), fa); err != nil {
			return fmt.Errorf("freeze %s: %w", account, err)
		}
		return nil
	}, func(account string) error {
		if err := b.Delete([]byte(account)); err != nil {
			return fmt.Errorf("unfreeze %s: %w", account, err)
		}
		return nil
	})
}

// frozen reports whether an account is on the ledger's freeze list.
func frozen(tx *bolt.Tx, account string) bool {
	return tx.Bucket(frozenBucket).Get([]byte(account)) != nil
}

// FrozenAccounts returns the accounts central refuses, with the freeze
// list version that froze each and HQ's reason.
func (l *Ledger) FrozenAccounts() (map[string]gateway.FrozenAccount, error) {
	out := make(map[string]gateway.FrozenAccount)
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(frozenBucket).ForEach(func(k, v []byte) error {
			var fa gateway.FrozenAccount
			if err := json.Unmarshal(v, &fa); err != nil {
				return fmt.Errorf("frozen account %q: %w", k, err)
			}
			out[string(k)] = fa
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("frozen accounts: %w", err)
	}
	return out, nil
}
