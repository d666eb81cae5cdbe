// Package storecache is the gateway's durable state: a single bbolt file that
// implements gateway.Store. It holds the idempotency records of decisions, the
// spent token ids, the settlement outbox and the disputed set, each account's
// offline total, the signed documents from HQ and the freeze list, the
// sliding-window limit counters, and the hash-chained audit log.
//
// One decision is one write transaction (DESIGN.md, step 6): its spent token
// id, idempotency record, counter charges, queued settlement and audit
// record are on disk together or not at all. The charges, and an offline
// approval's charge on the offline caps, are re-checked against their caps
// inside that transaction, against the totals the commits before it left, so
// a cap holds however the commits of concurrent lanes are grouped. Concurrent
// decisions from several lanes share a transaction through a single committer
// goroutine (group commit, internal/groupcommit, which central's ledger uses
// too), so that a busy store pays one fsync per batch instead of one per
// decision, without the fixed delay of bbolt's own DB.Batch.
//
// # On-disk layout
//
// Every bucket is created in one write transaction at open. Integers in keys
// are big-endian so that they sort.
//
//	meta          "schema" → uint64; "audit_head" → count (8) + SHA-256 of the
//	              last audit record (32); "outbox_depth", "offline_exposure",
//	              "disputed_count" → uint64 counters kept in the same
//	              transactions as the records they count; "health_probe" →
//	              unix nanoseconds of the last Probe (storegated's health check)
//	decisions     lane + 0x00 + POS transaction id → JSON gateway.StoredDecision
//	spent         token id (16 bytes) → expiry, unix seconds (8)
//	spent_by_exp  expiry (8) + token id → empty, to prune in expiry order
//	outbox        seq (8, from NextSequence) → JSON gateway.Settlement, Seq set
//	outbox_ids    settlement id → seq (8) + offline exposure still counted (8)
//	offline_accounts  account id → uint64, the sum of its outbox_ids
//	              exposure; no entry at zero (added within schema 1: the
//	              first read-write open creates it and fills it from the
//	              outbox)
//	disputed      seq (8) → JSON {settlement, message, refused_at}
//	documents     kind → JSON {version, raw}
//	audit         seq (8, from 1, contiguous) → gateway.EncodeAuditRecord bytes
//	counters      counter name + 0x00 + bucket start, unix seconds (8) → int64
//	              (8): the sliding-window limit counters, one bucket per
//	              gateway.CounterBucket; a window sums the buckets it overlaps
//	charges       lane + 0x00 + POS transaction id → JSON [{counter, bucket,
//	              amount}]: what an approval charged, for its reversal
//	frozen        account id → JSON gateway.FrozenAccount; the freeze
//	              document that produced it is under documents "freeze"
//
// # What this package must never do
//
//   - Never hold a read transaction across I/O: a long reader stalls the
//     writer when the file has to grow. ScanAudit therefore copies a chunk of
//     records out and closes its transaction before it calls back.
//   - Never return a value obtained from Get outside its transaction without
//     copying or decoding it first: bbolt's values point into the memory map.
//   - Never silently recreate a file that fails to open. A corrupt, truncated
//     or foreign file is reported with its path and left exactly as it was;
//     a person decides whether to restore a backup or move it aside. Losing
//     the spent token ids and the unacknowledged settlements is never an
//     automatic decision.
package storecache
