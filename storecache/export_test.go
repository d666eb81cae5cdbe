package storecache

import (
	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// CommitDecisionBoltBatch commits c through bbolt's own DB.Batch instead of
// the committer, with the same checks and writes, so that
// BenchmarkCommitDecision can compare the two. It exists only in tests.
func (s *Store) CommitDecisionBoltBatch(c *gateway.DecisionCommit) error {
	p, err := prepareDecision(c)
	if err != nil {
		return err
	}
	var o outcome
	err = s.db.Batch(func(tx *bolt.Tx) error {
		var err error
		_, o, err = applyDecision(tx, p)
		return err
	})
	if err != nil {
		return err
	}
	return o.reject
}

// LeafFill returns how full the leaf pages of a bucket are: the bytes in use
// over the bytes allocated.
func (s *Store) LeafFill(bucket string) (float64, error) {
	var fill float64
	err := s.db.View(func(tx *bolt.Tx) error {
		st := tx.Bucket([]byte(bucket)).Stats()
		if st.LeafAlloc > 0 {
			fill = float64(st.LeafInuse) / float64(st.LeafAlloc)
		}
		return nil
	})
	return fill, err
}
