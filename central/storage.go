package central

import (
	"context"
	"time"

	"storegate/gateway"
)

// Storage is where HQ's books and published documents live: bbolt in one
// file (package central/boltstore, the embedded default) or PostgreSQL
// (package central/pgstore, a chain's production). The rules that decide
// what is written are central's, written once against Tx; a backend only
// reads and writes records.
//
// A backend must pass the contract suite in package central/storetest.
// Adding a kind of record means a few Tx methods, a migration in pgstore, a
// bucket in boltstore, and contract tests that exercise it through the
// domain.
type Storage interface {
	// Open opens the storage and makes it ready: bbolt opens the file and
	// creates its buckets; PostgreSQL connects and checks that the schema
	// is migrated. It fails when the storage cannot be reached, is locked
	// by another process (EUNAVAILABLE), or was opened before.
	Open(ctx context.Context) error
	// Close waits for the transactions in flight, then releases the
	// storage; later transactions fail with an EUNAVAILABLE error. When ctx
	// ends first it returns ctx's error, having released what it could.
	Close(ctx context.Context) error
	// Update runs fn in a read-write transaction and returns nil once it
	// is committed; fn's error, unchanged, when fn fails (nothing fn wrote
	// is kept); or an error of the storage's, when nothing was written or
	// (only where the commit itself was lost on the network) the outcome is
	// unknown. fn may run more than once — bbolt reruns a group-committed
	// batch without a member that failed, PostgreSQL reruns a transaction
	// that lost a serialization conflict — so fn must have no effect
	// outside tx and must set its results afresh on every run; nor may it
	// call Update or View itself (a backend may hold a lock). ctx reaches
	// the storage: a caller whose ctx ends may withdraw while its
	// transaction is still queued (bbolt) or in flight (PostgreSQL), and
	// then gets ctx's error and nothing is written.
	Update(ctx context.Context, fn func(Tx) error) error
	// View runs fn in a read-only transaction that sees one consistent
	// snapshot, and returns fn's error unchanged or an error of the
	// storage's. fn may run more than once, as for Update.
	View(ctx context.Context, fn func(Tx) error) error
}

// Tx is one storage transaction, bound to the context its Update or View
// was given. Reads return copies that the caller may keep and change;
// nothing is written until a write method is called with them. Reads take
// many keys at once so that a batch is read in a round trip, and return only
// the records that exist. Every method returns an error of the storage's
// when it cannot read or write; in a View, write methods fail.
//
// Writes never decide uniqueness by reading first: inserts are "insert if
// absent" on the record's primary key and report how many they inserted,
// so that a conflicting concurrent writer is caught by the storage (as a
// serialization failure, retried) and not by luck.
type Tx interface {
	// Accounts returns the accounts that exist among ids, by id.
	Accounts(ids []string) (map[string]*Account, error)
	// InsertAccount creates a, unless an account with its id exists, and
	// reports whether it created it.
	InsertAccount(a *Account) (bool, error)
	// PutAccounts writes each account whole (balance, currency, funded),
	// creating those that do not exist.
	PutAccounts(accts []*Account) error
	// EachAccount calls fn for every account, in no set order, and stops at
	// fn's first error, which it returns.
	EachAccount(fn func(*Account) error) error

	// PaymentCode returns the account a payment code charges, and false
	// when the code was never issued.
	PaymentCode(code string) (account string, ok bool, err error)
	// InsertPaymentCode records that code charges account, unless the code
	// exists, and reports whether it recorded it.
	InsertPaymentCode(code, account string) (bool, error)

	// Authorizations returns the authorizations recorded under keys, by
	// key.
	Authorizations(keys []CredentialKey) (map[CredentialKey]*Authorization, error)
	// AuthorizationsByID returns the authorizations with the given ids (an
	// approval's id; declines and offline spends have none), by id.
	AuthorizationsByID(ids []string) (map[string]*Authorization, error)
	// InsertAuthorizations records each authorization under its Key, unless
	// one is recorded there, and returns how many it recorded. A non-empty
	// ID must be unique among authorizations.
	InsertAuthorizations(auths []*Authorization) (int, error)
	// UpdateAuthorizations writes the state of recorded authorizations,
	// found by Key: Status, Reason, Message, CapturedBy and VoidedAt. The
	// rest of a record never changes once written.
	UpdateAuthorizations(auths []*Authorization) error
	// HeldBefore returns at most limit authorizations whose Status is
	// AuthHeld and that were created before cutoff, oldest first.
	HeldBefore(cutoff time.Time, limit int) ([]*Authorization, error)
	// EachAuthorization calls fn for every authorization, in no set
	// order, and stops at fn's first error, which it returns.
	EachAuthorization(fn func(*Authorization) error) error

	// Settlements returns the booked settlements with the given ids, by
	// id.
	Settlements(ids []string) (map[string]*BookedSettlement, error)
	// InsertSettlements books each settlement under its ID, unless one is
	// booked there, and returns how many it booked.
	InsertSettlements(stls []*BookedSettlement) (int, error)
	// SetReversedBy records, for each capture id in reversals, the id of
	// the reversal that gave it back (BookedSettlement.ReversedBy).
	SetReversedBy(reversals map[string]string) error
	// EachSettlement calls fn for every booked settlement, in no set
	// order, and stops at fn's first error, which it returns.
	EachSettlement(fn func(*BookedSettlement) error) error

	// Frozen returns the accounts among ids that are on HQ's freeze list.
	Frozen(ids []string) (map[string]gateway.FrozenAccount, error)
	// PutFrozen puts accounts on the freeze list, replacing their entries.
	PutFrozen(accounts map[string]gateway.FrozenAccount) error
	// DeleteFrozen takes accounts off the freeze list; an account not on
	// it is no error.
	DeleteFrozen(ids []string) error
	// ClearFrozen empties the freeze list.
	ClearFrozen() error
	// EachFrozen calls fn for every frozen account, in no set order, and stops
	// at fn's first error, which it returns.
	EachFrozen(fn func(account string, fa gateway.FrozenAccount) error) error

	// Document returns the latest keyset (storeID empty) or policy of a
	// scope (storeID empty for the chain's), or nil when none is
	// published. Freeze lists live in the freeze log.
	Document(kind gateway.DocumentKind, storeID string) (*Document, error)
	// PutDocument records d as the latest document of its kind and scope.
	PutDocument(d *Document) error
	// EachDocument calls fn for the latest keyset and the latest policy of
	// every scope, and stops at fn's first error, which it returns.
	EachDocument(fn func(*Document) error) error

	// LatestFreeze returns the newest entry of the freeze log, or nil when
	// it is empty.
	LatestFreeze() (*Document, error)
	// AppendFreeze adds a freeze list to the freeze log under its version,
	// unless that version is there, and reports whether it added it.
	AppendFreeze(d *Document) (bool, error)
	// ClearFreezeLog empties the freeze log.
	ClearFreezeLog() error
	// EachFreeze calls fn for every entry of the freeze log in version
	// order, and stops at fn's first error, which it returns.
	EachFreeze(fn func(*Document) error) error
}

// Account is a prepaid account. Funded is every amount ever put in through
// SetAccount and EnsureAccount, so that Books can check that the balance is
// what was put in, less what was debited, plus what was given back.
type Account struct {
	ID       string `json:"-"`
	Balance  int64  `json:"balance"`
	Currency string `json:"currency"`
	Funded   int64  `json:"funded"`
}

// CredentialKey is the storage key of a token id's or payment code's
// authorization: a tag byte, 't' before a token id's 16 bytes or 'c' before
// a code's digits, so that the two never meet. It is bytes, not text.
type CredentialKey string

// TokenKey returns the credential key of a token id.
func TokenKey(tokenID []byte) CredentialKey { return CredentialKey("t" + string(tokenID)) }

// CodeKey returns the credential key of a numeric payment code.
func CodeKey(code string) CredentialKey { return CredentialKey("c" + code) }

// stamp is a time as storage keeps it: UTC, to the microsecond (what
// PostgreSQL's timestamptz holds), so that every backend gives back what
// it was given.
func stamp(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}
