package storecache

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// maxCounterID bounds a counter's name.
const maxCounterID = 512

// bucketSeconds is the width of a counter bucket.
const bucketSeconds = int64(gateway.CounterBucket / time.Second)

// appliedCharge is a charge as written: the bucket it went to, so that a
// reversal takes it back from there.
type appliedCharge struct {
	Counter string `json:"counter"`
	Bucket  int64  `json:"bucket"`
	Amount  int64  `json:"amount"`
}

// counterKey returns the counters key of a counter's bucket: the counter's
// name, a NUL (names hold none), and the bucket's start, big-endian, so
// that a counter's buckets sort by time after its name.
func counterKey(counter string, bucket int64) []byte {
	k := make([]byte, 0, len(counter)+1+8)
	k = append(k, counter...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, uint64(bucket))
}

// splitCounterKey returns the counter and bucket of a counters key.
func splitCounterKey(k []byte) (string, int64, bool) {
	if len(k) < 1+1+8 || k[len(k)-9] != 0 || bytes.IndexByte(k[:len(k)-9], 0) >= 0 {
		return "", 0, false
	}
	return string(k[:len(k)-9]), int64(binary.BigEndian.Uint64(k[len(k)-8:])), true
}

func getI64(b *bolt.Bucket, k []byte) int64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// windowSum sums a counter's buckets from the one starting at start on.
func windowSum(b *bolt.Bucket, counter string, start int64) int64 {
	prefix := counterKey(counter, 0)[:len(counter)+1]
	var sum int64
	c := b.Cursor()
	for k, v := c.Seek(counterKey(counter, start)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) == 8 {
			sum += int64(binary.BigEndian.Uint64(v))
		}
	}
	return sum
}

// pruneCounter deletes a counter's buckets that start before cutoff.
func pruneCounter(b *bolt.Bucket, counter string, cutoff int64) error {
	prefix := counterKey(counter, 0)[:len(counter)+1]
	end := counterKey(counter, cutoff)
	var old [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.Compare(k, end) < 0; k, _ = c.Next() {
		old = append(old, bytes.Clone(k))
	}
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("prune counter: %w", err)
		}
	}
	return nil
}

// prepareCharges checks a commit's charges before the transaction.
func prepareCharges(key gateway.IdempotencyKey, charges []gateway.CounterCharge) ([]gateway.CounterCharge, error) {
	out := make([]gateway.CounterCharge, len(charges))
	for i, c := range charges {
		switch {
		case c.Counter == "" || len(c.Counter) > maxCounterID || strings.IndexByte(c.Counter, 0) >= 0:
			return nil, gateway.Errorf(gateway.EINVALID, "commit decision %s: charges[%d]: counter name must be 1 to %d bytes without NUL", key, i, maxCounterID)
		case c.Window < gateway.CounterBucket || c.Window > gateway.MaxRuleWindow:
			return nil, gateway.Errorf(gateway.EINVALID, "commit decision %s: charges[%d]: window %s outside %s to %s", key, i, c.Window, gateway.CounterBucket, gateway.MaxRuleWindow)
		case c.Cap < 0 || c.Amount < 0:
			return nil, gateway.Errorf(gateway.EINVALID, "commit decision %s: charges[%d]: negative cap or amount", key, i)
		case c.At.Unix() <= 0:
			return nil, gateway.Errorf(gateway.EINVALID, "commit decision %s: charges[%d]: time %v is not after 1970", key, i, c.At)
		}
		out[i] = c
	}
	return out, nil
}

// checkCharges re-checks every charge against its window inside the
// commit's transaction, counting earlier decisions of the same
// transaction and earlier charges of this one. It returns the first charge
// that would go over its cap.
func checkCharges(tx *bolt.Tx, charges []gateway.CounterCharge) *gateway.LimitError {
	if len(charges) == 0 {
		return nil
	}
	b := tx.Bucket(bucketCounters)
	pending := make(map[string]int64, len(charges))
	for _, c := range charges {
		held := windowSum(b, c.Counter, gateway.WindowStart(c.At, c.Window)) + pending[c.Counter]
		if held+c.Amount > c.Cap {
			return &gateway.LimitError{Charge: c, Held: held}
		}
		pending[c.Counter] += c.Amount
	}
	return nil
}

// applyCharges adds a commit's charges to their buckets, prunes the
// buckets that fell out of each window, and records the charges under the
// sale's key for a reversal.
func applyCharges(tx *bolt.Tx, dkey []byte, charges []gateway.CounterCharge) error {
	if len(charges) == 0 {
		return nil
	}
	b := tx.Bucket(bucketCounters)
	applied := make([]appliedCharge, 0, len(charges))
	for _, c := range charges {
		bucket := gateway.BucketStart(c.At)
		if c.Amount > 0 {
			k := counterKey(c.Counter, bucket)
			if err := b.Put(k, u64(uint64(getI64(b, k)+c.Amount))); err != nil {
				return fmt.Errorf("charge %s: %w", c.Counter, err)
			}
			applied = append(applied, appliedCharge{Counter: c.Counter, Bucket: bucket, Amount: c.Amount})
		}
		if err := pruneCounter(b, c.Counter, gateway.WindowStart(c.At, c.Window)-bucketSeconds); err != nil {
			return err
		}
	}
	if len(applied) == 0 {
		return nil
	}
	enc, err := json.Marshal(applied)
	if err != nil {
		return fmt.Errorf("encode charges: %w", err)
	}
	if err := tx.Bucket(bucketCharges).Put(dkey, enc); err != nil {
		return fmt.Errorf("record charges: %w", err)
	}
	return nil
}

// refundCharges gives back the charges recorded under a sale's key, in the
// reversal's transaction. A bucket already pruned has nothing left to give
// back: its window is over.
func refundCharges(tx *bolt.Tx, dkey []byte) error {
	rec := tx.Bucket(bucketCharges)
	v := rec.Get(dkey)
	if v == nil {
		return nil
	}
	var applied []appliedCharge
	if err := json.Unmarshal(v, &applied); err != nil {
		return fmt.Errorf("decode charges: %w", err)
	}
	b := tx.Bucket(bucketCounters)
	for _, a := range applied {
		k := counterKey(a.Counter, a.Bucket)
		if b.Get(k) == nil {
			continue
		}
		var err error
		if left := getI64(b, k) - a.Amount; left > 0 {
			err = b.Put(k, u64(uint64(left)))
		} else {
			err = b.Delete(k)
		}
		if err != nil {
			return fmt.Errorf("refund %s: %w", a.Counter, err)
		}
	}
	if err := rec.Delete(dkey); err != nil {
		return fmt.Errorf("refund charges: %w", err)
	}
	return nil
}

// CounterSums returns, for each window, the sum of its counter's buckets
// from gateway.WindowStart(now, window) on, all read in one transaction.
func (s *Store) CounterSums(ctx context.Context, now time.Time, windows []gateway.CounterWindow) ([]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sums := make([]int64, len(windows))
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCounters)
		if b == nil {
			return nil // an older read-only store: no charges yet
		}
		for i, w := range windows {
			sums[i] = windowSum(b, w.Counter, gateway.WindowStart(now, w.Window))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sums, nil
}

// PruneCounters deletes every counter bucket that starts before cutoff
// (unix seconds) and returns how many it deleted, in transactions of at
// most 10,000 deletions.
func (s *Store) PruneCounters(ctx context.Context, cutoff int64) (int, error) {
	return s.pruneInChunks(ctx, func(tx *bolt.Tx) (int, bool, error) {
		b := tx.Bucket(bucketCounters)
		var old [][]byte
		more := false
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			_, bucket, ok := splitCounterKey(k)
			if !ok {
				return 0, false, fmt.Errorf("prune counters: malformed key %x", k)
			}
			if bucket >= cutoff {
				continue
			}
			if len(old) == pruneChunk {
				more = true
				break
			}
			old = append(old, bytes.Clone(k))
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return 0, false, fmt.Errorf("prune counters: %w", err)
			}
		}
		return len(old), more, nil
	})
}

// checkCounters checks the counters' keys and values and that every
// recorded charge decodes.
func checkCounters(tx *bolt.Tx, report func(format string, args ...any)) {
	if b := tx.Bucket(bucketCounters); b != nil {
		_ = b.ForEach(func(k, v []byte) error {
			if _, _, ok := splitCounterKey(k); !ok {
				report("counters %x: malformed key", k)
			} else if len(v) != 8 || int64(binary.BigEndian.Uint64(v)) < 0 {
				report("counters %x: value %x is not a non-negative int64", k, v)
			}
			return nil
		})
	}
	if b := tx.Bucket(bucketCharges); b != nil {
		decisions := tx.Bucket(bucketDecisions)
		_ = b.ForEach(func(k, v []byte) error {
			var applied []appliedCharge
			if err := json.Unmarshal(v, &applied); err != nil {
				report("charges %q: undecodable: %v", k, err)
			}
			if decisions.Get(k) == nil {
				report("charges %q: no decision is stored under the key", k)
			}
			return nil
		})
	}
}
