package central

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"storegate/gateway"
	"storegate/internal/durable"
	"storegate/internal/groupcommit"
)

// Defaults for a Ledger's exported fields.
const (
	// DefaultOpenTimeout is how long Open waits for another process to
	// release the file lock.
	DefaultOpenTimeout = time.Second
	// DefaultCurrency is the ledger's currency when none is configured.
	DefaultCurrency = "JPY"
)

// MaxAmount bounds every amount and balance, in minor units, so that no sum
// the ledger makes can overflow an int64.
const MaxAmount int64 = 1 << 52

// Bucket names. Every bucket is created when the ledger is opened.
var (
	// accountsBucket maps an account id to its account record.
	accountsBucket = []byte("accounts")
	// authorizationsBucket maps a credential key (credentialKey) to the
	// Authorization recorded for it: the proof that a token id or payment
	// code was used.
	authorizationsBucket = []byte("authorizations")
	// authorizationIDsBucket maps an authorization id to its credential
	// key, so that a capture naming the id finds its authorization.
	authorizationIDsBucket = []byte("authorization_ids")
	// settlementsBucket maps a settlement id to its BookedSettlement.
	settlementsBucket = []byte("settlements")
	// codesBucket maps a numeric payment code to the account it charges.
	codesBucket = []byte("codes")
	// documentsBucket maps a document kind (gateway.DocumentKind), and for
	// a store's policy "/" and the store id, to the latest published signed
	// document of that kind and scope.
	documentsBucket = []byte("documents")
	// freezeLogBucket maps a freeze list version (8 bytes, big-endian) to
	// the published freeze list: the latest snapshot, if any, and every
	// delta after it.
	freezeLogBucket = []byte("freeze_log")
	// frozenBucket maps a frozen account id to its gateway.FrozenAccount:
	// the freeze lists applied to central's own books.
	frozenBucket = []byte("frozen")

	allBuckets = [][]byte{
		accountsBucket, authorizationsBucket, authorizationIDsBucket,
		settlementsBucket, codesBucket, documentsBucket, freezeLogBucket, frozenBucket,
	}
)

// currencyPattern is an ISO 4217 alphabetic code.
var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// Ledger is the central service's books: accounts, authorizations,
// settlements, payment codes and published documents, in one bbolt file.
// Create it with NewLedger, set its exported fields, then Open it; Close it
// when done. The fields are read once, by Open. Its methods are safe for
// concurrent use.
type Ledger struct {
	// Timeout is how long Open waits for the file lock; NewLedger sets
	// DefaultOpenTimeout, and zero means it too.
	Timeout time.Duration
	// Currency is the one currency the ledger books; NewLedger sets
	// DefaultCurrency, and empty means it too.
	Currency string
	// Verifier checks payment tokens; its zero value uses the gateway's
	// default lifetime cap and clock skew.
	Verifier gateway.TokenVerifier

	db       *bolt.DB
	path     string
	currency string
	verifier gateway.TokenVerifier
	// commits groups concurrent authorizations and settlement batches into
	// shared transactions.
	commits *groupcommit.Committer
}

// NewLedger returns a ledger for the file at path with the default
// settings. It touches no file until Open.
func NewLedger(path string) *Ledger {
	return &Ledger{Timeout: DefaultOpenTimeout, Currency: DefaultCurrency, path: path}
}

// Open opens or creates the ledger file and creates its buckets. A file
// locked by another process is an EUNAVAILABLE error once Timeout, or ctx's
// deadline when that comes first, has passed.
func (l *Ledger) Open(ctx context.Context) error {
	if l.db != nil {
		return fmt.Errorf("open ledger %s: it is open already", l.path)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("open ledger %s: %w", l.path, err)
	}
	timeout, currency := l.Timeout, l.Currency
	if timeout <= 0 {
		timeout = DefaultOpenTimeout
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	if currency == "" {
		currency = DefaultCurrency
	}
	if !currencyPattern.MatchString(currency) {
		return gateway.Errorf(gateway.EINVALID, "ledger currency %q: want three capital letters (ISO 4217)", currency)
	}
	path := l.path
	_, statErr := os.Stat(path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return &gateway.Error{
			Code:    gateway.EUNAVAILABLE,
			Message: fmt.Sprintf("open ledger %s: the file is locked by another process (waited %s)", path, timeout),
			Err:     err,
		}
	}
	if err != nil {
		return fmt.Errorf("open ledger %s: %w", path, err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// bbolt syncs the new file, not its name: a power cut would lose
		// the whole ledger.
		if err := durable.SyncDir(filepath.Dir(path)); err != nil {
			db.Close()
			return fmt.Errorf("open ledger %s: %w", path, err)
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
		return fmt.Errorf("open ledger %s: %w", path, err)
	}
	commits := groupcommit.NewCommitter(db)
	if err := commits.Open(); err != nil {
		db.Close()
		return fmt.Errorf("open ledger %s: %w", path, err)
	}
	l.db, l.currency, l.verifier, l.commits = db, currency, l.Verifier, commits
	return nil
}

// Close closes the ledger file. Transactions in flight and authorizations
// already queued finish first; when ctx ends before they have, Close
// returns ctx's error and leaves the file open while they finish, and a
// later Close closes it. Close before Open does nothing.
func (l *Ledger) Close(ctx context.Context) error {
	if l.db == nil {
		return nil
	}
	if err := l.commits.Close(ctx); err != nil {
		return fmt.Errorf("close ledger: %w", err)
	}
	if err := l.db.Close(); err != nil {
		return fmt.Errorf("close ledger: %w", err)
	}
	return nil
}

// update runs fn in a write transaction that it may share with concurrent
// calls, and returns once that transaction is committed: nil, fn's error
// (then nothing fn wrote is kept, and the rest of its batch is committed
// without it), or a *groupcommit.TxError when the commit failed and nothing
// of its batch was written. As with DB.Batch, fn may run more than once, so
// it must set its results afresh each time. After Close it returns bbolt's
// ErrDatabaseNotOpen, as the ledger's reads do.
func (l *Ledger) update(fn func(*bolt.Tx) error) error {
	err := l.commits.Commit(context.Background(), fn)
	if errors.Is(err, groupcommit.ErrClosed) {
		return fmt.Errorf("ledger is closed: %w", berrors.ErrDatabaseNotOpen)
	}
	return err
}

// Path returns the ledger file's path.
func (l *Ledger) Path() string { return l.path }

// Check runs bbolt's consistency check over the whole file and returns every
// problem it finds, joined; nil means the file is sound.
func (l *Ledger) Check() error {
	return l.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// getJSON decodes the value under key into v and reports whether there was
// one. The decoded value does not alias bbolt's memory.
func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	return true, decodeJSON(raw, v)
}

// decodeJSON decodes a stored record into v.
func decodeJSON(raw []byte, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode record: %w", err)
	}
	return nil
}

// putJSON encodes v under key.
func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	return b.Put(key, raw)
}
