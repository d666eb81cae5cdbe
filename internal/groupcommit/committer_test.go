package groupcommit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"storegate/internal/groupcommit"
	"storegate/internal/groupcommit/committertest"
)

// queue starts one Commit of fn per entry, in order, each queued before the
// next starts, while the committer is held; errs[i] receives the answer of
// fns[i]. The caller releases the committer and waits on wg.
func queue(t *testing.T, c *groupcommit.Committer, wg *sync.WaitGroup, errs []error, fns ...func(*bolt.Tx) error) {
	t.Helper()
	base := c.Stats().Queued
	for i, fn := range fns {
		wg.Go(func() { errs[i] = c.Commit(context.Background(), fn) })
		waitQueued(t, c, base+i+1)
	}
}

// hold starts a Commit of fn and waits until the committer has taken it and
// is held in the gate, so that whatever queues next shares its batch.
func hold(t *testing.T, c *groupcommit.Committer, g *committertest.Gate, wg *sync.WaitGroup, err *error, fn func(*bolt.Tx) error) {
	t.Helper()
	wg.Go(func() { *err = c.Commit(context.Background(), fn) })
	g.WaitEntered(t)
}

// fullQueue is a committer whose queue is full: MaxBatch 1, the committer
// held with "first" taken, "queued" in the queue, and a caller of "waiting"
// waiting for room.
type fullQueue struct {
	db *bolt.DB
	c  *groupcommit.Committer
	g  *committertest.Gate
	wg sync.WaitGroup
	// errs holds the answers of "first" and "queued".
	errs []error
	// waiting receives the answer of "waiting".
	waiting chan error
}

// newFullQueue sets up a fullQueue; the caller waiting for room uses ctx.
func newFullQueue(t *testing.T, ctx context.Context) *fullQueue {
	t.Helper()
	f := &fullQueue{db: MustOpenDB(t, nil), errs: make([]error, 2), waiting: make(chan error, 1)}
	f.c, f.g = MustOpenGated(t, f.db, func(c *groupcommit.Committer) { c.MaxBatch = 1 })
	hold(t, f.c, f.g, &f.wg, &f.errs[0], put("first"))
	queue(t, f.c, &f.wg, f.errs[1:], put("queued"))
	go func() { f.waiting <- f.c.Commit(ctx, put("waiting")) }()
	waitWaiting(t, f.c, 1)
	return f
}

// finish releases the committer, closes it, and checks that "first" and
// "queued" were committed and "waiting" was not.
func (f *fullQueue) finish(t *testing.T) {
	t.Helper()
	f.g.Release()
	if err := f.c.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
	f.wg.Wait()
	if f.errs[0] != nil || f.errs[1] != nil {
		t.Errorf("answers of first and queued: got %v, want nil, nil", f.errs)
	}
	wantStored(t, f.db, map[string]bool{"first": true, "queued": true, "waiting": false})
}

// answer waits for the answer of a Commit (or Close) on done.
func answer(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(committertest.Timeout):
		t.Fatal("Commit did not return")
		return nil
	}
}

// commitAll commits n keys from n goroutines at once, runs also (when
// given) in one more goroutine once half of them have started, and returns
// the keys and their answers when all have returned.
func commitAll(c *groupcommit.Committer, n int, also func()) (keys []string, errs []error) {
	keys, errs = make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		keys[i] = fmt.Sprintf("key-%03d", i)
		wg.Go(func() { errs[i] = c.Commit(context.Background(), put(keys[i])) })
		if i == n/2 && also != nil {
			wg.Go(also)
		}
	}
	wg.Wait()
	return keys, errs
}

func TestCommitter_Concurrent(t *testing.T) {
	const n = 200
	db := MustOpenDB(t, nil)
	c := MustOpen(t, db, nil)
	keys, errs := commitAll(c, n, nil)
	for i, err := range errs {
		if err != nil {
			t.Errorf("commit %d: %v", i, err)
		}
	}
	for k, ok := range stored(t, db, keys...) {
		if !ok {
			t.Errorf("key %q is not stored", k)
		}
	}
	st := c.Stats()
	if st.Committed != n || st.Transactions == 0 || st.Transactions > n || st.Rejected+st.Failed+st.Withdrawn+st.FailedTransactions != 0 {
		t.Errorf("Stats: got %+v, want %d committed in 1 to %d transactions, nothing else", st, n, n)
	}
	t.Logf("%d requests in %d transactions, largest batch %d", st.Committed, st.Transactions, st.LargestBatch)
}

// Everything queued while a commit is on its way shares the next
// transaction, with the request the committer took first.
func TestCommitter_GroupCommit(t *testing.T) {
	const n = 100
	db := MustOpenDB(t, nil)
	c, g := MustOpenGated(t, db, nil)

	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		txIDs = map[int]bool{}
		first error
		errs  = make([]error, n-1)
		fns   = make([]func(*bolt.Tx) error, n-1)
	)
	record := func(key string) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			mu.Lock()
			txIDs[tx.ID()] = true
			mu.Unlock()
			return put(key)(tx)
		}
	}
	hold(t, c, g, &wg, &first, record("key-000"))
	for i := range fns {
		fns[i] = record(fmt.Sprintf("key-%03d", i+1))
	}
	queue(t, c, &wg, errs, fns...)
	g.Release()
	wg.Wait()

	if first != nil {
		t.Errorf("the held commit: %v", first)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("commit %d: %v", i+1, err)
		}
	}
	if len(txIDs) != 1 {
		t.Errorf("transactions the functions ran in: got %d, want 1", len(txIDs))
	}
	if st := c.Stats(); st.Committed != n || st.Transactions != 1 || st.LargestBatch != n {
		t.Errorf("Stats: got %d committed in %d transactions (largest %d), want %d in 1", st.Committed, st.Transactions, st.LargestBatch, n)
	}
}

// MaxBatch bounds a transaction, and the queue: callers beyond it wait for
// room and are committed in later batches.
func TestCommitter_MaxBatch(t *testing.T) {
	const maxBatch, n = 4, 11
	db := MustOpenDB(t, nil)
	c, g := MustOpenGated(t, db, func(c *groupcommit.Committer) { c.MaxBatch = maxBatch })

	var (
		wg    sync.WaitGroup
		first error
		errs  = make([]error, n-1)
		keys  = make([]string, n)
	)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%02d", i)
	}
	hold(t, c, g, &wg, &first, put(keys[0]))
	for i := range n - 1 {
		wg.Go(func() { errs[i] = c.Commit(context.Background(), put(keys[i+1])) })
	}
	waitQueued(t, c, maxBatch) // the queue is full; the rest wait for room
	waitWaiting(t, c, n-1-maxBatch)
	g.Release()
	wg.Wait()

	for i, err := range append([]error{first}, errs...) {
		if err != nil {
			t.Errorf("commit %d: %v", i, err)
		}
	}
	for k, ok := range stored(t, db, keys...) {
		if !ok {
			t.Errorf("key %q is not stored", k)
		}
	}
	// The first batch is the held request and maxBatch-1 of the queued.
	if st := c.Stats(); st.Committed != n || st.LargestBatch != maxBatch || st.Transactions < (n+maxBatch-1)/maxBatch {
		t.Errorf("Stats: got %d committed in %d transactions (largest %d), want %d in at least %d, largest %d",
			st.Committed, st.Transactions, st.LargestBatch, n, (n+maxBatch-1)/maxBatch, maxBatch)
	}
}

// A function that fails is answered with its error and leaves nothing
// behind; the transaction is rolled back and the rest of its batch runs
// again without it and is committed together.
func TestCommitter_FailingRequest(t *testing.T) {
	db := MustOpenDB(t, nil)
	c, g := MustOpenGated(t, db, nil)

	boom := errors.New("boom")
	conflict := errors.New("conflict")
	var (
		wg                          sync.WaitGroup
		first                       error
		errs                        = make([]error, 4)
		runsA, runsRej, runsB, runs atomic.Int32
		txA, txB                    atomic.Int64
	)
	hold(t, c, g, &wg, &first, func(tx *bolt.Tx) error { runs.Add(1); return put("first")(tx) })
	queue(t, c, &wg, errs,
		func(tx *bolt.Tx) error { runsA.Add(1); txA.Store(int64(tx.ID())); return put("a")(tx) },
		func(*bolt.Tx) error { runsRej.Add(1); return groupcommit.Reject(conflict) },
		func(tx *bolt.Tx) error {
			if err := put("failed")(tx); err != nil {
				return err
			}
			return fmt.Errorf("write failed: %w", boom)
		},
		func(tx *bolt.Tx) error { runsB.Add(1); txB.Store(int64(tx.ID())); return put("b")(tx) },
	)
	g.Release()
	wg.Wait()

	if first != nil || errs[0] != nil || errs[1] != conflict || !errors.Is(errs[2], boom) || errs[3] != nil {
		t.Fatalf("answers: got %v, %v, want nil, nil, conflict, boom, nil", first, errs)
	}
	wantStored(t, db, map[string]bool{"first": true, "a": true, "b": true, "failed": false})
	if txA.Load() != txB.Load() {
		t.Errorf("the rest of the batch was committed in transactions %d and %d, want one", txA.Load(), txB.Load())
	}
	// The functions before the failed one ran in the rolled-back
	// transaction and again; the one after it ran once.
	if got := [...]int32{runs.Load(), runsA.Load(), runsRej.Load(), runsB.Load()}; got != [...]int32{2, 2, 2, 1} {
		t.Errorf("runs of first, a, the reject, b: got %v, want [2 2 2 1]", got)
	}
	if st := c.Stats(); st.Committed != 3 || st.Rejected != 1 || st.Failed != 1 || st.Transactions != 1 || st.FailedTransactions != 0 || st.LargestBatch != 4 {
		t.Errorf("Stats: got %+v, want 3 committed, 1 rejected, 1 failed, in 1 transaction of 4", st)
	}
}

// A reject is an answer, not a failure: the batch goes on in the same
// transaction and nothing runs twice.
func TestCommitter_Reject(t *testing.T) {
	db := MustOpenDB(t, nil)
	c, g := MustOpenGated(t, db, nil)

	conflict := errors.New("token already spent")
	var (
		wg    sync.WaitGroup
		first error
		errs  = make([]error, 3)
		runs  atomic.Int32
	)
	count := func(fn func(*bolt.Tx) error) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error { runs.Add(1); return fn(tx) }
	}
	hold(t, c, g, &wg, &first, count(put("first")))
	queue(t, c, &wg, errs,
		count(put("x")),
		count(func(*bolt.Tx) error { return groupcommit.Reject(conflict) }),
		count(put("y")),
	)
	g.Release()
	wg.Wait()

	if first != nil || errs[0] != nil || errs[1] != conflict || errs[2] != nil {
		t.Fatalf("answers: got %v, %v, want nil, nil, the conflict itself, nil", first, errs)
	}
	wantStored(t, db, map[string]bool{"first": true, "x": true, "y": true})
	if got := runs.Load(); got != 4 {
		t.Errorf("function runs: got %d, want 4 (once each)", got)
	}
	if st := c.Stats(); st.Committed != 3 || st.Rejected != 1 || st.Failed != 0 || st.Transactions != 1 {
		t.Errorf("Stats: got %+v, want 3 committed and 1 rejected in 1 transaction", st)
	}
	if err := groupcommit.Reject(nil); err != nil {
		t.Errorf("Reject(nil): got %v, want nil", err)
	}
}

// A function that panics is answered with an error like one that fails;
// the committer and the rest of the batch go on.
func TestCommitter_Panic(t *testing.T) {
	db := MustOpenDB(t, nil)
	c, g := MustOpenGated(t, db, nil)
	var (
		wg    sync.WaitGroup
		first error
		errs  = make([]error, 2)
	)
	hold(t, c, g, &wg, &first, put("first"))
	queue(t, c, &wg, errs,
		func(tx *bolt.Tx) error {
			if err := put("panicked")(tx); err != nil {
				return err
			}
			var m map[string]int
			m["x"]++ // a nil map: panics
			return nil
		},
		put("after"),
	)
	g.Release()
	wg.Wait()
	if first != nil || errs[0] == nil || !strings.Contains(errs[0].Error(), "panicked") || errs[1] != nil {
		t.Fatalf("answers: got %v, %v, want nil, a panic error, nil", first, errs)
	}
	wantStored(t, db, map[string]bool{"first": true, "panicked": false, "after": true})
	if err := c.Commit(context.Background(), put("later")); err != nil {
		t.Errorf("Commit after a panic: %v", err)
	}
}

func TestCommitter_Withdraw(t *testing.T) {
	t.Run("Pending", func(t *testing.T) {
		db := MustOpenDB(t, nil)
		c, g := MustOpenGated(t, db, nil)
		var (
			wg    sync.WaitGroup
			first error
			ran   atomic.Bool
		)
		hold(t, c, g, &wg, &first, put("first"))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- c.Commit(ctx, func(tx *bolt.Tx) error { ran.Store(true); return put("withdrawn")(tx) })
		}()
		waitQueued(t, c, 1)
		cancel()
		if err := answer(t, done); !errors.Is(err, context.Canceled) {
			t.Errorf("Commit withdrawn while queued: got %v, want context.Canceled", err)
		}
		g.Release()
		wg.Wait()
		if first != nil {
			t.Fatal(first)
		}
		// A commit after it runs behind it: the committer has passed the
		// withdrawn request by then.
		if err := c.Commit(context.Background(), put("after")); err != nil {
			t.Fatal(err)
		}
		if ran.Load() {
			t.Error("the withdrawn request's function ran")
		}
		wantStored(t, db, map[string]bool{"first": true, "withdrawn": false, "after": true})
		if st := c.Stats(); st.Withdrawn != 1 || st.Committed != 2 {
			t.Errorf("Stats: got %+v, want 1 withdrawn and 2 committed", st)
		}
	})

	t.Run("Taken", func(t *testing.T) {
		// Once taken, the caller waits for the outcome, whatever its
		// context does: it must not hear a failure for a commit that
		// happened.
		db := MustOpenDB(t, nil)
		c, g := MustOpenGated(t, db, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Commit(ctx, put("taken")) }()
		g.WaitEntered(t) // the committer has taken the request
		cancel()
		var err error
		select {
		case err = <-done:
			t.Errorf("Commit returned %v while its batch was still open", err)
		case <-time.After(20 * time.Millisecond):
		}
		g.Release()
		if err == nil {
			err = answer(t, done)
		}
		if err != nil {
			t.Errorf("Commit cancelled after it was taken: got %v, want nil (it committed)", err)
		}
		wantStored(t, db, map[string]bool{"taken": true})
		if st := c.Stats(); st.Withdrawn != 0 || st.Committed != 1 {
			t.Errorf("Stats: got %+v, want 1 committed and none withdrawn", st)
		}
	})

	t.Run("AlreadyDone", func(t *testing.T) {
		db := MustOpenDB(t, nil)
		c := MustOpen(t, db, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Commit(ctx, put("never")); !errors.Is(err, context.Canceled) {
			t.Errorf("Commit with a done context: got %v, want context.Canceled", err)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		wantStored(t, db, map[string]bool{"never": false})
		if st := c.Stats(); st.Transactions != 0 {
			t.Errorf("transactions: got %d, want 0", st.Transactions)
		}
	})

	t.Run("WaitingForRoom", func(t *testing.T) {
		// A caller waiting for room in a full queue gives up when its
		// context ends; its function never runs.
		ctx, cancel := context.WithCancel(context.Background())
		f := newFullQueue(t, ctx)
		cancel()
		if err := answer(t, f.waiting); !errors.Is(err, context.Canceled) {
			t.Errorf("Commit waiting for room: got %v, want context.Canceled", err)
		}
		f.finish(t)
	})
}

func TestCommitter_Close(t *testing.T) {
	t.Run("CommitsQueued", func(t *testing.T) {
		// Close refuses new requests at once and commits what was queued
		// before it returns.
		db := MustOpenDB(t, nil)
		c, g := MustOpenGated(t, db, nil)
		var (
			wg    sync.WaitGroup
			first error
			errs  = make([]error, 5)
			fns   []func(*bolt.Tx) error
			want  = map[string]bool{"first": true, "late": false}
		)
		hold(t, c, g, &wg, &first, put("first"))
		for i := range errs {
			k := fmt.Sprintf("queued-%d", i)
			fns, want[k] = append(fns, put(k)), true
		}
		queue(t, c, &wg, errs, fns...)

		// The committer is held, so a Close whose context is done cannot
		// wait for it; it has closed the committer all the same.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Close(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Close while the committer is held, context done: got %v, want context.Canceled", err)
		}
		if err := c.Commit(context.Background(), put("late")); !errors.Is(err, groupcommit.ErrClosed) {
			t.Errorf("Commit after Close: got %v, want ErrClosed", err)
		}
		g.Release()
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		wg.Wait()
		if first != nil {
			t.Errorf("the held commit: %v", first)
		}
		for i, err := range errs {
			if err != nil {
				t.Errorf("queued commit %d: got %v, want nil (queued before Close)", i, err)
			}
		}
		wantStored(t, db, want)
		if st := c.Stats(); st.Committed != 6 || st.Queued != 0 {
			t.Errorf("Stats: got %+v, want 6 committed and none queued", st)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("second Close: got %v, want nil", err)
		}
		if err := c.Open(); !errors.Is(err, groupcommit.ErrClosed) {
			t.Errorf("Open after Close: got %v, want ErrClosed", err)
		}
	})

	t.Run("ReleasesWaitingForRoom", func(t *testing.T) {
		// A caller waiting for room in a full queue hears ErrClosed from
		// Close, and its function never runs.
		f := newFullQueue(t, context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		closed := make(chan error, 1)
		go func() { closed <- f.c.Close(ctx) }()
		if err := answer(t, closed); !errors.Is(err, context.Canceled) {
			t.Errorf("Close while the committer is held, context done: got %v, want context.Canceled", err)
		}
		if err := answer(t, f.waiting); !errors.Is(err, groupcommit.ErrClosed) {
			t.Errorf("Commit waiting for room during Close: got %v, want ErrClosed", err)
		}
		f.finish(t)
	})

	t.Run("RacingCommits", func(t *testing.T) {
		// Every commit racing with Close is either committed or answered
		// ErrClosed and not written.
		const n = 100
		db := MustOpenDB(t, nil)
		c := MustOpen(t, db, nil)
		keys, errs := commitAll(c, n, func() {
			if err := c.Close(context.Background()); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		got := stored(t, db, keys...)
		committed := 0
		for i, err := range errs {
			switch {
			case err == nil && !got[keys[i]]:
				t.Errorf("commit %d returned nil but is not stored", i)
			case err == nil:
				committed++
			case !errors.Is(err, groupcommit.ErrClosed):
				t.Errorf("commit %d: got %v, want nil or ErrClosed", i, err)
			case got[keys[i]]:
				t.Errorf("commit %d returned ErrClosed but is stored", i)
			}
		}
		if st := c.Stats(); st.Committed != uint64(committed) {
			t.Errorf("Stats.Committed: got %d, want %d", st.Committed, committed)
		}
		t.Logf("%d of %d commits made it before Close", committed, n)
	})

	t.Run("EndedWithContextDone", func(t *testing.T) {
		// A committer that has ended closes with nil, even under a
		// context that is done.
		ended, cancel := context.WithCancel(context.Background())
		cancel()
		never := groupcommit.NewCommitter(MustOpenDB(t, nil))
		opened := MustOpen(t, MustOpenDB(t, nil), nil)
		if err := opened.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		for range 20 { // select would pick either ready case at random
			if err := never.Close(ended); err != nil {
				t.Fatalf("Close of a committer never opened, context done: got %v, want nil", err)
			}
			if err := opened.Close(ended); err != nil {
				t.Fatalf("Close of an ended committer, context done: got %v, want nil", err)
			}
		}
	})

	t.Run("NeverOpened", func(t *testing.T) {
		c := groupcommit.NewCommitter(MustOpenDB(t, nil))
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("Close of a committer never opened: got %v, want nil", err)
		}
		if err := c.Commit(context.Background(), put("x")); !errors.Is(err, groupcommit.ErrClosed) {
			t.Errorf("Commit: got %v, want ErrClosed", err)
		}
	})
}

func TestCommitter_Open(t *testing.T) {
	t.Run("ErrNotOpen", func(t *testing.T) {
		db := MustOpenDB(t, nil)
		c := groupcommit.NewCommitter(db)
		if err := c.Commit(context.Background(), put("x")); !errors.Is(err, groupcommit.ErrNotOpen) {
			t.Errorf("Commit before Open: got %v, want ErrNotOpen", err)
		}
		wantStored(t, db, map[string]bool{"x": false})
	})
	t.Run("Defaults", func(t *testing.T) {
		c := groupcommit.NewCommitter(MustOpenDB(t, nil))
		if c.MaxBatch != groupcommit.DefaultMaxBatch || c.Logger == nil {
			t.Errorf("NewCommitter: got MaxBatch %d, Logger %v, want %d and a logger", c.MaxBatch, c.Logger, groupcommit.DefaultMaxBatch)
		}
	})
	t.Run("ErrTwice", func(t *testing.T) {
		c := MustOpen(t, MustOpenDB(t, nil), nil)
		if err := c.Open(); err == nil {
			t.Error("second Open: got nil, want an error")
		}
	})
	t.Run("ErrMaxBatch", func(t *testing.T) {
		c := groupcommit.NewCommitter(MustOpenDB(t, nil))
		c.MaxBatch = 0
		if err := c.Open(); err == nil || !strings.Contains(err.Error(), "MaxBatch") {
			t.Errorf("Open with MaxBatch 0: got %v, want an error naming MaxBatch", err)
		}
	})
	t.Run("ErrNoDatabase", func(t *testing.T) {
		if err := groupcommit.NewCommitter(nil).Open(); err == nil {
			t.Error("Open without a database: got nil, want an error")
		}
	})
}

// A transaction that fails as a whole answers every request of its batch
// with a *TxError, writes nothing, and leaves the committer working for what
// fits.
func TestCommitter_TransactionFails(t *testing.T) {
	const n = 20
	// bbolt refuses to grow the file past MaxSize: the batch's commit fails.
	db := MustOpenDB(t, &bolt.Options{MaxSize: 1 << 20})
	c, g := MustOpenGated(t, db, nil)
	big := strings.Repeat("x", 100<<10)
	putBig := func(key string) func(*bolt.Tx) error {
		return func(tx *bolt.Tx) error { return tx.Bucket(testBucket).Put([]byte(key), []byte(big)) }
	}
	var (
		wg    sync.WaitGroup
		first error
		errs  = make([]error, n-1)
		fns   []func(*bolt.Tx) error
		want  = map[string]bool{"big-00": false}
	)
	hold(t, c, g, &wg, &first, putBig("big-00"))
	for i := range n - 1 {
		k := fmt.Sprintf("big-%02d", i+1)
		fns, want[k] = append(fns, putBig(k)), false
	}
	queue(t, c, &wg, errs, fns...)
	g.Release()
	wg.Wait()

	for i, err := range append([]error{first}, errs...) {
		var te *groupcommit.TxError
		if !errors.As(err, &te) || te.Requests != n || !errors.Is(err, berrors.ErrMaxSizeReached) {
			t.Errorf("commit %d: got %v, want a *TxError of %d requests wrapping ErrMaxSizeReached", i, err, n)
		}
	}
	wantStored(t, db, want)
	if st := c.Stats(); st.FailedTransactions != 1 || st.Committed != 0 || st.Transactions != 0 {
		t.Errorf("Stats: got %+v, want 1 failed transaction and nothing committed", st)
	}

	if err := c.Commit(context.Background(), put("small")); err != nil {
		t.Fatalf("Commit of what fits after the failed batch: %v", err)
	}
	wantStored(t, db, map[string]bool{"small": true})
}
