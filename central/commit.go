package central

import (
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// maxGroup bounds how many queued functions share one transaction.
const maxGroup = 512

// groupCommitter runs the ledger's authorizations and settlement batches in
// shared write transactions, the way storecache's committer does for a
// gateway: it takes the first queued function and whatever else is already
// queued, runs them in one transaction and commits at once, so that the
// next transaction holds whatever queued while this one was on its way to
// disk.
//
// bbolt's own DB.Batch instead waits up to its MaxBatchDelay (10 ms) to fill
// a batch, and every online payment waited that out; storegate-bench
// measures the two strategies on the same records (its COMMITS table).
type groupCommitter struct {
	db *bolt.DB
	// mu orders sending against close: senders hold it for reading while
	// they send, close takes it for writing before it closes calls.
	mu     sync.RWMutex
	closed bool
	calls  chan *groupCall
	done   chan struct{}
}

type groupCall struct {
	fn  func(*bolt.Tx) error
	err chan error
}

func newGroupCommitter(db *bolt.DB) *groupCommitter {
	c := &groupCommitter{db: db, calls: make(chan *groupCall, maxGroup), done: make(chan struct{})}
	go c.run()
	return c
}

// update runs fn in a write transaction that it may share with concurrent
// calls, and returns once that transaction is committed: nil, fn's error
// (then nothing fn wrote is kept, and the rest of its batch is committed
// without it), or the commit's error. As with DB.Batch, fn may run more
// than once, so it must set its results afresh each time. After close it
// returns bbolt's ErrDatabaseNotOpen.
func (c *groupCommitter) update(fn func(*bolt.Tx) error) error {
	call := &groupCall{fn: fn, err: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return berrors.ErrDatabaseNotOpen
	}
	c.calls <- call
	c.mu.RUnlock()
	return <-call.err
}

// close commits what is queued and stops the committer. It is safe to call
// more than once.
func (c *groupCommitter) close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.calls)
	}
	c.mu.Unlock()
	<-c.done
}

func (c *groupCommitter) run() {
	defer close(c.done)
	batch := make([]*groupCall, 0, maxGroup)
	for first := range c.calls {
		batch = append(batch[:0], first)
	collect:
		for len(batch) < maxGroup {
			select {
			case call, ok := <-c.calls:
				if !ok {
					break collect
				}
				batch = append(batch, call)
			default:
				break collect
			}
		}
		c.commit(batch)
		clear(batch)
	}
}

// commit runs batch in one transaction. When a function fails, the
// transaction is rolled back, that function is answered with its error, and
// the others run again without it.
func (c *groupCommitter) commit(batch []*groupCall) {
	for len(batch) > 0 {
		failed := -1
		err := c.db.Update(func(tx *bolt.Tx) error {
			for i, call := range batch {
				if err := call.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, call := range batch {
				call.err <- err
			}
			return
		}
		batch[failed].err <- err
		batch = slices.Delete(batch, failed, failed+1)
	}
}
