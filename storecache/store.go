package storecache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"storegate/gateway"
	"storegate/internal/durable"
	"storegate/internal/groupcommit"
)

// Defaults for a Store's exported fields.
const (
	// DefaultOpenTimeout bounds the wait for the file lock, so that a second
	// daemon started on the same file fails fast instead of hanging.
	DefaultOpenTimeout = 1 * time.Second
	// DefaultMaxBatch bounds how many queued commits share one transaction.
	DefaultMaxBatch = groupcommit.DefaultMaxBatch
)

// Errors of Open and of the methods of a closed or read-only store, for
// callers (cmd/storegated, cmd/storegatectl) that branch on them.
var (
	// ErrLocked: another process holds the file (usually a running
	// storegated).
	ErrLocked = errors.New("store file is locked by another process")
	// ErrCorrupt: the file exists but is not a readable bbolt database
	// (garbage, truncated, damaged meta pages). It is left untouched.
	ErrCorrupt = errors.New("store file is corrupt or not a bbolt database")
	// ErrNotStore: the file is a bbolt database, but not a storegate store.
	ErrNotStore = errors.New("file is not a storegate store")
	// ErrReadOnly: a write method was called on a store opened ReadOnly.
	ErrReadOnly = errors.New("store is open read-only")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store is closed")
	// ErrNotOpen: a method was called before Open succeeded.
	ErrNotOpen = errors.New("store is not open")
)

// Store is the gateway's bbolt store. Create it with NewStore, set its
// exported fields, then Open it; Close it when done. The fields are read
// once, by Open. Every method is safe for concurrent use. CommitDecision,
// CommitReversal and AckSettlements go through one group committer
// (internal/groupcommit) that groups them into shared transactions.
type Store struct {
	// ReadOnly opens an existing file for tools that read it while the
	// daemon is stopped (audit export and verify, outbox inspection): Open
	// takes a shared lock, so it fails with ErrLocked while storegated runs,
	// and never creates a file. The read methods and Check work; the write
	// methods return ErrReadOnly.
	ReadOnly bool
	// Timeout bounds the wait for the file lock (exclusive, or shared when
	// ReadOnly); NewStore sets DefaultOpenTimeout, zero means it too, and a
	// negative value waits forever. Open waits no longer than its context
	// allows either.
	Timeout time.Duration
	// Logger receives the store's few log lines (open, failed commits);
	// NewStore sets one that discards them.
	Logger *slog.Logger
	// Now is the clock, used to date refused settlements; NewStore sets
	// time.Now.
	Now func() time.Time
	// MaxBatch bounds how many queued commits share one transaction;
	// NewStore sets DefaultMaxBatch.
	MaxBatch int
	// MaxSize, when positive, caps the file's size in bytes: a commit that
	// would grow the file beyond it fails as a whole and writes nothing.
	MaxSize int
	// NoSync skips the fsync of each commit; Close syncs the file once. It
	// exists for tools that build a throwaway store quickly (storegate-bench
	// builds its million-decision store so): a crash loses what such a
	// store committed, so storegated never sets it. It is ignored when
	// ReadOnly.
	NoSync bool
	// BeforeCommit, when set, is called by the committer goroutine after it
	// has taken the first request of a batch and before it collects the
	// rest. It exists for tests, which hold the committer in it while the
	// queue fills so that batching is deterministic. It must not call the
	// store's commit methods, or it deadlocks.
	BeforeCommit func()

	path      string
	db        *bolt.DB
	readOnly  bool
	noSync    bool
	logger    *slog.Logger
	now       func() time.Time
	committer *groupcommit.Committer

	closeOnce sync.Once
	closeErr  error

	// decisions and reversals count the commits that wrote, for Stats.
	decisions, reversals atomic.Uint64
}

var _ gateway.Store = (*Store)(nil)

// Stats counts the committer's work, so that tests and benchmarks can see
// how well commits are grouped.
type Stats struct {
	// Decisions is the number of decisions committed.
	Decisions uint64
	// Reversals is the number of reversals committed (a repeated reversal,
	// which writes nothing, is not counted).
	Reversals uint64
	// Rejected is the number of commits answered with a conflict
	// (ErrTokenSpent, ErrDecisionExists, ENOTFOUND, ECONFLICT), which wrote
	// nothing.
	Rejected uint64
	// Transactions is the number of write transactions the committer
	// committed; with group commit it is at most Decisions + Reversals.
	Transactions uint64
	// FailedTransactions is the number of committer transactions that
	// failed as a whole (a disk error), writing nothing.
	FailedTransactions uint64
	// LargestBatch is the most requests one transaction has held.
	LargestBatch int
	// Queued is the number of commits waiting for the committer now.
	Queued int
}

// NewStore returns a store for the file at path with the default settings.
// It touches no file until Open.
func NewStore(path string) *Store {
	return &Store{
		Timeout:  DefaultOpenTimeout,
		Logger:   slog.New(slog.DiscardHandler),
		Now:      time.Now,
		MaxBatch: DefaultMaxBatch,
		path:     path,
	}
}

// Open opens the store file, creating it when it does not exist (unless
// ReadOnly), and starts the committer. It fails with ErrLocked when another
// process holds the file past Timeout or ctx's deadline, ErrCorrupt when the
// file exists but cannot be read as a bbolt database (the file is never
// deleted, renamed or recreated), ErrNotStore for another program's bbolt
// file, and a schema error for a store written by a newer build.
func (s *Store) Open(ctx context.Context) error {
	if s.path == "" {
		return errors.New("open store: no path given")
	}
	if s.db != nil {
		return fmt.Errorf("open store %s: it is open already", s.path)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	path, readOnly := s.path, s.ReadOnly
	timeout := s.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultOpenTimeout
	case timeout < 0:
		timeout = 0 // bbolt: wait forever
	}
	if dl, ok := ctx.Deadline(); ok && (timeout == 0 || time.Until(dl) < timeout) {
		timeout = max(time.Until(dl), time.Millisecond)
	}

	fi, err := os.Stat(path)
	existed := err == nil
	switch {
	case err != nil && (readOnly || !errors.Is(err, fs.ErrNotExist)):
		return fmt.Errorf("open store: %w", err)
	case existed && !fi.Mode().IsRegular():
		return fmt.Errorf("open store %s: not a regular file", path)
	case existed && fi.Size() == 0 && readOnly:
		return fmt.Errorf("open store %s: %w: the file is empty", path, ErrNotStore)
	case existed && fi.Size() > 0 && !readOnly:
		// Read-write open loads the freelist, which faults on a truncated
		// file; look at it read-only first.
		if err := preflight(path, timeout); err != nil {
			return err
		}
	}

	noSync := s.NoSync && !readOnly
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: readOnly, MaxSize: s.MaxSize, NoSync: (noSync || brokenNoSync) && !readOnly})
	if err != nil {
		return openError(path, err, existed && fi.Size() > 0)
	}
	if readOnly {
		if err := checkSize(db, path); err != nil {
			_ = db.Close()
			return err
		}
	}
	if !existed && !brokenNoDirSync {
		// Make the new file's directory entry durable too.
		if err := durable.SyncDir(filepath.Dir(path)); err != nil {
			_ = db.Close()
			return fmt.Errorf("open store %s: sync directory: %w", path, err)
		}
	}

	logger, now := s.Logger, s.Now
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	committer := groupcommit.NewCommitter(db)
	if s.MaxBatch > 0 {
		committer.MaxBatch = s.MaxBatch
	}
	committer.Logger = logger
	committer.BeforeCommit = s.BeforeCommit

	if readOnly {
		err = db.View(checkLayout)
	} else {
		err = db.Update(initLayout)
	}
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("open store %s: %w", path, err)
	}

	if !readOnly {
		if err := committer.Open(); err != nil {
			_ = db.Close()
			return fmt.Errorf("open store %s: %w", path, err)
		}
	}
	s.db, s.readOnly, s.noSync, s.logger, s.now, s.committer = db, readOnly, noSync, logger, now, committer
	if existed && fi.Size() == 0 {
		s.logger.Warn("store file was empty; initialized a new store", "path", path)
	}
	s.logger.Info("store opened", "path", path, "read_only", readOnly, "created", !existed)
	return nil
}

// preflight opens an existing file read-only and checks that it holds every
// page its meta page claims, so that a truncated file is reported instead of
// faulting when bbolt reads past its end.
func preflight(path string, timeout time.Duration) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: true})
	if err != nil {
		return openError(path, err, true)
	}
	err = checkSize(db, path)
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("open store %s: %w", path, cerr)
	}
	return err
}

// checkSize compares the file's size with the size its meta page claims.
func checkSize(db *bolt.DB, path string) error {
	var want int64
	if err := db.View(func(tx *bolt.Tx) error { want = tx.Size(); return nil }); err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	if fi.Size() < want {
		return corruptError(path, fmt.Errorf("truncated: the file has %d bytes, its pages need %d", fi.Size(), want))
	}
	return nil
}

// openError explains a failed bbolt.Open.
func openError(path string, err error, nonEmpty bool) error {
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("open store %s: %w (is storegated already running?)", path, ErrLocked)
	case nonEmpty && !errors.Is(err, fs.ErrPermission) && !errors.Is(err, fs.ErrNotExist):
		return corruptError(path, err)
	default:
		return fmt.Errorf("open store %s: %w", path, err)
	}
}

func corruptError(path string, cause error) error {
	return fmt.Errorf("open store %s: %w (%v); the file was left as it is: restore it from a backup, or move it aside by hand to start an empty store", path, ErrCorrupt, cause)
}

// initLayout creates every bucket and the schema version in one transaction,
// after refusing a foreign file or a newer schema without writing anything.
func initLayout(tx *bolt.Tx) error {
	fresh := false
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if err := checkSchema(meta); err != nil {
			return err
		}
	} else {
		var names []string
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			names = append(names, string(name))
			return nil
		})
		if len(names) > 0 {
			return fmt.Errorf("%w: it holds buckets %q and no storegate schema", ErrNotStore, names)
		}
		fresh = true
	}
	migrate := !fresh && tx.Bucket(bucketOfflineAccounts) == nil
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	if migrate {
		if err := migrateOfflineAccounts(tx); err != nil {
			return err
		}
	}
	if !fresh {
		// Every bucket exists now: an older layout is upgraded in place.
		if getU64(tx.Bucket(bucketMeta), keySchema) < SchemaVersion {
			return tx.Bucket(bucketMeta).Put(keySchema, u64(SchemaVersion))
		}
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	head := make([]byte, 8+32)
	copy(head[8:], gateway.GenesisHash[:])
	for k, v := range map[string][]byte{
		string(keySchema):          u64(SchemaVersion),
		string(keyAuditHead):       head,
		string(keyOutboxDepth):     u64(0),
		string(keyOfflineExposure): u64(0),
		string(keyDisputedCount):   u64(0),
	} {
		if err := meta.Put([]byte(k), v); err != nil {
			return fmt.Errorf("init meta: %w", err)
		}
	}
	return nil
}

// checkLayout is initLayout for a read-only store: every bucket must exist.
func checkLayout(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return fmt.Errorf("%w: no meta bucket", ErrNotStore)
	}
	if err := checkSchema(meta); err != nil {
		return err
	}
	schema := getU64(meta, keySchema)
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil && bucketRequired(schema, name) {
			return fmt.Errorf("%w: bucket %s is missing", ErrCorrupt, name)
		}
	}
	return nil
}

func checkSchema(meta *bolt.Bucket) error {
	v := meta.Get(keySchema)
	if len(v) != 8 {
		return fmt.Errorf("%w: the meta bucket has no schema version", ErrNotStore)
	}
	switch n := binary.BigEndian.Uint64(v); {
	case n > SchemaVersion:
		return fmt.Errorf("schema version %d is newer than this build understands (%d): run the storegated that wrote it, or a newer one", n, SchemaVersion)
	case n < 1:
		return fmt.Errorf("%w: schema version %d", ErrNotStore, n)
	}
	return nil
}

// Path returns the store file's path.
func (s *Store) Path() string { return s.path }

// Close stops the committer after it has committed every request already
// queued, then closes the file. Commits that arrive during or after Close
// fail with ErrClosed. When ctx ends before the queue is committed, Close
// returns ctx's error and leaves the file open while the committer finishes
// on its own; call Close again to wait for it and close the file. Once the
// file is closed, Close returns that first result. Close before Open does
// nothing.
func (s *Store) Close(ctx context.Context) error {
	if s.db == nil {
		return nil
	}
	if err := s.committer.Close(ctx); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	s.closeOnce.Do(func() {
		if s.noSync {
			if err := s.db.Sync(); err != nil {
				s.closeErr = fmt.Errorf("close store %s: sync: %w", s.path, err)
			}
		}
		if err := s.db.Close(); err != nil && s.closeErr == nil {
			s.closeErr = fmt.Errorf("close store %s: %w", s.path, err)
		}
	})
	return s.closeErr
}

// Stats returns the committer's counters; zero before Open.
func (s *Store) Stats() Stats {
	if s.committer == nil {
		return Stats{}
	}
	c := s.committer.Stats()
	return Stats{
		Decisions:          s.decisions.Load(),
		Reversals:          s.reversals.Load(),
		Rejected:           c.Rejected,
		Transactions:       c.Transactions,
		FailedTransactions: c.FailedTransactions,
		LargestBatch:       c.LargestBatch,
		Queued:             c.Queued,
	}
}

// view runs fn in a read transaction, naming a closed store plainly.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	if s.db == nil {
		return ErrNotOpen
	}
	return dbError(s.db.View(fn))
}

// update runs fn in a plain write transaction, outside the committer.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	switch {
	case s.db == nil:
		return ErrNotOpen
	case s.readOnly:
		return ErrReadOnly
	}
	return dbError(s.db.Update(fn))
}

func dbError(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// getU64 reads a counter of the meta bucket; a missing one is zero.
func getU64(b *bolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// addU64 adds delta to a counter of the meta bucket, never going below
// zero.
func addU64(b *bolt.Bucket, key []byte, delta int64) error {
	v := getU64(b, key)
	switch {
	case delta >= 0:
		v += uint64(delta)
	case uint64(-delta) > v:
		v = 0
	default:
		v -= uint64(-delta)
	}
	if err := b.Put(key, u64(v)); err != nil {
		return fmt.Errorf("update %s: %w", key, err)
	}
	return nil
}
