package storecache

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// bucketOfflineAccounts maps an account id to its offline total at this
// store: the part of its offline captures still in the outbox that counts as
// offline exposure (outbox_ids keeps each capture's share). It changes in the
// same transactions as the outbox: up when an offline capture is queued, down
// when a reversal of a queued one is queued and when central acknowledges
// one. An account whose total falls to zero is deleted, so the bucket holds
// only the accounts with offline sales outstanding.
//
// It came with schema 2: the read-write open that upgrades an older file
// creates it and fills it from the outbox.
var bucketOfflineAccounts = []byte("offline_accounts")

// migrateOfflineAccounts fills the offline_accounts bucket from the outbox
// when initLayout has just created it in an existing file.
func migrateOfflineAccounts(tx *bolt.Tx) error {
	ids := tx.Bucket(bucketOutboxIDs)
	return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
		var stl gateway.Settlement
		if err := json.Unmarshal(v, &stl); err != nil {
			return fmt.Errorf("migrate offline totals: decode settlement %x: %w", k, err)
		}
		iv := ids.Get([]byte(stl.ID))
		if len(iv) != 16 {
			return fmt.Errorf("migrate offline totals: settlement %s is not indexed", stl.ID)
		}
		return addOfflineTotal(tx, stl.Account, int64(binary.BigEndian.Uint64(iv[8:])))
	})
}

// offlineTotal returns account's offline total inside tx; zero when the
// bucket is missing (a read-only open of an older file).
func offlineTotal(tx *bolt.Tx, account string) uint64 {
	b := tx.Bucket(bucketOfflineAccounts)
	if b == nil || account == "" {
		return 0
	}
	return getU64(b, []byte(account))
}

// addOfflineTotal adds delta to account's offline total, never going below
// zero, and deletes the entry at zero.
func addOfflineTotal(tx *bolt.Tx, account string, delta int64) error {
	if delta == 0 {
		return nil
	}
	if account == "" {
		return fmt.Errorf("offline total: a settlement with offline exposure names no account")
	}
	b := tx.Bucket(bucketOfflineAccounts)
	key := []byte(account)
	v := getU64(b, key)
	switch {
	case delta > 0:
		v += uint64(delta)
	case uint64(-delta) >= v:
		v = 0
	default:
		v -= uint64(-delta)
	}
	if v == 0 {
		if err := b.Delete(key); err != nil {
			return fmt.Errorf("offline total %s: %w", account, err)
		}
		return nil
	}
	if err := b.Put(key, u64(v)); err != nil {
		return fmt.Errorf("offline total %s: %w", account, err)
	}
	return nil
}

// validOfflineCharge checks that an offline charge describes its commit's
// settlement: an offline capture of the same account and amount.
func validOfflineCharge(c *gateway.DecisionCommit) error {
	o, s := c.Offline, c.Settlement
	switch {
	case s == nil:
		return gateway.Errorf(gateway.EINVALID, "commit decision %s: an offline charge without a settlement", c.Key)
	case s.Kind != gateway.SettlementCapture || s.Mode != gateway.ModeOffline:
		return gateway.Errorf(gateway.EINVALID, "commit decision %s: an offline charge on a %s %s settlement, want an offline capture", c.Key, s.Mode, s.Kind)
	case o.Account == "" || o.Account != s.Account:
		return gateway.Errorf(gateway.EINVALID, "commit decision %s: the offline charge's account %q is not the settlement's %q", c.Key, o.Account, s.Account)
	case o.Amount <= 0 || o.Amount != s.Amount:
		return gateway.Errorf(gateway.EINVALID, "commit decision %s: the offline charge's amount %d is not the settlement's %d", c.Key, o.Amount, s.Amount)
	}
	return nil
}

// checkOfflineCharge checks an offline charge against its caps with the
// account's offline total and the store's exposure as they stand in tx,
// which already holds the commits batched before it.
func checkOfflineCharge(tx *bolt.Tx, o *gateway.OfflineCharge) *gateway.OfflineLimitError {
	exposure := clampInt64(getU64(tx.Bucket(bucketMeta), keyOfflineExposure))
	total := clampInt64(offlineTotal(tx, o.Account))
	return o.Caps.Check(o.Amount, total, exposure)
}

func clampInt64(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}

// OfflineTotal returns account's offline total at this store: the offline
// captures for it that central has not acknowledged yet, less queued
// reversals of them. It is the figure the per-account offline cap is checked
// against.
func (s *Store) OfflineTotal(ctx context.Context, account string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n uint64
	err := s.view(func(tx *bolt.Tx) error {
		n = offlineTotal(tx, account)
		return nil
	})
	return clampInt64(n), err
}

// checkOfflineTotals compares the offline_accounts bucket with the totals
// the outbox implies (want, by account), for Check.
func checkOfflineTotals(tx *bolt.Tx, want map[string]uint64, report func(format string, args ...any)) {
	b := tx.Bucket(bucketOfflineAccounts)
	if b == nil {
		for acct, n := range want {
			report("offline_accounts is missing, but the outbox holds %d of offline exposure for %q", n, acct)
		}
		return
	}
	_ = b.ForEach(func(k, v []byte) error {
		got := uint64(0)
		if len(v) == 8 {
			got = binary.BigEndian.Uint64(v)
		} else {
			report("offline_accounts %q: malformed value %x", k, v)
		}
		if got == 0 {
			report("offline_accounts %q: a zero total is kept", k)
		}
		if w := want[string(k)]; got != w {
			report("offline_accounts %q is %d, the outbox holds %d of offline exposure for it", k, got, w)
		}
		return nil
	})
	for acct, n := range want {
		if n > 0 && b.Get([]byte(acct)) == nil {
			report("offline_accounts has no total for %q, the outbox holds %d of offline exposure for it", acct, n)
		}
	}
}
