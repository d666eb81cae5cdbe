package storecache

import (
	"context"
	"slices"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// States of a commitReq. A caller whose context ends may withdraw a request
// only while it is still pending; once the committer has taken it, the
// caller waits for the batch's outcome, so that it never reports a failure
// for something that was committed.
const (
	reqPending int32 = iota
	reqTaken
	reqWithdrawn
)

// opKind says what a commitReq commits, for Stats.
type opKind int

const (
	opDecision opKind = iota
	opReversal
	opAck
)

// outcome is what one request did inside a transaction that went on.
type outcome struct {
	// wrote is true when the request wrote its records.
	wrote bool
	// reject is the request's answer when it wrote nothing because of a
	// conflict with what is stored.
	reject error
}

// commitReq is one CommitDecision or CommitReversal waiting for the
// committer.
type commitReq struct {
	kind opKind
	// apply runs inside the batch's write transaction. It checks before it
	// writes: a conflict is returned as outcome.reject, having written
	// nothing, and the batch goes on. An error (a failed write or encoding)
	// aborts the transaction; the committer answers this request with it and
	// runs the batch again without it. apply may run more than once, so it
	// keeps its results in variables it overwrites, read by the caller only
	// after done.
	apply func(tx *bolt.Tx) (outcome, error)

	state atomic.Int32
	done  chan struct{}
	wrote bool
	err   error
}

// commitTx runs fn through the committer, in a transaction it may share
// with other queued commits. When fn fails, nothing it wrote is kept, it
// returns fn's error, and the rest of its batch is committed without it.
// Like every apply, fn may run more than once.
func (s *Store) commitTx(ctx context.Context, kind opKind, fn func(tx *bolt.Tx) error) error {
	r := &commitReq{kind: kind}
	r.apply = func(tx *bolt.Tx) (outcome, error) {
		if err := fn(tx); err != nil {
			return outcome{}, err
		}
		return outcome{wrote: true}, nil
	}
	return s.commit(ctx, r)
}

// commit queues r for the committer and waits for its answer.
func (s *Store) commit(ctx context.Context, r *commitReq) error {
	if s.readOnly {
		return ErrReadOnly
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.done = make(chan struct{})
	if err := s.enqueue(ctx, r); err != nil {
		return err
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqPending, reqWithdrawn) {
			return ctx.Err()
		}
		// Taken into a batch: its outcome is the answer.
		<-r.done
		return r.err
	}
}

func (s *Store) enqueue(ctx context.Context, r *commitReq) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
}

// runCommitter is the committer goroutine. It takes the first queued
// request, collects whatever else is already queued (up to maxBatch), and
// commits them all in one transaction, at once: the next batch is whatever
// queued up while this one was on its way to disk. It returns when Close has
// closed the queue and the queue is empty.
func (s *Store) runCommitter() {
	defer close(s.committerDone)
	batch := make([]*commitReq, 0, s.maxBatch)
	for first := range s.reqs {
		batch = batch[:0]
		if first.state.CompareAndSwap(reqPending, reqTaken) {
			batch = append(batch, first)
		}
		if s.beforeCommit != nil {
			s.beforeCommit()
		}
	collect:
		for len(batch) < s.maxBatch {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break collect
				}
				if r.state.CompareAndSwap(reqPending, reqTaken) {
					batch = append(batch, r)
				}
			default:
				break collect
			}
		}
		if len(batch) > 0 {
			s.commitBatch(batch)
		}
		clear(batch[:cap(batch)])
	}
}

// commitBatch applies every request of batch, in order, in one write
// transaction, and answers each once the transaction is on disk (or has
// failed).
func (s *Store) commitBatch(batch []*commitReq) {
	live := batch
	for len(live) > 0 {
		failed := -1
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, r := range live {
				o, err := r.apply(tx)
				if err != nil {
					failed = i
					return err
				}
				r.wrote, r.err = o.wrote, o.reject
			}
			return nil
		})
		switch {
		case err == nil:
			s.stats.transactions.Add(1)
			if n := int64(len(live)); n > s.stats.largestBatch.Load() {
				s.stats.largestBatch.Store(n)
			}
			for _, r := range live {
				switch {
				case r.err != nil:
					s.stats.rejected.Add(1)
				case r.wrote && r.kind == opDecision:
					s.stats.decisions.Add(1)
				case r.wrote && r.kind == opReversal:
					s.stats.reversals.Add(1)
				}
				close(r.done)
			}
			return
		case failed >= 0:
			// One request could not be written; the rest may still be.
			r := live[failed]
			r.wrote, r.err = false, err
			s.logger.Error("commit request failed; committing the rest of its batch without it", "error", err)
			close(r.done)
			live = slices.Delete(live, failed, failed+1)
		default:
			s.stats.failed.Add(1)
			s.logger.Error("commit transaction failed; nothing of the batch was written", "requests", len(live), "error", err)
			werr := &gateway.Error{Code: gateway.EUNAVAILABLE, Message: "store: commit failed, nothing was written", Err: dbError(err)}
			for _, r := range live {
				r.wrote, r.err = false, werr
				close(r.done)
			}
			return
		}
	}
}
