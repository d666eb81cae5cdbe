package storecache

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// maxCheckProblems bounds the problems Check lists one by one.
const maxCheckProblems = 100

// Check runs bbolt's consistency check over the whole file and then checks
// the store's own invariants: the counters in the meta bucket and the
// accounts' offline totals match the records, every outbox record is indexed
// under its id, every spent token
// id is in the expiry index, and the audit log is numbered 1 to its head's
// count. It returns every problem found, joined, or nil. It reads the whole
// file in one read transaction: run it from tools and tests, not on the
// decision path. The audit chain's hashes are VerifyAudit's job.
func (s *Store) Check() error {
	var problems []error
	more := 0
	report := func(err error) {
		if len(problems) < maxCheckProblems {
			problems = append(problems, err)
		} else {
			more++
		}
	}
	err := s.view(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			report(err)
		}
		checkInvariants(tx, func(format string, args ...any) { report(fmt.Errorf(format, args...)) })
		return nil
	})
	if err != nil {
		return fmt.Errorf("check store %s: %w", s.path, err)
	}
	if more > 0 {
		problems = append(problems, fmt.Errorf("and %d more problems", more))
	}
	if len(problems) > 0 {
		return fmt.Errorf("check store %s: %w", s.path, errors.Join(problems...))
	}
	return nil
}

func checkInvariants(tx *bolt.Tx, report func(format string, args ...any)) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		report("bucket %s is missing", bucketMeta)
		return
	}
	schema := getU64(meta, keySchema)
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil && bucketRequired(schema, name) {
			report("bucket %s is missing", name)
			return
		}
	}

	// Outbox and its id index.
	var depth, exposure uint64
	perAccount := make(map[string]uint64)
	ids := tx.Bucket(bucketOutboxIDs)
	_ = tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
		depth++
		var stl gateway.Settlement
		if err := json.Unmarshal(v, &stl); err != nil {
			report("outbox %x: undecodable: %v", k, err)
			return nil
		}
		if len(k) != 8 || binary.BigEndian.Uint64(k) != stl.Seq {
			report("outbox %x: holds settlement %s with seq %d", k, stl.ID, stl.Seq)
		}
		iv := ids.Get([]byte(stl.ID))
		if len(iv) != 16 || !bytes.Equal(iv[:8], k) {
			report("outbox %x: settlement %s is not indexed under its seq", k, stl.ID)
			return nil
		}
		share := binary.BigEndian.Uint64(iv[8:])
		exposure += share
		if share > 0 {
			perAccount[stl.Account] += share
		}
		return nil
	})
	if n := uint64(ids.Stats().KeyN); n != depth {
		report("outbox holds %d settlements but its id index %d", depth, n)
	}
	if got := getU64(meta, keyOutboxDepth); got != depth {
		report("meta outbox_depth is %d, the outbox holds %d", got, depth)
	}
	if got := getU64(meta, keyOfflineExposure); got != exposure {
		report("meta offline_exposure is %d, the outbox index sums to %d", got, exposure)
	}
	checkOfflineTotals(tx, perAccount, report)
	if got, n := getU64(meta, keyDisputedCount), uint64(tx.Bucket(bucketDisputed).Stats().KeyN); got != n {
		report("meta disputed_count is %d, the disputed set holds %d", got, n)
	}

	// Spent token ids and their expiry index.
	index := tx.Bucket(bucketSpentByExp)
	var spent int
	_ = tx.Bucket(bucketSpent).ForEach(func(k, v []byte) error {
		spent++
		if len(k) != gateway.TokenIDSize || len(v) != 8 {
			report("spent %x: malformed entry", k)
			return nil
		}
		if index.Get(spentIndexKey(binary.BigEndian.Uint64(v), k)) == nil {
			report("spent %x: missing from the expiry index", k)
		}
		// Pruning goes in expiry order, so nothing held expires before an id
		// already forgotten (a prune interrupted between chunks may leave
		// one expiring at the same second).
		if exp, forgotten := binary.BigEndian.Uint64(v), getU64(meta, keySpentForgotten); exp < forgotten {
			report("spent %x: expires at %d, before a forgotten id (%d)", k, exp, forgotten)
		}
		return nil
	})
	if n := index.Stats().KeyN; n != spent {
		report("spent holds %d token ids but its expiry index %d", spent, n)
	}

	// Audit numbering against the head.
	n, _, err := readHead(tx)
	if err != nil {
		report("%v", err)
		return
	}
	var want uint64 = 1
	_ = tx.Bucket(bucketAudit).ForEach(func(k, _ []byte) error {
		if len(k) != 8 || binary.BigEndian.Uint64(k) != want {
			report("audit: record under key %x, want record %d", k, want)
		}
		want++
		return nil
	})
	if want-1 != n {
		report("audit holds %d records, its head says %d", want-1, n)
	}

	checkCounters(tx, report)
	checkFreeze(tx, report)
}
