package gateway

import (
	"context"
	"time"
)

// Sentinel errors of Store.CommitDecision, which callers branch on.
var (
	// ErrTokenSpent: the token id was spent by another decision first.
	ErrTokenSpent = &Error{Code: ECONFLICT, Message: "token already spent"}
	// ErrDecisionExists: the idempotency key already has a decision.
	ErrDecisionExists = &Error{Code: ECONFLICT, Message: "a decision is already stored for this lane and POS transaction"}
)

// DecisionCommit is everything one decision writes, in one transaction
// (DESIGN.md step 6).
type DecisionCommit struct {
	Key    IdempotencyKey
	Stored StoredDecision
	// TokenID, when set, is recorded as spent until TokenExpires (the
	// store keeps it past that by the skew allowance before pruning).
	TokenID      []byte
	TokenExpires time.Time
	// Settlement is queued for an approval; nil for a decline.
	Settlement *Settlement
	// Offline, set for an offline approval, is checked against the
	// account's offline total and the store's offline exposure in the
	// commit's transaction (see Store.CommitDecision).
	Offline *OfflineCharge
	Audit   AuditEntry
	// Charges are added to the sliding-window counters, each only if its
	// window stays within its cap (re-checked inside the transaction);
	// CommitReversal gives them back.
	Charges []CounterCharge
}

// DisputedSettlement is a settlement central refused (an offline approval
// whose balance was gone, say), kept for a person to resolve. It never
// leaves the store silently.
type DisputedSettlement struct {
	Settlement Settlement `json:"settlement"`
	// Message is central's reason for refusing it.
	Message string `json:"message"`
	// RefusedAt is when the store recorded the refusal.
	RefusedAt time.Time `json:"refused_at"`
}

// Store is the gateway's durable state. Every method is safe for concurrent
// use. Errors are *Error values where the caller can act on them; anything
// else is broken machinery.
type Store interface {
	FreezeStore
	CounterStore

	// LookupDecision returns the decision stored under key, or nil and no
	// error when there is none.
	LookupDecision(ctx context.Context, key IdempotencyKey) (*StoredDecision, error)
	// TokenSpent reports whether tokenID is recorded as spent.
	TokenSpent(ctx context.Context, tokenID []byte) (bool, error)
	// CommitDecision durably writes c in one transaction, which it may share
	// with concurrent commits (group commit); it returns only once the
	// transaction is on disk. It writes nothing and returns ErrTokenSpent
	// when c.TokenID is already spent or c.TokenExpires is no later than
	// the expiry of an id PruneSpent forgot, or ErrDecisionExists when c.Key
	// already has a decision; the key is checked first, so a retry of a
	// committed sale is never mistaken for a replayed token. When a charge
	// would take its window over its cap it writes nothing and returns a
	// *LimitError. TokenID, when set, is TokenIDSize bytes. When c.Offline
	// is set, c.Settlement is the offline capture it charges, and the
	// charge must fit its caps with the account's offline total and the
	// store's offline exposure as they stand in the same transaction:
	// otherwise it writes nothing and returns an *OfflineLimitError. On
	// success c.Settlement.Seq is set; when the disk refuses the transaction
	// the error is EUNAVAILABLE and nothing of it is stored.
	CommitDecision(ctx context.Context, c *DecisionCommit) error
	// CommitReversal durably reverses the approved sale under key: it queues
	// stl, records rev on the sale's idempotency record, gives back the
	// sale's counter charges and appends audit, in one transaction. When the
	// sale was reversed before it writes nothing and returns the stored
	// reversal and true. It returns ENOTFOUND when no sale is stored under
	// key and ECONFLICT when the sale was declined. stl.Kind is
	// SettlementReversal and rev.ID is stl.ID; on success stl.Seq is set.
	CommitReversal(ctx context.Context, key IdempotencyKey, rev Reversal, stl *Settlement, audit AuditEntry) (Reversal, bool, error)

	// PendingSettlements returns up to limit unacknowledged settlements, in
	// the order they were made.
	PendingSettlements(ctx context.Context, limit int) ([]Settlement, error)
	// AckSettlements applies central's acknowledgements: accepted and
	// duplicate settlements leave the outbox; refused ones move to the
	// disputed set. Either way the offline exposure they stood for is
	// released. Unknown ids are ignored.
	AckSettlements(ctx context.Context, acks []SettlementAck) error
	// DisputedSettlements returns up to limit settlements central refused,
	// in the order they were queued.
	DisputedSettlements(ctx context.Context, limit int) ([]DisputedSettlement, error)
	// OutboxStats describes the outbox.
	OutboxStats(ctx context.Context) (OutboxStats, error)

	// LoadDocument returns the signed document of a kind that the store
	// holds, with its version; nil and 0 when it holds none.
	LoadDocument(ctx context.Context, kind DocumentKind) ([]byte, uint64, error)
	// SaveDocument durably stores a signed document. It returns ESTALE when
	// the store holds a higher version, and false when it holds this one.
	SaveDocument(ctx context.Context, kind DocumentKind, version uint64, raw []byte) (bool, error)

	// AuditHead returns the number of audit records and the SHA-256 of the
	// last one.
	AuditHead(ctx context.Context) (uint64, [32]byte, error)
	// ScanAudit calls fn for each stored audit record from seq from on, in
	// order, with the stored bytes (valid only during the call). The store
	// copies records out in chunks and calls fn outside any transaction, so
	// fn may do I/O.
	ScanAudit(ctx context.Context, from uint64, fn func(seq uint64, raw []byte) error) error

	// PruneSpent forgets spent token ids that expired before cutoff and
	// returns how many it removed. CommitDecision refuses from then on any
	// token expiring no later than a forgotten id, so that a clock stepped
	// back cannot make a forgotten token spendable again.
	PruneSpent(ctx context.Context, cutoff time.Time) (int, error)
}
