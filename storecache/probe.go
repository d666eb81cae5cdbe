package storecache

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// keyProbe holds the time of the last successful Probe, in the meta bucket.
var keyProbe = []byte("health_probe")

// Probe proves that the store can still be written: it commits a tiny write
// transaction (the current time under "health_probe" in the meta bucket) and
// returns once bbolt has synced it to disk. It fails when the file cannot be
// written or synced (a full or read-only disk, an I/O error), when the store
// is closed (ErrClosed) or read-only (ErrReadOnly). While a decision's
// transaction holds the writer, Probe waits for it, so a stuck writer shows
// as a Probe that does not return.
func (s *Store) Probe(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyProbe, u64(uint64(s.now().UnixNano())))
	})
}
