package boltstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"storegate/central"
	"storegate/gateway"
	"storegate/internal/durable"
	"storegate/internal/groupcommit"
)

// DefaultOpenTimeout is how long Open waits for another process to release
// the file lock unless Timeout is set.
const DefaultOpenTimeout = time.Second

// Bucket names. Every bucket is created when the store is opened.
var (
	accountsBucket         = []byte("accounts")
	authorizationsBucket   = []byte("authorizations")
	authorizationIDsBucket = []byte("authorization_ids")
	settlementsBucket      = []byte("settlements")
	codesBucket            = []byte("codes")
	documentsBucket        = []byte("documents")
	freezeLogBucket        = []byte("freeze_log")
	frozenBucket           = []byte("frozen")

	allBuckets = [][]byte{
		accountsBucket, authorizationsBucket, authorizationIDsBucket,
		settlementsBucket, codesBucket, documentsBucket, freezeLogBucket, frozenBucket,
	}
)

// Store is central.Storage in one bbolt file. Create it with New, set its
// exported fields, then Open it; Close it when done. Its methods are safe
// for concurrent use.
type Store struct {
	// Timeout is how long Open waits for another process to release the
	// file lock; New sets DefaultOpenTimeout.
	Timeout time.Duration
	// MaxBatch bounds how many Update calls share one write transaction;
	// New sets groupcommit.DefaultMaxBatch.
	MaxBatch int

	path    string
	mu      sync.Mutex
	db      *bolt.DB
	commits *groupcommit.Committer
}

var _ central.Storage = (*Store)(nil)

// New returns a store for the file at path with the defaults. It does no
// I/O: Open opens or creates the file.
func New(path string) *Store {
	return &Store{Timeout: DefaultOpenTimeout, MaxBatch: groupcommit.DefaultMaxBatch, path: path}
}

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// Open opens or creates the file and its buckets, and starts the group
// committer. A file locked by another process is an EUNAVAILABLE error once
// Timeout has passed.
func (s *Store) Open(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		return fmt.Errorf("open ledger %s: opened before", s.path)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, statErr := os.Stat(s.path)
	db, err := bolt.Open(s.path, 0o600, &bolt.Options{Timeout: s.Timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return &gateway.Error{
			Code:    gateway.EUNAVAILABLE,
			Message: fmt.Sprintf("open ledger %s: the file is locked by another process (waited %s)", s.path, s.Timeout),
			Err:     err,
		}
	}
	if err != nil {
		return fmt.Errorf("open ledger %s: %w", s.path, err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// bbolt syncs the new file, not its name: a power cut would lose
		// the whole ledger (make powertest found it).
		if err := durable.SyncDir(filepath.Dir(s.path)); err != nil {
			db.Close()
			return fmt.Errorf("open ledger %s: %w", s.path, err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return fmt.Errorf("open ledger %s: %w", s.path, err)
	}
	commits := groupcommit.NewCommitter(db)
	commits.MaxBatch = s.MaxBatch
	if err := commits.Open(); err != nil {
		db.Close()
		return fmt.Errorf("open ledger %s: %w", s.path, err)
	}
	s.db, s.commits = db, commits
	return nil
}

// Close lets the committer finish every Update already queued, then closes
// the file; later calls fail with EUNAVAILABLE. When ctx ends before the
// queue is done, it returns ctx's error and leaves the file open; call it
// again to finish.
func (s *Store) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	if err := s.commits.Close(ctx); err != nil {
		return fmt.Errorf("close ledger: %w", err)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close ledger: %w", err)
	}
	return nil
}

// closed is the error of a call on a store that is not open.
func closed(err error) error {
	return &gateway.Error{Code: gateway.EUNAVAILABLE, Message: "the ledger is not open", Err: err}
}

// handles returns the database and committer, or nil before Open.
func (s *Store) handles() (*bolt.DB, *groupcommit.Committer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db, s.commits
}

// Update runs fn in a write transaction that it may share with concurrent
// calls, and returns once that transaction is committed: nil, fn's error
// (then nothing fn wrote is kept, and the rest of its batch is committed
// without it), or a *groupcommit.TxError when the commit failed and nothing
// of its batch was written. As with DB.Batch, fn may run more than once.
// A caller whose ctx ends while its call is still queued withdraws it and
// gets ctx's error; once the committer has taken it, the call returns its
// true outcome.
func (s *Store) Update(ctx context.Context, fn func(central.Tx) error) error {
	_, commits := s.handles()
	if commits == nil {
		return closed(berrors.ErrDatabaseNotOpen)
	}
	err := commits.Commit(ctx, func(btx *bolt.Tx) error { return fn(&tx{btx}) })
	if errors.Is(err, groupcommit.ErrClosed) || errors.Is(err, groupcommit.ErrNotOpen) {
		return closed(berrors.ErrDatabaseNotOpen)
	}
	return err
}

// View runs fn in a bbolt read transaction.
func (s *Store) View(ctx context.Context, fn func(central.Tx) error) error {
	db, _ := s.handles()
	if db == nil {
		return closed(berrors.ErrDatabaseNotOpen)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.View(func(btx *bolt.Tx) error { return fn(&tx{btx}) })
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return closed(err)
	}
	return err
}

// Check runs bbolt's consistency check over the whole file and returns every
// problem it finds, joined; nil means the file is sound.
func (s *Store) Check() error {
	db, _ := s.handles()
	if db == nil {
		return closed(berrors.ErrDatabaseNotOpen)
	}
	return db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// Stats returns the group committer's counters: how many Update calls were
// committed, and in how many transactions.
func (s *Store) Stats() groupcommit.Stats {
	_, commits := s.handles()
	if commits == nil {
		return groupcommit.Stats{}
	}
	return commits.Stats()
}
