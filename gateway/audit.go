package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// AuditEvent names what an audit record records.
type AuditEvent string

// Audit events.
const (
	AuditAuthorize AuditEvent = "authorize"
	AuditReverse   AuditEvent = "reverse"
)

// GenesisHash is the "prev" of the first audit record.
var GenesisHash = [32]byte{}

// AuditEntry is what the decision path writes to the audit log. The store
// numbers it and chains it.
type AuditEntry struct {
	Time             time.Time  `json:"time"`
	Event            AuditEvent `json:"event"`
	StoreID          string     `json:"store_id"`
	Lane             string     `json:"lane"`
	POSTxnID         string     `json:"pos_txn_id"`
	Account          string     `json:"account,omitempty"`
	TokenFingerprint string     `json:"token_fp,omitempty"`
	Amount           int64      `json:"amount"`
	Currency         string     `json:"currency"`
	Outcome          string     `json:"outcome"`
	Reason           Reason     `json:"reason"`
	Rule             string     `json:"rule,omitempty"`
	Mode             Mode       `json:"mode"`
	SettlementID     string     `json:"settlement_id,omitempty"`
	AuthorizationID  string     `json:"authorization_id,omitempty"`
	// Caller names who asked (Caller.ID): the POS terminal, supervisor or
	// development caller the gateway authenticated.
	Caller string `json:"caller,omitempty"`
	// ReversalReason is, for a reversal, the reason its caller gave.
	ReversalReason string `json:"reversal_reason,omitempty"`
}

// AuditRecord is a stored audit record: the entry, its sequence number, and
// the SHA-256 of the record before it.
type AuditRecord struct {
	Seq  uint64 `json:"seq"`
	Prev string `json:"prev"`
	AuditEntry
}

// EncodeAuditRecord returns the bytes stored and hashed for a record.
func EncodeAuditRecord(seq uint64, prev [32]byte, e AuditEntry) ([]byte, error) {
	b, err := json.Marshal(AuditRecord{Seq: seq, Prev: hex.EncodeToString(prev[:]), AuditEntry: e})
	if err != nil {
		return nil, fmt.Errorf("encode audit record: %w", err)
	}
	return b, nil
}

// AuditChain verifies a hash-chained audit log, one stored record at a time,
// from the first.
type AuditChain struct {
	prev [32]byte
	n    uint64
}

// Add checks the next stored record: its sequence number follows the last,
// and its "prev" is the SHA-256 of the last record's bytes. It returns the
// decoded record.
func (c *AuditChain) Add(raw []byte) (*AuditRecord, error) {
	var rec AuditRecord
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return nil, Errorf(EINVALID, "audit record %d: undecodable: %v", c.n+1, err)
	}
	if rec.Seq != c.n+1 {
		return nil, Errorf(EINVALID, "audit record %d: sequence number is %d (a record is missing or out of order)", c.n+1, rec.Seq)
	}
	if rec.Prev != hex.EncodeToString(c.prev[:]) {
		return nil, Errorf(EINVALID, "audit record %d: chain broken: prev %s, but record %d hashes to %x", rec.Seq, rec.Prev, c.n, c.prev)
	}
	c.prev = sha256.Sum256(raw)
	c.n = rec.Seq
	return &rec, nil
}

// Head returns the number of records checked and the hash of the last one.
func (c *AuditChain) Head() (uint64, [32]byte) { return c.n, c.prev }

// CheckHead compares the chain's end with the head the store recorded, so
// that a change to the last record, or a truncation, is caught too.
func (c *AuditChain) CheckHead(n uint64, head [32]byte) error {
	if c.n != n || c.prev != head {
		return Errorf(EINVALID, "audit log: chain ends at record %d (%x), but the store's head is record %d (%x)", c.n, c.prev, n, head)
	}
	return nil
}
