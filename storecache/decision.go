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

// pruneChunk bounds the spent ids PruneSpent removes per transaction, so that
// a long backlog never makes one huge transaction.
const pruneChunk = 10_000

// pruneInChunks runs chunk in one write transaction after another until it
// reports nothing more to do, so that a long prune never holds the writer for
// long. chunk returns how many entries it removed and whether more remain; it
// removes at most pruneChunk. The total is returned with any error.
func (s *Store) pruneInChunks(ctx context.Context, chunk func(tx *bolt.Tx) (int, bool, error)) (int, error) {
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var n int
		more := false
		err := s.update(func(tx *bolt.Tx) error {
			var err error
			n, more, err = chunk(tx)
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if !more {
			return total, nil
		}
	}
}

// LookupDecision returns the decision stored under key, or nil and no error
// when there is none. A key with an empty part or a NUL is EINVALID.
func (s *Store) LookupDecision(ctx context.Context, key gateway.IdempotencyKey) (*gateway.StoredDecision, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validKey(key); err != nil {
		return nil, err
	}
	var d *gateway.StoredDecision
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDecisions).Get(decisionKey(key))
		if v == nil {
			return nil
		}
		// Decoding copies: nothing of d points into the memory map.
		d = new(gateway.StoredDecision)
		if err := json.Unmarshal(v, d); err != nil {
			return fmt.Errorf("decode decision %s: %w", key, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// TokenSpent reports whether tokenID is recorded as spent. A token id of the
// wrong size is EINVALID.
func (s *Store) TokenSpent(ctx context.Context, tokenID []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if len(tokenID) != gateway.TokenIDSize {
		return false, gateway.Errorf(gateway.EINVALID, "token id is %d bytes, want %d", len(tokenID), gateway.TokenIDSize)
	}
	var spent bool
	err := s.view(func(tx *bolt.Tx) error {
		spent = tx.Bucket(bucketSpent).Get(tokenID) != nil
		return nil
	})
	return spent, err
}

// preparedDecision is a DecisionCommit checked and encoded outside the
// transaction, in the caller's goroutine, so that the committer only writes.
type preparedDecision struct {
	key        []byte
	decision   []byte
	tokenID    []byte
	expires    uint64
	settlement *gateway.Settlement
	offline    *gateway.OfflineCharge
	audit      gateway.AuditEntry
	charges    []gateway.CounterCharge
}

func validKey(k gateway.IdempotencyKey) error {
	if k.Lane == "" || k.POSTxnID == "" || strings.IndexByte(k.Lane, 0) >= 0 || strings.IndexByte(k.POSTxnID, 0) >= 0 {
		return gateway.Errorf(gateway.EINVALID, "idempotency key %q: lane and POS transaction id must be non-empty and hold no NUL", k.String())
	}
	return nil
}

func prepareDecision(c *gateway.DecisionCommit) (*preparedDecision, error) {
	if c == nil {
		return nil, gateway.Errorf(gateway.EINVALID, "commit decision: nothing to commit")
	}
	if err := validKey(c.Key); err != nil {
		return nil, err
	}
	p := &preparedDecision{key: decisionKey(c.Key), audit: c.Audit}
	if c.TokenID != nil {
		if len(c.TokenID) != gateway.TokenIDSize {
			return nil, gateway.Errorf(gateway.EINVALID, "commit decision %s: token id is %d bytes, want %d", c.Key, len(c.TokenID), gateway.TokenIDSize)
		}
		exp := c.TokenExpires.Unix()
		if exp <= 0 {
			return nil, gateway.Errorf(gateway.EINVALID, "commit decision %s: token expiry %v is not a time after 1970", c.Key, c.TokenExpires)
		}
		p.tokenID = bytes.Clone(c.TokenID)
		p.expires = uint64(exp)
	}
	if c.Settlement != nil {
		if c.Settlement.ID == "" {
			return nil, gateway.Errorf(gateway.EINVALID, "commit decision %s: the settlement has no id", c.Key)
		}
		if c.Settlement.Mode == gateway.ModeOffline && c.Settlement.Account == "" {
			return nil, gateway.Errorf(gateway.EINVALID, "commit decision %s: an offline settlement must name its account", c.Key)
		}
		stl := *c.Settlement
		stl.TokenID = bytes.Clone(stl.TokenID)
		p.settlement = &stl
	}
	if c.Offline != nil {
		if err := validOfflineCharge(c); err != nil {
			return nil, err
		}
		o := *c.Offline
		p.offline = &o
	}
	var err error
	if p.charges, err = prepareCharges(c.Key, c.Charges); err != nil {
		return nil, err
	}
	if p.decision, err = json.Marshal(&c.Stored); err != nil {
		return nil, gateway.Errorf(gateway.EINVALID, "commit decision %s: encode: %v", c.Key, err)
	}
	return p, nil
}

// CommitDecision durably writes c in one transaction, which it shares with
// concurrent commits (group commit); it returns only once the transaction is
// on disk. It checks before it writes: when c.Key already has a decision it
// returns gateway.ErrDecisionExists, and when c.TokenID is already spent
// (by an earlier transaction, or earlier in the same one) or c.TokenExpires
// is no later than the expiry of an id PruneSpent has forgotten, it returns
// gateway.ErrTokenSpent, in both cases having written nothing. The key is
// checked first, so that a POS retrying a committed sale learns that its
// decision exists rather than that its token is spent. Each of c.Charges is
// then re-checked against its window, counting every decision committed
// before it, in this transaction too: when one would go over its cap it
// returns a *gateway.LimitError, having written nothing, so that two lanes
// can never both pass a cap. When c.Offline is set (it must describe
// c.Settlement, an offline capture), the charge is checked against its caps
// with the account's offline total and the store's offline exposure as they
// stand in the transaction, after the commits batched before it; when it
// does not fit, nothing is written and the error is a
// *gateway.OfflineLimitError. On success the charges are added to their
// counters and recorded for a reversal, and c.Settlement.Seq is set.
//
// When ctx ends before the committer has taken the request, nothing is
// written and ctx's error is returned; once taken, CommitDecision waits for
// the transaction and returns its true outcome. A failed transaction (a disk
// error) is an EUNAVAILABLE error, and nothing of its batch is on disk.
func (s *Store) CommitDecision(ctx context.Context, c *gateway.DecisionCommit) error {
	p, err := prepareDecision(c)
	if err != nil {
		return err
	}
	var seq uint64
	err = s.commit(ctx, opDecision, func(tx *bolt.Tx) (outcome, error) {
		var (
			o   outcome
			err error
		)
		seq, o, err = applyDecision(tx, p)
		return o, err
	})
	if err != nil {
		return err
	}
	if c.Settlement != nil {
		c.Settlement.Seq = seq
	}
	return nil
}

func applyDecision(tx *bolt.Tx, p *preparedDecision) (seq uint64, o outcome, err error) {
	decisions := appendBucket(tx, bucketDecisions)
	spent := tx.Bucket(bucketSpent)
	if decisions.Get(p.key) != nil {
		return 0, outcome{reject: gateway.ErrDecisionExists}, nil
	}
	if p.tokenID != nil && spent.Get(p.tokenID) != nil {
		return 0, outcome{reject: gateway.ErrTokenSpent}, nil
	}
	if p.tokenID != nil && p.expires <= getU64(tx.Bucket(bucketMeta), keySpentForgotten) {
		// An id expiring this early may have been spent and forgotten: a
		// host clock stepped back makes such a token look valid again.
		return 0, outcome{reject: gateway.ErrTokenSpent}, nil
	}
	if p.settlement != nil {
		if reject := checkSettlementNew(tx, p.settlement); reject != nil {
			return 0, outcome{reject: reject}, nil
		}
	}
	if reject := checkCharges(tx, p.charges); reject != nil {
		return 0, outcome{reject: reject}, nil
	}
	if p.offline != nil {
		if lim := checkOfflineCharge(tx, p.offline); lim != nil {
			return 0, outcome{reject: lim}, nil
		}
	}

	if p.tokenID != nil {
		if err := spent.Put(p.tokenID, u64(p.expires)); err != nil {
			return 0, outcome{}, fmt.Errorf("record spent token: %w", err)
		}
		if err := tx.Bucket(bucketSpentByExp).Put(spentIndexKey(p.expires, p.tokenID), nil); err != nil {
			return 0, outcome{}, fmt.Errorf("index spent token: %w", err)
		}
	}
	if err := decisions.Put(p.key, p.decision); err != nil {
		return 0, outcome{}, fmt.Errorf("record decision: %w", err)
	}
	if err := applyCharges(tx, p.key, p.charges); err != nil {
		return 0, outcome{}, err
	}
	if p.settlement != nil {
		if seq, err = enqueueSettlement(tx, p.settlement); err != nil {
			return 0, outcome{}, err
		}
	}
	if err := appendAudit(tx, p.audit); err != nil {
		return 0, outcome{}, err
	}
	return seq, outcome{wrote: true}, nil
}

// CommitReversal durably reverses the approved sale under key: it queues stl
// (whose Kind must be a reversal and whose ID must be rev.ID), records rev on
// the sale's idempotency record, gives the sale's counter charges back and
// appends audit, in one transaction shared with concurrent commits. On
// success it returns rev and false, and sets stl.Seq. When the sale was
// reversed before it writes nothing and returns the stored reversal and
// true. It returns ENOTFOUND when no sale is stored under key and ECONFLICT
// when the sale was declined. Context and disk errors behave as for
// CommitDecision.
func (s *Store) CommitReversal(ctx context.Context, key gateway.IdempotencyKey, rev gateway.Reversal, stl *gateway.Settlement, audit gateway.AuditEntry) (gateway.Reversal, bool, error) {
	if err := validKey(key); err != nil {
		return gateway.Reversal{}, false, err
	}
	switch {
	case stl == nil:
		return gateway.Reversal{}, false, gateway.Errorf(gateway.EINVALID, "reverse %s: no settlement given", key)
	case stl.Kind != gateway.SettlementReversal:
		return gateway.Reversal{}, false, gateway.Errorf(gateway.EINVALID, "reverse %s: settlement kind is %q, want %q", key, stl.Kind, gateway.SettlementReversal)
	case stl.ID == "" || stl.ID != rev.ID:
		return gateway.Reversal{}, false, gateway.Errorf(gateway.EINVALID, "reverse %s: reversal id %q must be the settlement's id %q", key, rev.ID, stl.ID)
	}
	dkey := decisionKey(key)
	qstl := *stl
	qstl.TokenID = bytes.Clone(qstl.TokenID)

	var (
		seq     uint64
		stored  gateway.Reversal
		already bool
	)
	err := s.commit(ctx, opReversal, func(tx *bolt.Tx) (outcome, error) {
		seq, stored, already = 0, gateway.Reversal{}, false
		decisions := appendBucket(tx, bucketDecisions)
		v := decisions.Get(dkey)
		if v == nil {
			return outcome{reject: gateway.Errorf(gateway.ENOTFOUND, "no sale is stored for %s", key)}, nil
		}
		var d gateway.StoredDecision
		if err := json.Unmarshal(v, &d); err != nil {
			return outcome{}, fmt.Errorf("decode decision %s: %w", key, err)
		}
		if d.Reversal != nil {
			stored, already = *d.Reversal, true
			return outcome{}, nil
		}
		if !d.Decision.Approved {
			return outcome{reject: gateway.Errorf(gateway.ECONFLICT, "the sale %s was declined; there is nothing to reverse", key)}, nil
		}
		if reject := checkSettlementNew(tx, &qstl); reject != nil {
			return outcome{reject: reject}, nil
		}

		d.Reversal = &rev
		enc, err := json.Marshal(&d)
		if err != nil {
			return outcome{}, fmt.Errorf("encode decision %s: %w", key, err)
		}
		if err := decisions.Put(dkey, enc); err != nil {
			return outcome{}, fmt.Errorf("record reversal: %w", err)
		}
		if seq, err = enqueueSettlement(tx, &qstl); err != nil {
			return outcome{}, err
		}
		if err := refundCharges(tx, dkey); err != nil {
			return outcome{}, err
		}
		if err := appendAudit(tx, audit); err != nil {
			return outcome{}, err
		}
		stored = rev
		return outcome{wrote: true}, nil
	})
	if err != nil {
		return gateway.Reversal{}, false, err
	}
	if !already {
		stl.Seq = seq
	}
	return stored, already, nil
}

// PruneSpent forgets spent token ids whose expiry is before cutoff (the
// caller adds the clock-skew margin) and returns how many it removed. It
// walks the expiry index, in transactions of at most 10,000 ids. The latest
// expiry it forgets is kept, in the same transaction: from then on
// CommitDecision refuses every token expiring no later than that as spent,
// so that a forgotten id cannot pay again whatever the clock says.
func (s *Store) PruneSpent(ctx context.Context, cutoff time.Time) (int, error) {
	cut := cutoff.Unix()
	return s.pruneInChunks(ctx, func(tx *bolt.Tx) (int, bool, error) {
		index := tx.Bucket(bucketSpentByExp)
		spent := tx.Bucket(bucketSpent)
		var keys [][]byte
		more := false
		c := index.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if len(k) != 8+gateway.TokenIDSize {
				return 0, false, fmt.Errorf("prune spent: malformed index key %x", k)
			}
			if int64(binary.BigEndian.Uint64(k)) >= cut {
				break
			}
			if len(keys) == pruneChunk {
				more = true
				break
			}
			keys = append(keys, bytes.Clone(k))
		}
		if len(keys) > 0 {
			last := binary.BigEndian.Uint64(keys[len(keys)-1])
			if last > getU64(tx.Bucket(bucketMeta), keySpentForgotten) {
				if err := tx.Bucket(bucketMeta).Put(keySpentForgotten, u64(last)); err != nil {
					return 0, false, fmt.Errorf("prune spent: %w", err)
				}
			}
		}
		for _, k := range keys {
			id := k[8:]
			// Only the entry this index key describes.
			if v := spent.Get(id); bytes.Equal(v, k[:8]) {
				if err := spent.Delete(id); err != nil {
					return 0, false, fmt.Errorf("prune spent: %w", err)
				}
			}
			if err := index.Delete(k); err != nil {
				return 0, false, fmt.Errorf("prune spent: %w", err)
			}
		}
		return len(keys), more, nil
	})
}
