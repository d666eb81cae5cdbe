package gateway

import (
	"context"
	"fmt"
	"time"
)

// Reverse reverses an approved sale: a reversal settlement is queued for
// central in the same durable transaction that marks the sale reversed.
// Reversing twice returns the first reversal. ENOTFOUND when no sale is stored
// under the key; ECONFLICT when the sale was declined.
func (g *Gateway) Reverse(ctx context.Context, req *ReverseRequest) (*ReverseResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
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
	id, err := NewSettlementID()
	if err != nil {
		return nil, err
	}
	now := g.Now()
	orig := sd.Decision
	rev := Reversal{ID: id, Amount: orig.Amount, Currency: orig.Currency, Reason: req.Reason, CreatedAt: now}
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
	}
	got, already, err := g.Store.CommitReversal(ctx, key, rev, stl, audit)
	if err != nil {
		return nil, fmt.Errorf("commit reversal %s: %w", key, err)
	}
	if !already {
		g.Logger.Info("reversal", "lane", key.Lane, "txn", key.POSTxnID, "amount", rev.Amount, "settlement_id", id)
		if g.Committed != nil {
			g.Committed()
		}
	}
	return &ReverseResult{Reversal: got, AlreadyReversed: already}, nil
}

// Reversal is a reversed sale.
type Reversal struct {
	// ID is the reversal settlement's id.
	ID        string    `json:"id"`
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// ReverseResult is what Reverse returns.
type ReverseResult struct {
	Reversal Reversal
	// AlreadyReversed is true when the sale had been reversed before.
	AlreadyReversed bool
}
