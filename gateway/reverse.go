package gateway

import (
	"context"
	"fmt"
	"time"
)

// Reverse reverses an approved sale: a reversal settlement is queued for
// central in the same durable transaction that marks the sale reversed.
// Only the lane that sold (its POS) or a supervisor of the store may
// reverse it, with a reason, and only until ReversalWindow's deadline for
// the sale; later, HQ reverses it. Reversing twice returns the first
// reversal. EINVALID for a malformed request or one without a reason,
// EPERMISSION for a caller who may not act on the sale's lane, ENOTFOUND
// when no sale is stored under the key, ECONFLICT when the sale was declined
// or its window has closed.
func (g *Gateway) Reverse(ctx context.Context, req *ReverseRequest) (*ReverseResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	if !req.Caller.MayActOn(g.StoreID, req.Lane) {
		return nil, Errorf(EPERMISSION, "%s may not reverse a sale of lane %s at store %s: only that lane's POS or a supervisor of the store", req.Caller, req.Lane, g.StoreID)
	}
	key := IdempotencyKey{Lane: req.Lane, POSTxnID: req.POSTxnID}
	release, err := g.lockKey(ctx, key)
	if err != nil {
		return nil, err
	}
	defer release()
	sd, err := g.Store.LookupDecision(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", key, err)
	}
	if sd == nil {
		return nil, Errorf(ENOTFOUND, "no sale lane %s transaction %s", key.Lane, key.POSTxnID)
	}
	if !sd.Decision.Approved {
		return nil, Errorf(ECONFLICT, "sale lane %s transaction %s was declined; there is nothing to reverse", key.Lane, key.POSTxnID)
	}
	if sd.Reversal != nil {
		return &ReverseResult{Reversal: *sd.Reversal, AlreadyReversed: true}, nil
	}
	now := g.Now()
	if deadline := g.ReversalWindow.Deadline(sd.Decision.DecidedAt); !now.Before(deadline) {
		return nil, Errorf(ECONFLICT, "sale lane %s transaction %s was made at %s; the store may reverse it until %s, so only HQ can reverse it now",
			key.Lane, key.POSTxnID, sd.Decision.DecidedAt.In(deadline.Location()).Format(time.RFC3339), deadline.Format(time.RFC3339))
	}
	id, err := NewSettlementID()
	if err != nil {
		return nil, err
	}
	orig := sd.Decision
	rev := Reversal{ID: id, Amount: orig.Amount, Currency: orig.Currency, Reason: req.Reason, By: req.Caller.ID, CreatedAt: now}
	stl := &Settlement{
		ID:              id,
		Kind:            SettlementReversal,
		StoreID:         g.StoreID,
		Lane:            key.Lane,
		POSTxnID:        key.POSTxnID,
		AuthorizationID: orig.AuthorizationID,
		Account:         orig.Account,
		Amount:          orig.Amount,
		Currency:        orig.Currency,
		Mode:            orig.Mode,
		CreatedAt:       now,
		ReversesID:      orig.SettlementID,
	}
	audit := AuditEntry{
		Time:             now,
		Event:            AuditReverse,
		StoreID:          g.StoreID,
		Lane:             key.Lane,
		POSTxnID:         key.POSTxnID,
		Account:          orig.Account,
		TokenFingerprint: orig.TokenFingerprint,
		Amount:           orig.Amount,
		Currency:         orig.Currency,
		Outcome:          "reversed",
		Mode:             orig.Mode,
		SettlementID:     id,
		AuthorizationID:  orig.AuthorizationID,
		Caller:           req.Caller.ID,
		ReversalReason:   req.Reason,
	}
	got, already, err := g.Store.CommitReversal(ctx, key, rev, stl, audit)
	if err != nil {
		return nil, fmt.Errorf("commit reversal %s: %w", key, err)
	}
	if !already {
		g.Logger.Info("reversal", "lane", key.Lane, "txn", key.POSTxnID, "amount", rev.Amount, "settlement_id", id, "by", req.Caller.ID)
		if g.Committed != nil {
			g.Committed()
		}
	}
	return &ReverseResult{Reversal: got, AlreadyReversed: already}, nil
}

// Reversal is a reversed sale.
type Reversal struct {
	// ID is the reversal settlement's id.
	ID       string `json:"id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Reason   string `json:"reason,omitempty"`
	// By names who asked for the reversal (Caller.ID).
	By        string    `json:"by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ReverseResult is what Reverse returns.
type ReverseResult struct {
	Reversal Reversal
	// AlreadyReversed is true when the sale had been reversed before.
	AlreadyReversed bool
}

// ReversalWindow says until when the store may reverse a sale; after it,
// only HQ can. The zero value is the default: until the end of the sale's
// business day, which starts at midnight in the host's time zone.
type ReversalWindow struct {
	// Within, when positive, allows a reversal for that long after the
	// sale, whatever the business day. Zero means until the end of the
	// sale's business day.
	Within time.Duration
	// DayStart is when a business day starts, after midnight (0 to 24h,
	// whole seconds): a store open through the night may end its day at
	// 04:00, for example. Zero means midnight.
	DayStart time.Duration
	// Location is the business day's time zone; nil means time.Local.
	Location *time.Location
}

// Deadline returns the first moment at which a sale made at sold may no
// longer be reversed at the store: sold + Within, or the start of the
// business day after sold's.
func (w ReversalWindow) Deadline(sold time.Time) time.Time {
	if w.Within > 0 {
		return sold.Add(w.Within)
	}
	loc := w.Location
	if loc == nil {
		loc = time.Local
	}
	at := func(day time.Time, offset int) time.Time {
		s := int(w.DayStart / time.Second)
		y, m, d := day.Date()
		return time.Date(y, m, d+offset, s/3600, s/60%60, s%60, 0, loc)
	}
	t := sold.In(loc)
	start := at(t, 0)
	if start.After(t) {
		start = at(t, -1)
	}
	return at(start, 1)
}
