package storecache

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// SchemaVersion is the on-disk layout this build reads and writes. A store
// written by a newer build is refused rather than misread; an older one is
// upgraded when opened for writing. Version 2 added the limit counters, the
// charges of each sale and the freeze list.
const SchemaVersion = 2

// Bucket names. They are created together in one write transaction at open.
var (
	bucketMeta       = []byte("meta")
	bucketDecisions  = []byte("decisions")
	bucketSpent      = []byte("spent")
	bucketSpentByExp = []byte("spent_by_exp")
	bucketOutbox     = []byte("outbox")
	bucketOutboxIDs  = []byte("outbox_ids")
	bucketDisputed   = []byte("disputed")
	bucketDocuments  = []byte("documents")
	bucketAudit      = []byte("audit")
	bucketCounters   = []byte("counters")
	bucketCharges    = []byte("charges")
	bucketFrozen     = []byte("frozen")

	allBuckets = [][]byte{
		bucketMeta, bucketDecisions, bucketSpent, bucketSpentByExp,
		bucketOutbox, bucketOutboxIDs, bucketDisputed, bucketDocuments, bucketAudit,
		bucketCounters, bucketCharges, bucketFrozen, bucketOfflineAccounts,
	}

	// bucketsSince names the buckets a schema version added: a store of an
	// older version, opened read-only, lacks them, and readers treat them
	// as empty.
	bucketsSince = map[string]uint64{
		string(bucketCounters):        2,
		string(bucketCharges):         2,
		string(bucketFrozen):          2,
		string(bucketOfflineAccounts): 2,
	}
)

// bucketRequired reports whether a store of the given schema version must
// hold the bucket.
func bucketRequired(schema uint64, name []byte) bool {
	return bucketsSince[string(name)] <= schema
}

// Keys of the meta bucket.
var (
	keySchema          = []byte("schema")
	keyAuditHead       = []byte("audit_head")
	keyOutboxDepth     = []byte("outbox_depth")
	keyOfflineExposure = []byte("offline_exposure")
	keyDisputedCount   = []byte("disputed_count")
	// keySpentForgotten holds the latest expiry, in unix seconds, of a
	// spent token id that PruneSpent has forgotten; missing means none.
	keySpentForgotten = []byte("spent_forgotten_through")
)

// appendFill is how full bbolt fills a page it splits in the buckets whose
// keys mostly grow: the audit log and the outbox (sequence numbers) and the
// decisions (each lane's POS transaction ids). bbolt's default splits a full
// page in half, which leaves such a bucket half empty, since nothing is ever
// inserted behind a page once it is split; filling the pages makes the file
// about half the size (storegate-bench reports the size per 100,000
// decisions).
const appendFill = 0.9

// appendBucket returns the named bucket of tx, set to fill its pages to
// appendFill when they split.
func appendBucket(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(name)
	b.FillPercent = appendFill
	return b
}

// u64 returns v as 8 big-endian bytes.
func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// decisionKey returns the decisions bucket's key for k. Lanes and POS
// transaction ids never hold a NUL (CommitDecision refuses one), so the key
// is unambiguous.
func decisionKey(k gateway.IdempotencyKey) []byte {
	b := make([]byte, 0, len(k.Lane)+1+len(k.POSTxnID))
	b = append(b, k.Lane...)
	b = append(b, 0)
	return append(b, k.POSTxnID...)
}

// spentIndexKey returns the spent_by_exp key: the expiry, then the token id.
func spentIndexKey(expires uint64, tokenID []byte) []byte {
	b := make([]byte, 8, 8+len(tokenID))
	binary.BigEndian.PutUint64(b, expires)
	return append(b, tokenID...)
}

// outboxIndexValue returns an outbox_ids value: the settlement's seq and the
// part of its amount still counted as offline exposure.
func outboxIndexValue(seq, exposure uint64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, seq)
	binary.BigEndian.PutUint64(b[8:], exposure)
	return b
}
