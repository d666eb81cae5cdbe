package storecache

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// Bounds of one ScanAudit read transaction. The records are copied out and
// the transaction closed before fn sees them.
const (
	scanChunkRecords = 512
	scanChunkBytes   = 256 << 10
)

// readHead returns the audit head kept in the meta bucket.
func readHead(tx *bolt.Tx) (uint64, [32]byte, error) {
	var head [32]byte
	v := tx.Bucket(bucketMeta).Get(keyAuditHead)
	if len(v) != 8+32 {
		return 0, head, fmt.Errorf("audit head: malformed (%d bytes)", len(v))
	}
	copy(head[:], v[8:])
	return binary.BigEndian.Uint64(v), head, nil
}

// appendAudit numbers e after the head, chains it to the last record and
// moves the head, in tx.
func appendAudit(tx *bolt.Tx, e gateway.AuditEntry) error {
	n, prev, err := readHead(tx)
	if err != nil {
		return err
	}
	raw, err := gateway.EncodeAuditRecord(n+1, prev, e)
	if err != nil {
		return err
	}
	if err := appendBucket(tx, bucketAudit).Put(u64(n+1), raw); err != nil {
		return fmt.Errorf("append audit record %d: %w", n+1, err)
	}
	sum := sha256.Sum256(raw)
	head := make([]byte, 8+32)
	binary.BigEndian.PutUint64(head, n+1)
	copy(head[8:], sum[:])
	if err := tx.Bucket(bucketMeta).Put(keyAuditHead, head); err != nil {
		return fmt.Errorf("move audit head: %w", err)
	}
	return nil
}

// AuditHead returns the number of audit records and the SHA-256 of the last
// one (gateway.GenesisHash when there is none).
func (s *Store) AuditHead(ctx context.Context) (uint64, [32]byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, [32]byte{}, err
	}
	var (
		n    uint64
		head [32]byte
	)
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		n, head, err = readHead(tx)
		return err
	})
	return n, head, err
}

// ScanAudit calls fn for each stored audit record from seq from on, in
// order, with the stored bytes. raw is valid only during the call: the
// records are copied, a chunk at a time, into a buffer that the next chunk
// reuses, so that fn may do I/O (export to a file) without holding a read
// transaction open. A record appended during the scan may or may not be
// seen. An error from fn or ctx stops the scan and is returned.
func (s *Store) ScanAudit(ctx context.Context, from uint64, fn func(seq uint64, raw []byte) error) error {
	_, _, _, err := s.scanAudit(ctx, from, fn)
	return err
}

// scanAudit is ScanAudit that also returns the head read in the same
// transaction as the end of the log, and the last seq seen.
func (s *Store) scanAudit(ctx context.Context, from uint64, fn func(seq uint64, raw []byte) error) (last uint64, headN uint64, head [32]byte, err error) {
	next := max(from, 1)
	var (
		buf  []byte
		seqs []uint64
		ends []int
	)
	for {
		if err := ctx.Err(); err != nil {
			return last, 0, head, err
		}
		buf, seqs, ends = buf[:0], seqs[:0], ends[:0]
		atEnd := false
		err := s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketAudit).Cursor()
			for k, v := c.Seek(u64(next)); ; k, v = c.Next() {
				if k == nil {
					atEnd = true
					var err error
					headN, head, err = readHead(tx)
					return err
				}
				if len(seqs) == scanChunkRecords || len(buf) >= scanChunkBytes {
					return nil
				}
				if len(k) != 8 {
					return fmt.Errorf("audit: malformed key %x", k)
				}
				seqs = append(seqs, binary.BigEndian.Uint64(k))
				buf = append(buf, v...)
				ends = append(ends, len(buf))
			}
		})
		if err != nil {
			return last, 0, head, err
		}
		start := 0
		for i, seq := range seqs {
			if err := ctx.Err(); err != nil {
				return last, 0, head, err
			}
			if err := fn(seq, buf[start:ends[i]:ends[i]]); err != nil {
				return last, 0, head, err
			}
			start = ends[i]
			last = seq
		}
		if atEnd {
			return last, headN, head, nil
		}
		next = last + 1
	}
}

// VerifyAudit walks the whole audit log with gateway.AuditChain (sequence
// numbers, chain hashes, each record stored under its own number) and then
// compares the chain's end with the head kept in the meta bucket, which
// catches a changed or removed last record. It returns the number of records
// verified; the error is EINVALID and names the first broken record.
func (s *Store) VerifyAudit(ctx context.Context) (uint64, error) {
	var chain gateway.AuditChain
	_, headN, head, err := s.scanAudit(ctx, 1, func(seq uint64, raw []byte) error {
		rec, err := chain.Add(raw)
		if err != nil {
			return err
		}
		if rec.Seq != seq {
			return gateway.Errorf(gateway.EINVALID, "audit record %d is stored under number %d", rec.Seq, seq)
		}
		return nil
	})
	n, _ := chain.Head()
	if err != nil {
		return n, err
	}
	if err := chain.CheckHead(headN, head); err != nil {
		return n, err
	}
	return n, nil
}
