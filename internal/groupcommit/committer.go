package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// DefaultMaxBatch is the default for Committer.MaxBatch.
const DefaultMaxBatch = 512

// States of a request. A caller whose context ends may withdraw its request
// only while it is pending; once the committer has taken it, the caller
// waits for the batch's outcome, so that it never reports a failure for
// something that was committed.
const (
	reqPending int32 = iota
	reqTaken
	reqWithdrawn
)

// request is one Commit waiting for the committer.
type request struct {
	fn    func(*bolt.Tx) error
	state atomic.Int32
	done  chan struct{}
	err   error // the answer, set before done is closed
}

// Committer runs the write functions of concurrent callers in shared bbolt
// write transactions. Create it with NewCommitter, set its exported fields,
// then Open it; Close it before closing the database. Its methods are safe
// for concurrent use.
type Committer struct {
	// MaxBatch bounds how many requests share one transaction, and how many
	// may wait in the queue; a caller beyond that waits to enqueue.
	// NewCommitter sets DefaultMaxBatch.
	MaxBatch int
	// Logger receives a line for each request that failed and each
	// transaction that failed; NewCommitter sets one that discards them.
	Logger *slog.Logger
	// BeforeCommit, when set, is called by the committer goroutine after it
	// has taken the first request of a batch and before it collects the
	// rest. It exists for tests, which hold the committer in it while the
	// queue fills so that batching is deterministic. It must not call
	// Commit, or it deadlocks.
	BeforeCommit func()

	db *bolt.DB

	// mu orders enqueueing against Close: senders hold it for reading
	// while they send, Close takes it for writing before it closes reqs.
	mu        sync.RWMutex
	open      bool
	closed    bool
	reqs      chan *request
	closing   chan struct{} // closed first by Close: releases blocked senders
	closeOnce sync.Once
	done      chan struct{} // closed when the committer goroutine has ended

	stats struct {
		committed, rejected, failed, withdrawn atomic.Uint64
		transactions, failedTransactions       atomic.Uint64
		largestBatch, waiting                  atomic.Int64
	}
}

// Stats counts a committer's work.
type Stats struct {
	// Committed is the number of requests whose writes were committed.
	Committed uint64
	// Rejected is the number of requests answered with their Reject error,
	// which wrote nothing.
	Rejected uint64
	// Failed is the number of requests answered with their own error; the
	// rest of their batches ran again without them.
	Failed uint64
	// Withdrawn is the number of requests whose callers' contexts ended
	// while they were still queued.
	Withdrawn uint64
	// Transactions is the number of write transactions committed; with
	// group commit it is at most Committed + Rejected.
	Transactions uint64
	// FailedTransactions is the number of transactions that failed as a
	// whole, writing nothing (each answered its requests with a *TxError).
	FailedTransactions uint64
	// LargestBatch is the most requests one committed transaction held.
	LargestBatch int
	// Queued is the number of requests waiting for the committer now
	// (withdrawn ones included until the committer drops them).
	Queued int
	// Waiting is the number of callers waiting now for room in a full
	// queue: a sign that commits arrive faster than the disk takes them.
	Waiting int
}

// NewCommitter returns a committer for db with the default settings. It
// starts nothing until Open.
func NewCommitter(db *bolt.DB) *Committer {
	return &Committer{
		MaxBatch: DefaultMaxBatch,
		Logger:   slog.New(slog.DiscardHandler),
		db:       db,
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// Open starts the committer goroutine. It fails when the fields are
// invalid, when the committer is open already, and after Close.
func (c *Committer) Open() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.open:
		return errors.New("open group committer: it is open already")
	case c.db == nil:
		return errors.New("open group committer: no database")
	case c.MaxBatch < 1:
		return fmt.Errorf("open group committer: MaxBatch is %d, want at least 1", c.MaxBatch)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.open = true
	c.reqs = make(chan *request, c.MaxBatch)
	go c.run()
	return nil
}

// Close refuses new requests (Commit returns ErrClosed, also to callers
// still waiting for room in the queue), lets the committer commit every
// request already queued, and waits for it to end. When ctx ends first,
// Close returns ctx's error and the committer finishes the queue on its own;
// call Close again to wait for it. A committer that has ended (or never
// opened) closes with nil whatever ctx says. Close never closes the
// database.
func (c *Committer) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		// Senders waiting for room in the queue hold mu: release them
		// before taking it.
		close(c.closing)
		c.mu.Lock()
		c.closed = true
		if c.open {
			close(c.reqs)
		} else {
			close(c.done)
		}
		c.mu.Unlock()
	})
	select {
	case <-c.done:
		return nil
	default:
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Commit runs fn in a write transaction it may share with other callers'
// functions, and returns once that transaction is on disk or has failed.
// It returns nil when fn's writes are committed; the error fn gave to
// Reject, with the rest of the batch committed; fn's own error, having kept
// nothing fn wrote, with the rest of the batch committed without it; a
// *TxError when the transaction failed as a whole and nothing of its batch
// was written; ErrNotOpen or ErrClosed. fn may run more than once (when
// another function of its batch fails), so it sets its results afresh each
// time, and its caller reads them only after Commit returns.
//
// When ctx ends while the request is still queued, Commit withdraws it and
// returns ctx's error: fn never runs. Once the committer has taken the
// request, Commit waits for the transaction and returns its true outcome.
func (c *Committer) Commit(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{fn: fn, done: make(chan struct{})}
	if err := c.enqueue(ctx, r); err != nil {
		return err
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqPending, reqWithdrawn) {
			c.stats.withdrawn.Add(1)
			return ctx.Err()
		}
		// Taken into a batch: its outcome is the answer.
		<-r.done
		return r.err
	}
}

func (c *Committer) enqueue(ctx context.Context, r *request) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	switch {
	case c.closed:
		return ErrClosed
	case !c.open:
		return ErrNotOpen
	}
	select {
	case c.reqs <- r:
		return nil
	default:
	}
	c.stats.waiting.Add(1)
	defer c.stats.waiting.Add(-1)
	select {
	case c.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closing:
		return ErrClosed
	}
}

// Stats returns the committer's counters.
func (c *Committer) Stats() Stats {
	st := Stats{
		Committed:          c.stats.committed.Load(),
		Rejected:           c.stats.rejected.Load(),
		Failed:             c.stats.failed.Load(),
		Withdrawn:          c.stats.withdrawn.Load(),
		Transactions:       c.stats.transactions.Load(),
		FailedTransactions: c.stats.failedTransactions.Load(),
		LargestBatch:       int(c.stats.largestBatch.Load()),
		Waiting:            int(c.stats.waiting.Load()),
	}
	c.mu.RLock()
	if c.reqs != nil {
		st.Queued = len(c.reqs)
	}
	c.mu.RUnlock()
	return st
}

// run is the committer goroutine. It takes the first queued request,
// collects whatever else is already queued (up to MaxBatch), and commits
// them all in one transaction, at once. It returns when Close has closed the
// queue and the queue is empty.
func (c *Committer) run() {
	defer close(c.done)
	batch := make([]*request, 0, c.MaxBatch)
	for first := range c.reqs {
		batch = batch[:0]
		if first.state.CompareAndSwap(reqPending, reqTaken) {
			batch = append(batch, first)
		}
		if c.BeforeCommit != nil {
			c.BeforeCommit()
		}
	collect:
		for len(batch) < c.MaxBatch {
			select {
			case r, ok := <-c.reqs:
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
			c.commit(batch)
		}
		clear(batch[:cap(batch)])
	}
}

// commit runs every function of batch, in order, in one write transaction,
// and answers each request once the transaction is on disk or has failed.
// When a function fails, the transaction is rolled back, that request is
// answered with its error, and the others run again without it.
func (c *Committer) commit(batch []*request) {
	live := batch
	for len(live) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, r := range live {
				err := c.call(r.fn, tx)
				var rej *rejectError
				switch {
				case err == nil:
					r.err = nil
				case errors.As(err, &rej):
					r.err = rej.err
				default:
					failed = i
					return err
				}
			}
			return nil
		})
		switch {
		case err == nil:
			c.stats.transactions.Add(1)
			if n := int64(len(live)); n > c.stats.largestBatch.Load() {
				c.stats.largestBatch.Store(n)
			}
			for _, r := range live {
				if r.err != nil {
					c.stats.rejected.Add(1)
				} else {
					c.stats.committed.Add(1)
				}
				close(r.done)
			}
			return
		case failed >= 0:
			// One request could not be written; the rest may still be.
			r := live[failed]
			r.err = err
			c.stats.failed.Add(1)
			c.Logger.Error("commit request failed; committing the rest of its batch without it", "error", err)
			close(r.done)
			live = slices.Delete(live, failed, failed+1)
		default:
			c.stats.failedTransactions.Add(1)
			c.Logger.Error("commit transaction failed; nothing of the batch was written", "requests", len(live), "error", err)
			terr := &TxError{Requests: len(live), Err: err}
			for _, r := range live {
				r.err = terr
				close(r.done)
			}
			return
		}
	}
}

// call runs fn, turning a panic into fn's error, so that one broken request
// is answered like a failed write instead of stopping the committer and
// every caller waiting on it.
func (c *Committer) call(fn func(*bolt.Tx) error, tx *bolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			c.Logger.Error("commit function panicked", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("commit function panicked: %v", p)
		}
	}()
	return fn(tx)
}
