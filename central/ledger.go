package central

import (
	"context"
	"regexp"

	"storegate/gateway"
)

// DefaultCurrency is a ledger's currency unless Currency is set.
const DefaultCurrency = "JPY"

// MaxAmount bounds every amount and balance, in minor units, so that no sum
// the ledger makes can overflow an int64.
const MaxAmount int64 = 1 << 52

// currencyPattern is an ISO 4217 alphabetic code.
var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// Ledger is HQ's books: prepaid accounts, the authorizations that spend
// token ids and payment codes, the stores' settlements, and HQ's freeze
// list, kept in a Storage. Its rules — single use of a credential
// chain-wide, a debit recorded in the transaction that decides it,
// exactly-once booking of settlements delivered at least once — are written
// here once, against Tx, whichever backend holds the records. Its methods
// are safe for concurrent use, also by several processes over one
// PostgreSQL database.
type Ledger struct {
	// Currency is the one currency the ledger books, an ISO 4217 code;
	// NewLedger sets DefaultCurrency.
	Currency string
	// Verifier checks payment tokens; its zero value uses the gateway's
	// default lifetime cap and clock skew.
	Verifier gateway.TokenVerifier

	storage Storage
}

// NewLedger returns a ledger over storage with the default currency. It
// does no I/O: Open opens the storage.
func NewLedger(storage Storage) *Ledger {
	return &Ledger{Currency: DefaultCurrency, storage: storage}
}

// Open checks the ledger's fields and opens its storage. It fails with
// EINVALID for a bad currency, and with the storage's error (EUNAVAILABLE
// for a file locked by another process) when it cannot open it.
func (l *Ledger) Open(ctx context.Context) error {
	switch {
	case l.storage == nil:
		return gateway.Errorf(gateway.EINVALID, "ledger: no storage")
	case !currencyPattern.MatchString(l.Currency):
		return gateway.Errorf(gateway.EINVALID, "ledger currency %q: want three capital letters (ISO 4217)", l.Currency)
	}
	return l.storage.Open(ctx)
}

// Close closes the ledger's storage once the transactions in flight have
// finished (see Storage.Close).
func (l *Ledger) Close(ctx context.Context) error {
	return l.storage.Close(ctx)
}

// Storage returns the storage the ledger keeps its records in.
func (l *Ledger) Storage() Storage { return l.storage }
