package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// decisionAccounts is how many accounts benchDecision's decisions charge.
const decisionAccounts = 64

// benchDecision returns the n-th decision commit of a run on lane, shaped
// as Gateway.Authorize builds an approval: a fresh token id, the
// idempotency record, the settlement and the audit entry, with ids of real
// length. An online approval carries central's authorization id; an
// offline one carries none, and central debits the account when it books
// the capture.
func benchDecision(lane string, n int, mode gateway.Mode, now time.Time) *gateway.DecisionCommit {
	tok := make([]byte, gateway.TokenIDSize)
	_, _ = rand.Read(tok)
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	stlID := "stl-" + hex.EncodeToString(rnd[:])
	authID := ""
	if mode == gateway.ModeOnline {
		authID = "auth-" + hex.EncodeToString(tok)
	}
	txn := fmt.Sprintf("pos-%09d", n)
	account := accountID(n % decisionAccounts)
	fp := hex.EncodeToString(rnd[:6])
	d := gateway.Decision{
		Approved:         true,
		Mode:             mode,
		AuthorizationID:  authID,
		SettlementID:     stlID,
		Amount:           basketTotal,
		Currency:         gateway.DefaultCurrency,
		TokenFingerprint: fp,
		Account:          account,
		DecidedAt:        now,
		Message:          "approved by the central service",
	}
	return &gateway.DecisionCommit{
		Key:          gateway.IdempotencyKey{Lane: lane, POSTxnID: txn},
		Stored:       gateway.StoredDecision{Decision: d, Digest: sha256.Sum256(tok)},
		TokenID:      tok,
		TokenExpires: now.Add(gateway.DefaultMaxTokenLifetime),
		Settlement: &gateway.Settlement{
			ID:              stlID,
			Kind:            gateway.SettlementCapture,
			StoreID:         benchStoreID,
			Lane:            lane,
			POSTxnID:        txn,
			AuthorizationID: authID,
			Account:         account,
			TokenID:         tok,
			Amount:          basketTotal,
			Currency:        gateway.DefaultCurrency,
			Mode:            mode,
			CreatedAt:       now,
		},
		Audit: gateway.AuditEntry{
			Time:             now,
			Event:            gateway.AuditAuthorize,
			StoreID:          benchStoreID,
			Lane:             lane,
			POSTxnID:         txn,
			Account:          account,
			TokenFingerprint: fp,
			Amount:           basketTotal,
			Currency:         gateway.DefaultCurrency,
			Outcome:          "approved",
			Mode:             mode,
			SettlementID:     stlID,
			AuthorizationID:  authID,
		},
	}
}

// The raw bbolt limit writes what storecache writes for a decision, under
// the same bucket names, without storecache's checks and committer: the
// idempotency record, the spent token and its expiry index, the settlement
// and its id index, the outbox counter, the audit record and the chain's
// head.
var (
	rawDecisions  = []byte("decisions")
	rawSpent      = []byte("spent")
	rawSpentByExp = []byte("spent_by_exp")
	rawOutbox     = []byte("outbox")
	rawOutboxIDs  = []byte("outbox_ids")
	rawAudit      = []byte("audit")
	rawMeta       = []byte("meta")
	rawBuckets    = [][]byte{rawDecisions, rawSpent, rawSpentByExp, rawOutbox, rawOutboxIDs, rawAudit, rawMeta}
	rawDepthKey   = []byte("outbox_depth")
	rawHeadKey    = []byte("audit_head")
)

// rawRecord is a decision ready for rawApply: the idempotency record is
// encoded outside the transaction, as storecache encodes it in the caller.
type rawRecord struct {
	c        *gateway.DecisionCommit
	key      []byte
	decision []byte
}

func newRawRecord(c *gateway.DecisionCommit) (*rawRecord, error) {
	dec, err := json.Marshal(&c.Stored)
	if err != nil {
		return nil, err
	}
	key := append([]byte(c.Key.Lane+"\x00"), c.Key.POSTxnID...)
	return &rawRecord{c: c, key: key, decision: dec}, nil
}

func openRawDB(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range rawBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// rawApply writes r's records in tx.
func rawApply(tx *bolt.Tx, r *rawRecord) error {
	c := r.c
	exp := u64(uint64(c.TokenExpires.Unix()))
	if err := tx.Bucket(rawSpent).Put(c.TokenID, exp); err != nil {
		return err
	}
	if err := tx.Bucket(rawSpentByExp).Put(append(exp, c.TokenID...), nil); err != nil {
		return err
	}
	if err := tx.Bucket(rawDecisions).Put(r.key, r.decision); err != nil {
		return err
	}
	out := tx.Bucket(rawOutbox)
	seq, err := out.NextSequence()
	if err != nil {
		return err
	}
	stl := *c.Settlement
	stl.Seq = seq
	raw, err := json.Marshal(&stl)
	if err != nil {
		return err
	}
	if err := out.Put(u64(seq), raw); err != nil {
		return err
	}
	if err := tx.Bucket(rawOutboxIDs).Put([]byte(stl.ID), append(u64(seq), u64(0)...)); err != nil {
		return err
	}
	meta := tx.Bucket(rawMeta)
	var depth uint64
	if v := meta.Get(rawDepthKey); len(v) == 8 {
		depth = binary.BigEndian.Uint64(v)
	}
	if err := meta.Put(rawDepthKey, u64(depth+1)); err != nil {
		return err
	}
	var (
		n    uint64
		prev [32]byte
	)
	if v := meta.Get(rawHeadKey); len(v) == 40 {
		n = binary.BigEndian.Uint64(v)
		copy(prev[:], v[8:])
	}
	rec, err := gateway.EncodeAuditRecord(n+1, prev, c.Audit)
	if err != nil {
		return err
	}
	if err := tx.Bucket(rawAudit).Put(u64(n+1), rec); err != nil {
		return err
	}
	sum := sha256.Sum256(rec)
	return meta.Put(rawHeadKey, append(u64(n+1), sum[:]...))
}
