package storecache

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// DisputedSettlement is a settlement central refused, kept for a person to
// resolve: the domain's gateway.DisputedSettlement, as stored.
type DisputedSettlement = gateway.DisputedSettlement

// checkSettlementNew refuses a settlement whose id is already queued: the
// id is central's deduplication key, so two records under one id would
// lose one of them.
func checkSettlementNew(tx *bolt.Tx, stl *gateway.Settlement) error {
	if tx.Bucket(bucketOutboxIDs).Get([]byte(stl.ID)) != nil {
		return gateway.Errorf(gateway.ECONFLICT, "settlement %s is already queued", stl.ID)
	}
	return nil
}

// enqueueSettlement appends stl to the outbox under the next seq and keeps
// the counters. An offline capture counts its amount as offline exposure,
// the store's and its account's; a reversal of a capture still queued takes
// its amount off that capture's share, never below zero, so exposure is
// always the sum of what queued offline captures still stand for.
func enqueueSettlement(tx *bolt.Tx, stl *gateway.Settlement) (uint64, error) {
	out := appendBucket(tx, bucketOutbox)
	ids := tx.Bucket(bucketOutboxIDs)
	meta := tx.Bucket(bucketMeta)

	seq, err := out.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("queue settlement: %w", err)
	}
	rec := *stl
	rec.Seq = seq
	raw, err := json.Marshal(&rec)
	if err != nil {
		return 0, fmt.Errorf("encode settlement %s: %w", stl.ID, err)
	}
	if err := out.Put(u64(seq), raw); err != nil {
		return 0, fmt.Errorf("queue settlement %s: %w", stl.ID, err)
	}
	var exposure int64
	if rec.Kind == gateway.SettlementCapture && rec.Mode == gateway.ModeOffline && rec.Amount > 0 {
		exposure = rec.Amount
	}
	if err := ids.Put([]byte(rec.ID), outboxIndexValue(seq, uint64(exposure))); err != nil {
		return 0, fmt.Errorf("index settlement %s: %w", stl.ID, err)
	}
	if err := addOfflineTotal(tx, rec.Account, exposure); err != nil {
		return 0, err
	}
	if rec.Kind == gateway.SettlementReversal && rec.ReversesID != "" && rec.Amount > 0 {
		if v := ids.Get([]byte(rec.ReversesID)); len(v) == 16 {
			capSeq := binary.BigEndian.Uint64(v)
			left := binary.BigEndian.Uint64(v[8:])
			cut := min(left, uint64(rec.Amount))
			if cut > 0 {
				if err := ids.Put([]byte(rec.ReversesID), outboxIndexValue(capSeq, left-cut)); err != nil {
					return 0, fmt.Errorf("index settlement %s: %w", rec.ReversesID, err)
				}
				var capture gateway.Settlement
				if err := json.Unmarshal(out.Get(u64(capSeq)), &capture); err != nil {
					return 0, fmt.Errorf("decode settlement %s: %w", rec.ReversesID, err)
				}
				if err := addOfflineTotal(tx, capture.Account, -int64(cut)); err != nil {
					return 0, err
				}
				exposure -= int64(cut)
			}
		}
	}
	if err := addU64(meta, keyOutboxDepth, 1); err != nil {
		return 0, err
	}
	if exposure != 0 {
		if err := addU64(meta, keyOfflineExposure, exposure); err != nil {
			return 0, err
		}
	}
	return seq, nil
}

// PendingSettlements returns up to limit unacknowledged settlements, in the
// order they were queued. A limit below 1 is EINVALID.
func (s *Store) PendingSettlements(ctx context.Context, limit int) ([]gateway.Settlement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, gateway.Errorf(gateway.EINVALID, "pending settlements: limit %d, want at least 1", limit)
	}
	var out []gateway.Settlement
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var stl gateway.Settlement
			if err := json.Unmarshal(v, &stl); err != nil {
				return fmt.Errorf("decode settlement %x: %w", k, err)
			}
			out = append(out, stl)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AckSettlements applies central's acknowledgements in one transaction:
// accepted and duplicate settlements leave the outbox; refused ones move to
// the disputed set with central's message. Either way the offline exposure
// they stood for is released, the store's and the account's. Unknown ids
// (including ones acknowledged before) are ignored. An unknown status is
// EINVALID, and then nothing is applied.
func (s *Store) AckSettlements(ctx context.Context, acks []gateway.SettlementAck) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, a := range acks {
		switch a.Status {
		case gateway.SettlementAccepted, gateway.SettlementDuplicate, gateway.SettlementRefused:
		default:
			return gateway.Errorf(gateway.EINVALID, "ack settlement %s: unknown status %d", a.ID, a.Status)
		}
	}
	if len(acks) == 0 {
		return nil
	}
	now := s.now()
	// Through the committer, the acks share a transaction (and its fsyncs)
	// with the decisions being committed, instead of taking the writer
	// lock between them.
	return s.commitTx(ctx, opAck, func(tx *bolt.Tx) error {
		out := tx.Bucket(bucketOutbox)
		ids := tx.Bucket(bucketOutboxIDs)
		meta := tx.Bucket(bucketMeta)
		for _, a := range acks {
			v := ids.Get([]byte(a.ID))
			if v == nil {
				continue
			}
			if len(v) != 16 {
				return fmt.Errorf("ack settlement %s: malformed index entry %x", a.ID, v)
			}
			seq := binary.BigEndian.Uint64(v)
			exposure := binary.BigEndian.Uint64(v[8:])
			key := u64(seq)
			var stl gateway.Settlement
			if a.Status == gateway.SettlementRefused || exposure > 0 {
				if err := json.Unmarshal(out.Get(key), &stl); err != nil {
					return fmt.Errorf("ack settlement %s: decode: %w", a.ID, err)
				}
			}
			if a.Status == gateway.SettlementRefused {
				d := DisputedSettlement{Settlement: stl, Message: a.Message, RefusedAt: now}
				raw, err := json.Marshal(&d)
				if err != nil {
					return fmt.Errorf("ack settlement %s: encode: %w", a.ID, err)
				}
				if err := tx.Bucket(bucketDisputed).Put(key, raw); err != nil {
					return fmt.Errorf("ack settlement %s: %w", a.ID, err)
				}
				if err := addU64(meta, keyDisputedCount, 1); err != nil {
					return err
				}
			}
			if err := out.Delete(key); err != nil {
				return fmt.Errorf("ack settlement %s: %w", a.ID, err)
			}
			if err := ids.Delete([]byte(a.ID)); err != nil {
				return fmt.Errorf("ack settlement %s: %w", a.ID, err)
			}
			if err := addU64(meta, keyOutboxDepth, -1); err != nil {
				return err
			}
			if exposure > 0 {
				if err := addU64(meta, keyOfflineExposure, -int64(exposure)); err != nil {
					return err
				}
				if err := addOfflineTotal(tx, stl.Account, -int64(exposure)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// OutboxStats describes the outbox from counters kept in the same
// transactions as the records, and the first queued record: it costs the
// same with one record queued or a million.
func (s *Store) OutboxStats(ctx context.Context) (gateway.OutboxStats, error) {
	if err := ctx.Err(); err != nil {
		return gateway.OutboxStats{}, err
	}
	var st gateway.OutboxStats
	err := s.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		st.Depth = int64(getU64(meta, keyOutboxDepth))
		st.OfflineExposure = int64(getU64(meta, keyOfflineExposure))
		st.Disputed = int64(getU64(meta, keyDisputedCount))
		if k, v := tx.Bucket(bucketOutbox).Cursor().First(); k != nil {
			var first struct {
				CreatedAt time.Time `json:"created_at"`
			}
			if err := json.Unmarshal(v, &first); err != nil {
				return fmt.Errorf("decode settlement %x: %w", k, err)
			}
			st.Oldest = first.CreatedAt
		}
		return nil
	})
	return st, err
}

// DisputedSettlements returns up to limit settlements central refused, in
// the order they were queued. A limit below 1 is EINVALID.
func (s *Store) DisputedSettlements(ctx context.Context, limit int) ([]DisputedSettlement, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, gateway.Errorf(gateway.EINVALID, "disputed settlements: limit %d, want at least 1", limit)
	}
	var out []DisputedSettlement
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDisputed).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			var d DisputedSettlement
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("decode disputed settlement %x: %w", k, err)
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
