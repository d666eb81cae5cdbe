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
