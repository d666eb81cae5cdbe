package gateway

import "time"

// Mode says who decided.
type Mode string

// Decision modes.
const (
	// ModeOnline: the central service decided.
	ModeOnline Mode = "online"
	// ModeOffline: the store decided alone, within its offline caps.
	ModeOffline Mode = "offline"
	// ModeLocal: the store declined before asking anyone (a bad token, a
	// replay, a frozen account, a limit).
	ModeLocal Mode = "local"
)

// Decision is the answer to an authorization. A decline is a decision with a
// reason and the rule that fired, never an error.
type Decision struct {
	Approved bool   `json:"approved"`
	Reason   Reason `json:"reason"`
	// Rule names the check or policy rule that fired.
	Rule string `json:"rule,omitempty"`
	Mode Mode   `json:"mode"`
	// AuthorizationID is central's id for an online approval.
	AuthorizationID string `json:"authorization_id,omitempty"`
	// SettlementID is the queued settlement of an approval.
	SettlementID     string    `json:"settlement_id,omitempty"`
	Amount           int64     `json:"amount"`
	Currency         string    `json:"currency"`
	TokenFingerprint string    `json:"token_fp,omitempty"`
	Account          string    `json:"account,omitempty"`
	DecidedAt        time.Time `json:"decided_at"`
	Message          string    `json:"message,omitempty"`
}

// Outcome returns "approved" or "declined".
func (d *Decision) Outcome() string {
	if d.Approved {
		return "approved"
	}
	return "declined"
}

// StoredDecision is a decision as the idempotency record keeps it.
type StoredDecision struct {
	Decision Decision `json:"decision"`
	// Digest is the request's basket digest (AuthorizeRequest.Digest).
	Digest [32]byte `json:"digest"`
	// Reversal is set once the sale has been reversed.
	Reversal *Reversal `json:"reversal,omitempty"`
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

// AuthorizeResult is what Authorize returns.
type AuthorizeResult struct {
	Decision Decision
	// Replayed is true when the decision is the stored answer to an earlier
	// identical request.
	Replayed bool
}

// ReverseResult is what Reverse returns.
type ReverseResult struct {
	Reversal Reversal
	// AlreadyReversed is true when the sale had been reversed before.
	AlreadyReversed bool
}
