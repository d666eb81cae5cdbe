package central

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"storegate/gateway"
)

// MaxSettlementBatch is the most settlements one SubmitSettlements call may
// carry.
const MaxSettlementBatch = 500

// BookedSettlement is a settlement as the ledger recorded it, with the
// answer it was given.
type BookedSettlement struct {
	gateway.Settlement
	// Status is the answer given: accepted or refused. A resend of an
	// accepted settlement is answered as a duplicate, a resend of a refused
	// one is refused again with the same message.
	Status   gateway.SettlementStatus `json:"status"`
	Message  string                   `json:"message,omitempty"`
	BookedAt time.Time                `json:"booked_at"`
	// ReversedBy is, for a capture, the id of the reversal that gave it
	// back.
	ReversedBy string `json:"reversed_by,omitempty"`
}

// SubmitSettlements books a store's batch of settlements in one transaction
// and returns an acknowledgement for each settlement it recorded:
//
//   - a settlement booked before is a duplicate and changes nothing (a
//     refused one is refused again, with the same message);
//   - a capture naming a held authorization of the same store, amount and
//     account marks it captured (a voided one is taken again if the balance
//     covers it); a capture without an authorization (an offline approval)
//     debits the account now and spends its token id chain-wide, or is
//     refused, without touching the balance, for insufficient funds or when
//     the token was already used for another sale. When central had
//     approved that very sale online but the store never heard the answer,
//     the offline capture captures that authorization instead: one debit;
//   - a reversal of an accepted capture credits the amount back, once;
//   - a reversal whose capture is not booked yet is left out of the acks,
//     so that the gateway sends it again;
//   - a malformed settlement is refused with a message. One without a
//     usable id cannot be recorded; it is answered refused under the id it
//     carried.
//
// The batch is read in a few bulk reads (every settlement, authorization and
// account it names), decided in memory in order — a reversal may follow its
// capture in the same batch — and written in bulk. Errors are EINVALID for a
// malformed call and anything else for broken machinery, in which case
// nothing was booked.
func (l *Ledger) SubmitSettlements(ctx context.Context, storeID string, batch []gateway.Settlement, now time.Time) ([]gateway.SettlementAck, error) {
	if !gateway.ValidID(storeID) {
		return nil, gateway.Errorf(gateway.EINVALID, "store_id: want 1-64 characters of [A-Za-z0-9._:-]")
	}
	if len(batch) > MaxSettlementBatch {
		return nil, gateway.Errorf(gateway.EINVALID, "settlements: %d in one batch, at most %d", len(batch), MaxSettlementBatch)
	}
	var acks []gateway.SettlementAck
	// The storage may run the function more than once; it starts afresh
	// each time.
	err := l.storage.Update(ctx, func(tx Tx) error {
		in := newIntake(tx, l.Currency, storeID, stamp(now))
		if err := in.preload(batch); err != nil {
			return err
		}
		acks = acks[:0]
		for _, s := range batch {
			ack, err := in.book(s)
			if err != nil {
				return fmt.Errorf("settlement %s: %w", s.ID, err)
			}
			if ack != nil {
				acks = append(acks, *ack)
			}
		}
		return in.flush()
	})
	if err != nil {
		return nil, fmt.Errorf("submit settlements: %w", err)
	}
	return acks, nil
}

// intake is one batch being booked: the records it reads, held in memory
// (a nil value is a record known not to exist), and what it will write.
type intake struct {
	tx       Tx
	currency string
	storeID  string
	now      time.Time

	stls     map[string]*BookedSettlement
	auths    map[CredentialKey]*Authorization
	authByID map[string]*Authorization
	accts    map[string]*Account

	newStls    []*BookedSettlement
	fresh      map[string]bool // ids of newStls
	newAuths   map[CredentialKey]bool
	reversed   map[string]string // stored capture id → reversal id
	dirtyAuths map[CredentialKey]bool
	dirtyAccts map[string]bool
}

func newIntake(tx Tx, currency, storeID string, now time.Time) *intake {
	return &intake{
		tx: tx, currency: currency, storeID: storeID, now: now,
		stls:       make(map[string]*BookedSettlement),
		auths:      make(map[CredentialKey]*Authorization),
		authByID:   make(map[string]*Authorization),
		accts:      make(map[string]*Account),
		fresh:      make(map[string]bool),
		newAuths:   make(map[CredentialKey]bool),
		reversed:   make(map[string]string),
		dirtyAuths: make(map[CredentialKey]bool),
		dirtyAccts: make(map[string]bool),
	}
}

// preload reads, in bulk, every record the batch names: its settlements and
// the captures its reversals name, the authorizations its captures name (by
// id, or by token id for an offline capture) and those of the captures
// being reversed, and every account among them. What it misses is read one
// by one when booking needs it.
func (in *intake) preload(batch []gateway.Settlement) error {
	var stlIDs, authIDs []string
	var keys []CredentialKey
	var acctIDs []string
	for i := range batch {
		s := &batch[i]
		if !gateway.ValidID(s.ID) || unstorable(s) != "" {
			continue
		}
		stlIDs = append(stlIDs, s.ID)
		if s.Account != "" {
			acctIDs = append(acctIDs, s.Account)
		}
		switch {
		case s.Kind == gateway.SettlementReversal && gateway.ValidID(s.ReversesID):
			stlIDs = append(stlIDs, s.ReversesID)
		case s.Kind == gateway.SettlementCapture && s.AuthorizationID != "":
			authIDs = append(authIDs, s.AuthorizationID)
		case s.Kind == gateway.SettlementCapture && len(s.TokenID) == gateway.TokenIDSize:
			keys = append(keys, TokenKey(s.TokenID))
		}
	}
	if err := in.loadSettlements(stlIDs); err != nil {
		return err
	}
	for _, id := range stlIDs {
		if c := in.stls[id]; c != nil && c.AuthorizationID != "" {
			authIDs = append(authIDs, c.AuthorizationID)
		}
	}
	if err := in.loadAuthorizationsByID(authIDs); err != nil {
		return err
	}
	if err := in.loadAuthorizations(keys); err != nil {
		return err
	}
	for _, s := range in.stls {
		if s != nil && s.Account != "" {
			acctIDs = append(acctIDs, s.Account)
		}
	}
	for _, a := range in.auths {
		if a != nil && a.Account != "" {
			acctIDs = append(acctIDs, a.Account)
		}
	}
	return in.loadAccounts(acctIDs)
}

// unknown returns the distinct keys not yet read.
func unknown[K comparable, V any](keys []K, have map[K]V) []K {
	var out []K
	seen := make(map[K]bool, len(keys))
	for _, k := range keys {
		if _, ok := have[k]; !ok && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// load reads, with read, the keys not held yet, and holds each: keep
// takes what was found, and a key not found is held as nil. The storage's
// errors name what they could not read.
func load[K comparable, V any](keys []K, have map[K]*V, read func([]K) (map[K]*V, error), keep func(K, *V)) error {
	keys = unknown(keys, have)
	if len(keys) == 0 {
		return nil
	}
	got, err := read(keys)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if v := got[k]; v != nil {
			keep(k, v)
		} else {
			have[k] = nil
		}
	}
	return nil
}

func (in *intake) loadSettlements(ids []string) error {
	return load(ids, in.stls, in.tx.Settlements, func(id string, s *BookedSettlement) { in.stls[id] = s })
}

// keepAuthorization holds a read authorization, unless the same record is
// held already (read by id and by key): there is one copy of each.
func (in *intake) keepAuthorization(a *Authorization) {
	if in.auths[a.Key] != nil {
		return
	}
	in.auths[a.Key] = a
	if a.ID != "" {
		in.authByID[a.ID] = a
	}
}

func (in *intake) loadAuthorizationsByID(ids []string) error {
	return load(ids, in.authByID, in.tx.AuthorizationsByID, func(_ string, a *Authorization) { in.keepAuthorization(a) })
}

func (in *intake) loadAuthorizations(keys []CredentialKey) error {
	return load(keys, in.auths, in.tx.Authorizations, func(_ CredentialKey, a *Authorization) { in.keepAuthorization(a) })
}

func (in *intake) loadAccounts(ids []string) error {
	return load(ids, in.accts, in.tx.Accounts, func(id string, a *Account) { in.accts[id] = a })
}

// settlement, authorizationByID, authorization and account return a held
// record, reading it first when preload missed it; nil when it does not
// exist.
func (in *intake) settlement(id string) (*BookedSettlement, error) {
	err := in.loadSettlements([]string{id})
	return in.stls[id], err
}

func (in *intake) authorizationByID(id string) (*Authorization, error) {
	err := in.loadAuthorizationsByID([]string{id})
	return in.authByID[id], err
}

func (in *intake) authorization(key CredentialKey) (*Authorization, error) {
	err := in.loadAuthorizations([]CredentialKey{key})
	return in.auths[key], err
}

func (in *intake) account(id string) (*Account, error) {
	err := in.loadAccounts([]string{id})
	return in.accts[id], err
}

// debit changes an account's balance by -amount (a credit when amount is
// negative) and marks it for writing.
func (in *intake) debit(acct *Account, amount int64) {
	acct.Balance -= amount
	in.dirtyAccts[acct.ID] = true
}

// touch marks a stored authorization for writing.
func (in *intake) touch(a *Authorization) {
	if !in.newAuths[a.Key] {
		in.dirtyAuths[a.Key] = true
	}
}

// flush writes what the batch changed, each kind in one bulk write, in key
// order so that concurrent batches lock rows in the same order.
func (in *intake) flush() error {
	n, err := in.tx.InsertSettlements(in.newStls)
	if err := wantInserted("settlements", len(in.newStls), n, err); err != nil {
		return err
	}
	if len(in.reversed) > 0 {
		if err := in.tx.SetReversedBy(in.reversed); err != nil {
			return fmt.Errorf("mark captures reversed: %w", err)
		}
	}
	var fresh, changed []*Authorization
	for _, k := range sortedKeys(in.newAuths) {
		fresh = append(fresh, in.auths[k])
	}
	for _, k := range sortedKeys(in.dirtyAuths) {
		changed = append(changed, in.auths[k])
	}
	n, err = in.tx.InsertAuthorizations(fresh)
	if err := wantInserted("authorizations", len(fresh), n, err); err != nil {
		return err
	}
	if len(changed) > 0 {
		if err := in.tx.UpdateAuthorizations(changed); err != nil {
			return fmt.Errorf("update authorizations: %w", err)
		}
	}
	if len(in.dirtyAccts) > 0 {
		accts := make([]*Account, 0, len(in.dirtyAccts))
		for _, id := range sortedKeys(in.dirtyAccts) {
			accts = append(accts, in.accts[id])
		}
		if err := in.tx.PutAccounts(accts); err != nil {
			return fmt.Errorf("write accounts: %w", err)
		}
	}
	return nil
}

func sortedKeys[K ~string](m map[K]bool) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// book books one settlement and returns its ack, or nil when it was not
// recorded and must be sent again.
func (in *intake) book(s gateway.Settlement) (*gateway.SettlementAck, error) {
	if !gateway.ValidID(s.ID) {
		return &gateway.SettlementAck{ID: s.ID, Status: gateway.SettlementRefused,
			Message: "settlement id: want 1-64 characters of [A-Za-z0-9._:-]"}, nil
	}
	if msg := unstorable(&s); msg != "" {
		return &gateway.SettlementAck{ID: s.ID, Status: gateway.SettlementRefused, Message: msg}, nil
	}
	prev, err := in.settlement(s.ID)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		if prev.Status == gateway.SettlementRefused {
			return &gateway.SettlementAck{ID: s.ID, Status: gateway.SettlementRefused, Message: prev.Message}, nil
		}
		return &gateway.SettlementAck{ID: s.ID, Status: gateway.SettlementDuplicate}, nil
	}

	if s.StoreID == "" {
		s.StoreID = in.storeID
	}
	s.CreatedAt = stamp(s.CreatedAt)
	rec := &BookedSettlement{Settlement: s, BookedAt: in.now}
	var msg string
	if msg = in.malformed(&rec.Settlement); msg == "" {
		switch {
		case s.Kind == gateway.SettlementReversal:
			var waiting bool
			msg, waiting, err = in.reverse(rec)
			if waiting {
				return nil, err
			}
		case s.AuthorizationID != "":
			msg, err = in.captureHeld(rec)
		default:
			msg, err = in.captureOffline(rec)
		}
		if err != nil {
			return nil, err
		}
	}
	rec.Status, rec.Message = gateway.SettlementAccepted, msg
	if msg != "" {
		rec.Status = gateway.SettlementRefused
	}
	in.stls[s.ID] = rec
	in.newStls = append(in.newStls, rec)
	in.fresh[s.ID] = true
	return &gateway.SettlementAck{ID: s.ID, Status: rec.Status, Message: rec.Message}, nil
}

// unstorable returns why a settlement cannot even be recorded as refused —
// text that is not UTF-8, or holds a NUL, which a database's text columns
// refuse, so that one bad settlement would fail its whole batch for ever —
// or "". Like one without a usable id, it is answered refused and not
// recorded; a resend is refused again.
func unstorable(s *gateway.Settlement) string {
	for _, f := range []struct{ name, v string }{
		{"store_id", s.StoreID}, {"lane", s.Lane}, {"pos_transaction_id", s.POSTxnID},
		{"authorization_id", s.AuthorizationID}, {"account", s.Account}, {"currency", s.Currency},
		{"mode", string(s.Mode)}, {"kind", string(s.Kind)}, {"reverses_id", s.ReversesID},
	} {
		if !utf8.ValidString(f.v) || strings.ContainsRune(f.v, 0) {
			return f.name + ": not UTF-8 text, or holds a NUL"
		}
	}
	return ""
}

// malformed returns why a settlement cannot be booked whatever the books
// say, or "".
func (in *intake) malformed(s *gateway.Settlement) string {
	switch {
	case s.Kind != gateway.SettlementCapture && s.Kind != gateway.SettlementReversal:
		return fmt.Sprintf("unknown settlement kind %q", s.Kind)
	case s.StoreID != in.storeID:
		return fmt.Sprintf("settlement belongs to store %q, not to the submitting store", s.StoreID)
	case s.Amount <= 0 || s.Amount > MaxAmount:
		return fmt.Sprintf("amount %d outside 1 to %d", s.Amount, MaxAmount)
	case s.Currency != in.currency:
		return fmt.Sprintf("currency %q is not the ledger's currency (%s)", s.Currency, in.currency)
	case s.Kind == gateway.SettlementCapture && s.AuthorizationID == "" && s.Account == "":
		return "a capture without an authorization must name its account"
	case s.Kind == gateway.SettlementCapture && s.AuthorizationID == "" && len(s.TokenID) != gateway.TokenIDSize:
		return fmt.Sprintf("a capture without an authorization must carry its token id (%d bytes)", gateway.TokenIDSize)
	case s.Kind == gateway.SettlementReversal && s.ReversesID == "":
		return "a reversal must name the capture it reverses (reverses_id)"
	case s.Kind == gateway.SettlementReversal && s.ReversesID == s.ID:
		return "a reversal cannot reverse itself"
	}
	return ""
}

// captureHeld books the capture of a held authorization. It returns why the
// capture is refused, or "" once it is booked; a refusal changes nothing.
func (in *intake) captureHeld(rec *BookedSettlement) (string, error) {
	s := &rec.Settlement
	auth, err := in.authorizationByID(s.AuthorizationID)
	switch {
	case err != nil:
		return "", err
	case auth == nil:
		return fmt.Sprintf("unknown authorization %q", s.AuthorizationID), nil
	case auth.Status != AuthHeld && auth.Status != AuthVoided:
		return fmt.Sprintf("authorization %s is %s (capture %s)", auth.ID, auth.Status, auth.CapturedBy), nil
	case auth.StoreID != s.StoreID:
		return fmt.Sprintf("authorization %s was made at another store", auth.ID), nil
	case auth.Amount != s.Amount:
		return fmt.Sprintf("amount %d does not match authorization %s (%d)", s.Amount, auth.ID, auth.Amount), nil
	case s.Account != "" && s.Account != auth.Account:
		return fmt.Sprintf("account %q does not match authorization %s", s.Account, auth.ID), nil
	}
	return in.captureAuthorization(rec, auth)
}

// captureAuthorization marks auth captured by rec, and names it in rec. A
// held authorization was debited when it was made; a voided one gave its
// amount back, so it takes it again, or the capture is refused when the
// balance no longer covers it. It returns why the capture is refused, or
// ""; a refusal changes nothing.
func (in *intake) captureAuthorization(rec *BookedSettlement, auth *Authorization) (string, error) {
	s := &rec.Settlement
	if auth.Status == AuthVoided {
		acct, err := in.account(auth.Account)
		switch {
		case err != nil:
			return "", err
		case acct == nil:
			return fmt.Sprintf("unknown account %q", auth.Account), nil
		case acct.Balance < auth.Amount:
			return fmt.Sprintf("authorization %s expired uncaptured and was voided, and the balance no longer covers it", auth.ID), nil
		}
		in.debit(acct, auth.Amount)
		auth.Reason, auth.Message = gateway.ReasonNone, ""
	}
	s.AuthorizationID, s.Account = auth.ID, auth.Account
	auth.Status, auth.CapturedBy = AuthCaptured, s.ID
	in.touch(auth)
	return "", nil
}

// captureOffline books a capture the store approved without central: it
// debits the account now and records the token id as spent, so that the
// token cannot also be spent online. When central approved this very sale
// online (the store crashed before hearing it, or the answer came after the
// deadline) the capture captures that authorization instead, so that the
// account pays once. It returns why the capture is refused, or "" once it is
// booked; a refusal changes nothing.
func (in *intake) captureOffline(rec *BookedSettlement) (string, error) {
	s := &rec.Settlement
	key := TokenKey(s.TokenID)
	prev, err := in.authorization(key)
	if err != nil {
		return "", err
	}
	if prev != nil {
		sameSale := prev.StoreID == s.StoreID && prev.Lane == s.Lane && prev.POSTxnID == s.POSTxnID &&
			prev.Amount == s.Amount && prev.Account == s.Account
		switch {
		case sameSale && (prev.Status == AuthHeld || prev.Status == AuthVoided):
			return in.captureAuthorization(rec, prev)
		case sameSale && prev.Status == AuthDeclined:
			return "central declined this token for this sale: " + prev.Message, nil
		default:
			return fmt.Sprintf("the token was already used for another sale (%s at store %s, lane %s)", prev.Status, prev.StoreID, prev.Lane), nil
		}
	}

	acct, err := in.account(s.Account)
	switch {
	case err != nil:
		return "", err
	case acct == nil:
		return fmt.Sprintf("unknown account %q", s.Account), nil
	case acct.Currency != s.Currency:
		return "the account is held in " + acct.Currency, nil
	case acct.Balance < s.Amount:
		return "insufficient funds", nil
	}
	in.debit(acct, s.Amount)
	in.auths[key] = &Authorization{
		Key:        key,
		Credential: "token:" + hex.EncodeToString(s.TokenID),
		StoreID:    s.StoreID,
		Lane:       s.Lane,
		POSTxnID:   s.POSTxnID,
		Account:    s.Account,
		Amount:     s.Amount,
		Currency:   s.Currency,
		Status:     AuthOffline,
		Created:    rec.BookedAt,
		CapturedBy: s.ID,
	}
	in.newAuths[key] = true
	return "", nil
}

// reverse books a reversal: it credits the capture's amount back to its
// account and marks the capture (and its authorization) reversed. It returns
// why the reversal is refused, or "" once it is booked; a refusal changes
// nothing. waiting is true when the capture is not booked yet: the reversal
// is then neither booked nor acknowledged.
func (in *intake) reverse(rec *BookedSettlement) (msg string, waiting bool, err error) {
	s := &rec.Settlement
	capture, err := in.settlement(s.ReversesID)
	switch {
	case err != nil:
		return "", true, err
	case capture == nil:
		return "", true, nil
	case capture.Kind != gateway.SettlementCapture:
		return fmt.Sprintf("settlement %s is not a capture", capture.ID), false, nil
	case capture.Status != gateway.SettlementAccepted:
		return fmt.Sprintf("capture %s was refused", capture.ID), false, nil
	case capture.StoreID != s.StoreID:
		return fmt.Sprintf("capture %s belongs to another store", capture.ID), false, nil
	case capture.ReversedBy != "":
		return fmt.Sprintf("capture %s was already reversed by %s", capture.ID, capture.ReversedBy), false, nil
	case s.Amount != capture.Amount:
		return fmt.Sprintf("amount %d does not match capture %s (%d)", s.Amount, capture.ID, capture.Amount), false, nil
	case s.Account != "" && s.Account != capture.Account:
		return fmt.Sprintf("account %q does not match capture %s", s.Account, capture.ID), false, nil
	}
	acct, err := in.account(capture.Account)
	if err != nil {
		return "", false, err
	}
	if acct == nil {
		return fmt.Sprintf("unknown account %q", capture.Account), false, nil
	}
	var auth *Authorization
	if capture.AuthorizationID != "" {
		if auth, err = in.authorizationByID(capture.AuthorizationID); err != nil {
			return "", false, err
		}
		if auth == nil {
			return "", false, fmt.Errorf("authorization %s of capture %s is missing", capture.AuthorizationID, capture.ID)
		}
	}

	s.Account = capture.Account
	in.debit(acct, -s.Amount)
	capture.ReversedBy = s.ID
	if !in.fresh[capture.ID] {
		in.reversed[capture.ID] = s.ID
	}
	if auth != nil {
		auth.Status = AuthReversed
		in.touch(auth)
	}
	return "", false, nil
}
