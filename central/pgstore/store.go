package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"storegate/central"
	"storegate/gateway"
)

// Defaults of Store's fields.
const (
	// DefaultMaxConns bounds the connection pool unless MaxConns is set.
	DefaultMaxConns = 16
	// DefaultMaxAttempts is how many times a transaction runs before a
	// serialization failure is given up on: enough for a few dozen
	// concurrent sales of one account, each of which updates its balance.
	DefaultMaxAttempts = 25
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait before a
	// retry: it doubles from the first to the second, with full jitter.
	DefaultMinBackoff = time.Millisecond
	DefaultMaxBackoff = 100 * time.Millisecond
	// DefaultMaxWriters bounds the read-write transactions a process runs
	// at once unless MaxWriters is set.
	DefaultMaxWriters = 4
	// DefaultCommitTimeout bounds a commit, which runs on even when the
	// caller's context has ended, so that the caller hears its true
	// outcome.
	DefaultCommitTimeout = 10 * time.Second
)

// Store is central.Storage on PostgreSQL (or an engine that speaks its
// protocol and SQL: YugabyteDB, CockroachDB). Every transaction is
// SERIALIZABLE and is retried whole, with jittered backoff, when it loses a
// serialization conflict (SQLSTATE 40001) or a deadlock (40P01). Create it
// with New, set its exported fields, then Open it; Close it when done. Its
// methods are safe for concurrent use, and several processes may share one
// database.
type Store struct {
	// MaxConns bounds the connection pool; New sets DefaultMaxConns. A
	// pool_max_conns in the DSN wins.
	MaxConns int32
	// MaxAttempts is how many times Update and View run a transaction that
	// keeps losing serialization conflicts; New sets DefaultMaxAttempts.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between attempts; New sets
	// DefaultMinBackoff and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// CommitTimeout bounds a commit; New sets DefaultCommitTimeout.
	CommitTimeout time.Duration
	// AutoMigrate makes Open apply the migrations the database lacks;
	// without it Open refuses a database whose schema is not this build's.
	AutoMigrate bool

	dsn string
	// alone is held for reading by first attempts and for writing by a
	// transaction run again after a serialization failure (see run).
	alone  sync.RWMutex
	opened atomic.Bool
	pool   atomic.Pointer[pgxpool.Pool]
	closed atomic.Bool
	stats  struct {
		committed, retries, failed atomic.Uint64
	}
}

var _ central.Storage = (*Store)(nil)

// New returns a store for the database at dsn (a postgres:// URL or a
// key=value connection string) with the defaults. It does no I/O: Open
// connects.
func New(dsn string) *Store {
	return &Store{
		MaxConns: DefaultMaxConns, MaxAttempts: DefaultMaxAttempts,
		MinBackoff: DefaultMinBackoff, MaxBackoff: DefaultMaxBackoff, CommitTimeout: DefaultCommitTimeout,
		dsn: dsn,
	}
}

// Stats counts a store's transactions.
type Stats struct {
	// Committed is the number of transactions that committed (Update and
	// View alike).
	Committed uint64
	// Retries is the number of times a transaction was run again after a
	// serialization failure or a deadlock.
	Retries uint64
	// Failed is the number of transactions given up on, for any error.
	Failed uint64
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	return Stats{Committed: s.stats.committed.Load(), Retries: s.stats.retries.Load(), Failed: s.stats.failed.Load()}
}

// Open connects to the database and checks its schema, first applying the
// migrations it lacks when AutoMigrate is set. It fails with EUNAVAILABLE
// when the database cannot be reached.
func (s *Store) Open(ctx context.Context) error {
	if s.opened.Swap(true) {
		return errors.New("open postgres: opened before")
	}
	if err := s.open(ctx); err != nil {
		s.opened.Store(false)
		return err
	}
	return nil
}

func (s *Store) open(ctx context.Context) error {
	cfg, err := pgxpool.ParseConfig(s.dsn)
	if err != nil {
		// The DSN may hold a password: say what is wrong, not what it is.
		return gateway.Errorf(gateway.EINVALID, "postgres DSN: %s", dsnError(err))
	}
	if cfg.MaxConns == defaultPoolMaxConns() && s.MaxConns > 0 {
		cfg.MaxConns = s.MaxConns
	}
	// Statements are described once per connection and sent unnamed, so
	// that the server plans every execution for its arguments and the
	// tables as they are now: a statement prepared while a table was
	// small would keep its sequential scan as the table grows.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("open postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return unavailable("open postgres", err)
	}
	s.pool.Store(pool)
	err = nil
	if s.AutoMigrate {
		_, err = s.migrate(ctx)
	}
	if err == nil {
		err = s.checkSchema(ctx)
	}
	if err != nil {
		s.pool.Store(nil)
		pool.Close()
	}
	return err
}

// defaultPoolMaxConns is pgxpool's own default, which a DSN without
// pool_max_conns gets.
func defaultPoolMaxConns() int32 {
	cfg, _ := pgxpool.ParseConfig("")
	return cfg.MaxConns
}

// dsnError is a DSN parse error without the DSN in it.
func dsnError(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		return pe.Unwrap().Error()
	}
	return "cannot be parsed (want postgres://user@host:port/db?options)"
}

// Close refuses new transactions (they fail with EUNAVAILABLE), waits for
// those in flight, and closes the pool. When ctx ends first it returns
// ctx's error; the pool closes once the last transaction ends.
func (s *Store) Close(ctx context.Context) error {
	pool := s.pool.Load()
	if pool == nil || s.closed.Swap(true) {
		return nil
	}
	done := make(chan struct{})
	go func() { pool.Close(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close postgres: transactions in flight: %w", ctx.Err())
	}
}

// Update runs fn in a read-write SERIALIZABLE transaction, retried whole on
// a serialization failure or deadlock (see Store).
func (s *Store) Update(ctx context.Context, fn func(central.Tx) error) error {
	return s.run(ctx, pgx.ReadWrite, func(ptx pgx.Tx) error { return fn(&tx{ctx: ctx, tx: ptx}) })
}

// View runs fn in a read-only SERIALIZABLE transaction, retried as Update's
// are.
func (s *Store) View(ctx context.Context, fn func(central.Tx) error) error {
	return s.run(ctx, pgx.ReadOnly, func(ptx pgx.Tx) error { return fn(&tx{ctx: ctx, tx: ptx}) })
}

// run is the one way into the database: fn in a SERIALIZABLE transaction,
// run again from the start, after a jittered wait, when the transaction
// loses a serialization conflict or a deadlock, at most MaxAttempts times.
// fn must have no effect outside the transaction.
//
// First attempts run concurrently; a transaction run again after losing a
// conflict runs alone in this process. Under SERIALIZABLE, concurrent
// transactions that read and insert keys spread over the same index pages
// (token ids are random) abort each other far more often than they touch
// one row, and letting every loser retry beside the others only repeats
// the collision. So a process under such contention degrades to one
// transaction at a time, and runs them side by side again as soon as
// they stop colliding. (Other processes on the database still collide
// with it: they are why attempts are bounded.)
func (s *Store) run(ctx context.Context, access pgx.TxAccessMode, fn func(pgx.Tx) error) error {
	pool := s.pool.Load()
	if pool == nil || s.closed.Load() {
		return closedError(nil)
	}
	attempts := max(s.MaxAttempts, 1)
	for attempt := 1; ; attempt++ {
		var err error
		if attempt == 1 {
			s.alone.RLock()
			err = s.attempt(ctx, pool, access, fn)
			s.alone.RUnlock()
		} else {
			s.alone.Lock()
			err = s.attempt(ctx, pool, access, fn)
			s.alone.Unlock()
		}
		if err == nil {
			s.stats.committed.Add(1)
			return nil
		}
		if !retryable(err) || attempt == attempts || ctx.Err() != nil {
			s.stats.failed.Add(1)
			if s.closed.Load() {
				return closedError(err)
			}
			if retryable(err) {
				return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
			}
			return unavailable("postgres", err)
		}
		s.stats.retries.Add(1)
		if err := sleep(ctx, s.backoff(attempt)); err != nil {
			s.stats.failed.Add(1)
			return err
		}
	}
}

// attempt runs fn once in a transaction and commits it. The commit runs on
// even when ctx ends (within CommitTimeout), so that the caller hears the
// true outcome of a transaction that may have committed.
func (s *Store) attempt(ctx context.Context, pool *pgxpool.Pool, access pgx.TxAccessMode, fn func(pgx.Tx) error) (err error) {
	ptx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: access})
	if err != nil {
		return err
	}
	detached, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(s.CommitTimeout, time.Second))
	defer cancel()
	if err := fn(ptx); err != nil {
		_ = ptx.Rollback(detached) // the error to report is fn's
		return err
	}
	return ptx.Commit(detached)
}

// backoff is the wait before attempt+1: full jitter over an exponential
// bound.
func (s *Store) backoff(attempt int) time.Duration {
	lo, hi := max(s.MinBackoff, time.Microsecond), max(s.MaxBackoff, s.MinBackoff)
	bound := min(lo<<min(attempt-1, 20), hi)
	return lo/2 + rand.N(bound)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryable reports whether err is a serialization failure or a deadlock,
// after which the whole transaction may be run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// closedError is the error of a call on a store that is not open.
func closedError(err error) error {
	return &gateway.Error{Code: gateway.EUNAVAILABLE, Message: "the ledger's database is not open", Err: err}
}

// unavailable marks an error that says the database could not be reached
// (refused, unreachable, timed out) as EUNAVAILABLE, so that a caller knows
// to try again later; it returns any other error as it is.
func unavailable(op string, err error) error {
	var (
		ce *pgconn.ConnectError
		ne net.Error
	)
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err) {
		return &gateway.Error{Code: gateway.EUNAVAILABLE, Message: op + ": the database cannot be reached", Err: err}
	}
	return err
}
