package central

import (
	"encoding/hex"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

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
// Errors are EINVALID for a malformed call and anything else for broken
// machinery, in which case nothing was booked.
func (l *Ledger) SubmitSettlements(storeID string, batch []gateway.Settlement, now time.Time) ([]gateway.SettlementAck, error) {
	if !gateway.ValidID(storeID) {
		return nil, gateway.Errorf(gateway.EINVALID, "store_id: want 1-64 characters of [A-Za-z0-9._:-]")
	}
	if len(batch) > MaxSettlementBatch {
		return nil, gateway.Errorf(gateway.EINVALID, "settlements: %d in one batch, at most %d", len(batch), MaxSettlementBatch)
	}
	var acks []gateway.SettlementAck
	// The committer may run the function more than once; it starts the
	// acks afresh each time.
	err := l.update(func(tx *bolt.Tx) error {
		acks = acks[:0]
		for _, s := range batch {
			ack, err := l.book(tx, storeID, s, now)
			if err != nil {
				return fmt.Errorf("settlement %s: %w", s.ID, err)
			}
			if ack != nil {
				acks = append(acks, *ack)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("submit settlements: %w", err)
	}
	return acks, nil
}

// book books one settlement inside tx and returns its ack, or nil when it
// was not recorded and must be sent again.
func (l *Ledger) book(tx *bolt.Tx, storeID string, s gateway.Settlement, now time.Time) (*gateway.SettlementAck, error) {
	if !gateway.ValidID(s.ID) {
		return &gateway.SettlementAck{ID: s.ID, Status: gateway.SettlementRefused,
			Message: "settlement id: want 1-64 characters of [A-Za-z0-9._:-]"}, nil
	}
	stls := tx.Bucket(settlementsBucket)
	var prev BookedSettlement
	found, err := getJSON(stls, []byte(s.ID), &prev)
	if err != nil {
		return nil, err
	}
	if found {
		if prev.Status == gateway.SettlementRefused {
			return &gateway.SettlementAck{ID: s.ID, Status: gateway.SettlementRefused, Message: prev.Message}, nil
		}
		return &gateway.SettlementAck{ID: s.ID, Status: gateway.SettlementDuplicate}, nil
	}

	if s.StoreID == "" {
		s.StoreID = storeID
	}
	rec := &BookedSettlement{Settlement: s, BookedAt: now.UTC()}
	var msg string
	if msg = l.malformed(&rec.Settlement, storeID); msg == "" {
		switch {
		case s.Kind == gateway.SettlementReversal:
			var waiting bool
			msg, waiting, err = reverse(tx, rec)
			if waiting {
				return nil, err
			}
		case s.AuthorizationID != "":
			msg, err = captureHeld(tx, rec)
		default:
			msg, err = captureOffline(tx, rec)
		}
		if err != nil {
			return nil, err
		}
	}
	rec.Status, rec.Message = gateway.SettlementAccepted, msg
	if msg != "" {
		rec.Status = gateway.SettlementRefused
	}
	if err := putJSON(stls, []byte(s.ID), rec); err != nil {
		return nil, err
	}
	return &gateway.SettlementAck{ID: s.ID, Status: rec.Status, Message: rec.Message}, nil
}

// malformed returns why a settlement cannot be booked whatever the books
// say, or "".
func (l *Ledger) malformed(s *gateway.Settlement, storeID string) string {
	switch {
	case s.Kind != gateway.SettlementCapture && s.Kind != gateway.SettlementReversal:
		return fmt.Sprintf("unknown settlement kind %q", s.Kind)
	case s.StoreID != storeID:
		return fmt.Sprintf("settlement belongs to store %q, not to the submitting store", s.StoreID)
	case s.Amount <= 0 || s.Amount > MaxAmount:
		return fmt.Sprintf("amount %d outside 1 to %d", s.Amount, MaxAmount)
	case s.Currency != l.currency:
		return fmt.Sprintf("currency %q is not the ledger's currency (%s)", s.Currency, l.currency)
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
func captureHeld(tx *bolt.Tx, rec *BookedSettlement) (string, error) {
	s := &rec.Settlement
	key := tx.Bucket(authorizationIDsBucket).Get([]byte(s.AuthorizationID))
	if key == nil {
		return fmt.Sprintf("unknown authorization %q", s.AuthorizationID), nil
	}
	key = append([]byte(nil), key...)
	var auth Authorization
	found, err := getJSON(tx.Bucket(authorizationsBucket), key, &auth)
	if err != nil {
		return "", err
	}
	switch {
	case !found:
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
	return captureAuthorization(tx, rec, key, &auth)
}

// captureAuthorization marks auth, stored under key, captured by rec, and
// names it in rec. A held authorization was debited when it was made; a
// voided one gave its amount back, so it takes it again, or the capture is
// refused when the balance no longer covers it. It returns why the capture
// is refused, or ""; a refusal changes nothing.
func captureAuthorization(tx *bolt.Tx, rec *BookedSettlement, key []byte, auth *Authorization) (string, error) {
	s := &rec.Settlement
	if auth.Status == AuthVoided {
		accts := tx.Bucket(accountsBucket)
		var acct account
		found, err := getJSON(accts, []byte(auth.Account), &acct)
		switch {
		case err != nil:
			return "", err
		case !found:
			return fmt.Sprintf("unknown account %q", auth.Account), nil
		case acct.Balance < auth.Amount:
			return fmt.Sprintf("authorization %s expired uncaptured and was voided, and the balance no longer covers it", auth.ID), nil
		}
		acct.Balance -= auth.Amount
		if err := putJSON(accts, []byte(auth.Account), acct); err != nil {
			return "", err
		}
		auth.Reason, auth.Message = gateway.ReasonNone, ""
	}
	s.AuthorizationID, s.Account = auth.ID, auth.Account
	auth.Status, auth.CapturedBy = AuthCaptured, s.ID
	return "", putJSON(tx.Bucket(authorizationsBucket), key, auth)
}

// captureOffline books a capture the store approved without central: it
// debits the account now and records the token id as spent, so that the
// token cannot also be spent online. When central approved this very sale
// online (the store crashed before hearing it, or the answer came after the
// deadline) the capture captures that authorization instead, so that the
// account pays once. It returns why the capture is refused, or "" once it is
// booked; a refusal changes nothing.
func captureOffline(tx *bolt.Tx, rec *BookedSettlement) (string, error) {
	s := &rec.Settlement
	key := tokenKey(s.TokenID)
	var prev Authorization
	found, err := getJSON(tx.Bucket(authorizationsBucket), key, &prev)
	if err != nil {
		return "", err
	}
	if found {
		sameSale := prev.StoreID == s.StoreID && prev.Lane == s.Lane && prev.POSTxnID == s.POSTxnID &&
			prev.Amount == s.Amount && prev.Account == s.Account
		switch {
		case sameSale && (prev.Status == AuthHeld || prev.Status == AuthVoided):
			return captureAuthorization(tx, rec, key, &prev)
		case sameSale && prev.Status == AuthDeclined:
			return "central declined this token for this sale: " + prev.Message, nil
		default:
			return fmt.Sprintf("the token was already used for another sale (%s at store %s, lane %s)", prev.Status, prev.StoreID, prev.Lane), nil
		}
	}

	accts := tx.Bucket(accountsBucket)
	var acct account
	found, err = getJSON(accts, []byte(s.Account), &acct)
	if err != nil {
		return "", err
	}
	switch {
	case !found:
		return fmt.Sprintf("unknown account %q", s.Account), nil
	case acct.Currency != s.Currency:
		return "the account is held in " + acct.Currency, nil
	case acct.Balance < s.Amount:
		return "insufficient funds", nil
	}
	acct.Balance -= s.Amount
	if err := putJSON(accts, []byte(s.Account), acct); err != nil {
		return "", err
	}
	return "", putJSON(tx.Bucket(authorizationsBucket), key, Authorization{
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
	})
}

// reverse books a reversal: it credits the capture's amount back to its
// account and marks the capture (and its authorization) reversed. It returns
// why the reversal is refused, or "" once it is booked; a refusal changes
// nothing. waiting is true when the capture is not booked yet: the reversal
// is then neither booked nor acknowledged.
func reverse(tx *bolt.Tx, rec *BookedSettlement) (msg string, waiting bool, err error) {
	s := &rec.Settlement
	stls := tx.Bucket(settlementsBucket)
	var capture BookedSettlement
	found, err := getJSON(stls, []byte(s.ReversesID), &capture)
	if err != nil {
		return "", true, err
	}
	switch {
	case !found:
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
	accts := tx.Bucket(accountsBucket)
	var acct account
	found, err = getJSON(accts, []byte(capture.Account), &acct)
	if err != nil {
		return "", false, err
	}
	if !found {
		return fmt.Sprintf("unknown account %q", capture.Account), false, nil
	}

	s.Account = capture.Account
	acct.Balance += s.Amount
	if err := putJSON(accts, []byte(capture.Account), acct); err != nil {
		return "", false, err
	}
	capture.ReversedBy = s.ID
	if err := putJSON(stls, []byte(capture.ID), capture); err != nil {
		return "", false, err
	}
	if capture.AuthorizationID == "" {
		return "", false, nil
	}
	key := tx.Bucket(authorizationIDsBucket).Get([]byte(capture.AuthorizationID))
	if key == nil {
		return "", false, fmt.Errorf("authorization %s of capture %s is missing from the index", capture.AuthorizationID, capture.ID)
	}
	key = append([]byte(nil), key...)
	auths := tx.Bucket(authorizationsBucket)
	var auth Authorization
	found, err = getJSON(auths, key, &auth)
	if err != nil {
		return "", false, err
	}
	if !found {
		return "", false, fmt.Errorf("authorization %s of capture %s is missing", capture.AuthorizationID, capture.ID)
	}
	auth.Status = AuthReversed
	return "", false, putJSON(auths, key, auth)
}
