package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// SettlementKind says what a settlement does to central's books.
type SettlementKind string

// Settlement kinds.
const (
	SettlementCapture  SettlementKind = "capture"
	SettlementReversal SettlementKind = "reversal"
)

// Settlement is one record of the outbox: an approved payment or its reversal,
// waiting for the central service to acknowledge it. Its ID is made before it
// is first stored and never changes, so that central can deduplicate.
type Settlement struct {
	ID              string         `json:"id"`
	Seq             uint64         `json:"seq"`
	Kind            SettlementKind `json:"kind"`
	StoreID         string         `json:"store_id"`
	Lane            string         `json:"lane"`
	POSTxnID        string         `json:"pos_txn_id"`
	AuthorizationID string         `json:"authorization_id,omitempty"`
	Account         string         `json:"account"`
	TokenID         []byte         `json:"token_id,omitempty"`
	Amount          int64          `json:"amount"`
	Currency        string         `json:"currency"`
	Mode            Mode           `json:"mode"`
	CreatedAt       time.Time      `json:"created_at"`
	// ReversesID is, for a reversal, the capture it reverses.
	ReversesID string `json:"reverses_id,omitempty"`
}

// SettlementStatus is central's answer for one settlement.
type SettlementStatus int

// Settlement statuses.
const (
	// SettlementAccepted: booked now.
	SettlementAccepted SettlementStatus = iota + 1
	// SettlementDuplicate: booked before; nothing changed.
	SettlementDuplicate
	// SettlementRefused: central will not book it; the gateway keeps it as
	// disputed for a person to resolve.
	SettlementRefused
)

var settlementStatusNames = map[SettlementStatus]string{
	SettlementAccepted:  "accepted",
	SettlementDuplicate: "duplicate",
	SettlementRefused:   "refused",
}

// String returns "accepted", "duplicate" or "refused".
func (s SettlementStatus) String() string {
	if n, ok := settlementStatusNames[s]; ok {
		return n
	}
	return "unknown"
}

// MarshalText writes the status's name.
func (s SettlementStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a status's name.
func (s *SettlementStatus) UnmarshalText(b []byte) error {
	for v, n := range settlementStatusNames {
		if n == string(b) {
			*s = v
			return nil
		}
	}
	return Errorf(EINVALID, "unknown settlement status %q", b)
}

// SettlementAck is central's acknowledgement of one settlement.
type SettlementAck struct {
	ID      string
	Status  SettlementStatus
	Message string
}

// NewSettlementID returns a fresh settlement id: "stl-" and 16 random bytes in
// hex.
func NewSettlementID() (string, error) {
	return newID("stl-")
}

func newID(prefix string) (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return prefix + hex.EncodeToString(b), nil
}

// OutboxStats describes the settlement queue.
type OutboxStats struct {
	// Depth is the number of settlements not yet acknowledged.
	Depth int64
	// Oldest is when the oldest of them was made; zero when empty.
	Oldest time.Time
	// OfflineExposure is the sum of offline approvals not yet acknowledged,
	// less queued reversals of still-queued offline captures, never below 0.
	OfflineExposure int64
	// Disputed is the number of settlements central refused.
	Disputed int64
}
