package central

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"storegate/gateway"
)

// AuthStatus is the state of a recorded authorization.
type AuthStatus string

// Authorization states. An approval starts held (the amount is already
// debited), becomes captured when the store's capture settlement is booked
// and reversed when that capture is given back. A hold that no capture claims
// in time is voided and its amount given back (VoidStaleHolds); a capture
// that arrives later takes the amount again if the balance still covers it.
// A decline is recorded too, so that the token or code cannot be tried again
// at another sale, and so is a token an offline approval spent.
const (
	// AuthHeld: approved and debited, waiting for the store's capture.
	AuthHeld AuthStatus = "held"
	// AuthCaptured: the store's capture settlement was booked.
	AuthCaptured AuthStatus = "captured"
	// AuthReversed: the capture was given back by a reversal.
	AuthReversed AuthStatus = "reversed"
	// AuthDeclined: declined; nothing was debited.
	AuthDeclined AuthStatus = "declined"
	// AuthVoided: held, then voided uncaptured; the amount was given back.
	AuthVoided AuthStatus = "voided"
	// AuthOffline: the token was spent by a sale a store approved offline.
	// It has no id; the debit is the offline capture's (CapturedBy), which
	// Books counts.
	AuthOffline AuthStatus = "offline"
)

// approved reports whether the authorization debited the account.
func (s AuthStatus) approved() bool {
	return s == AuthHeld || s == AuthCaptured || s == AuthReversed
}

// Authorization is the record of one use of a token id or payment code.
type Authorization struct {
	// ID is "auth-" and 16 random bytes in hex; empty for a decline.
	ID string `json:"id,omitempty"`
	// Credential names what was used without revealing it: "token:" and the
	// token id in hex, or "code:" and the code's gateway.Fingerprint.
	Credential string     `json:"credential"`
	StoreID    string     `json:"store"`
	Lane       string     `json:"lane"`
	POSTxnID   string     `json:"pos_txn_id"`
	Account    string     `json:"account,omitempty"`
	Amount     int64      `json:"amount"`
	Currency   string     `json:"currency"`
	Status     AuthStatus `json:"status"`
	// Reason and Message are the answer given to a decline.
	Reason  gateway.Reason `json:"reason,omitempty"`
	Message string         `json:"message,omitempty"`
	Created time.Time      `json:"created"`
	// CapturedBy is the id of the capture settlement that booked it.
	CapturedBy string `json:"captured_by,omitempty"`
	// VoidedAt is when the hold was voided uncaptured.
	VoidedAt time.Time `json:"voided_at,omitzero"`
	// Key is what the authorization is recorded under: its token id or
	// payment code (TokenKey, CodeKey).
	Key CredentialKey `json:"-"`
}

// sameSale reports whether req is the sale the authorization was made for:
// a gateway retrying after a crash gets the first answer again.
func (a *Authorization) sameSale(req *gateway.CentralRequest) bool {
	return a.StoreID == req.StoreID && a.Lane == req.Lane &&
		a.POSTxnID == req.POSTxnID && a.Amount == req.Amount
}

// result returns the answer the authorization gave.
func (a *Authorization) result() *gateway.CentralResult {
	return &gateway.CentralResult{
		Approved:        a.Status.approved(),
		Reason:          a.Reason,
		AuthorizationID: a.ID,
		Account:         a.Account,
		Message:         a.Message,
	}
}

// declined returns a decline that records nothing.
func declined(r gateway.Reason, msg string) *gateway.CentralResult {
	return &gateway.CentralResult{Reason: r, Message: msg}
}

// validateAuthorize checks the shape of a request. Errors are EINVALID and
// name the field.
func validateAuthorize(req *gateway.CentralRequest, currency string) error {
	switch {
	case !gateway.ValidID(req.StoreID):
		return gateway.Errorf(gateway.EINVALID, "store_id: want 1-64 characters of [A-Za-z0-9._:-]")
	case !gateway.ValidID(req.Lane):
		return gateway.Errorf(gateway.EINVALID, "lane: want 1-64 characters of [A-Za-z0-9._:-]")
	case !gateway.ValidID(req.POSTxnID):
		return gateway.Errorf(gateway.EINVALID, "pos_transaction_id: want 1-64 characters of [A-Za-z0-9._:-]")
	case req.Credential == "":
		return gateway.Errorf(gateway.EINVALID, "token: a token or payment code is required")
	case len(req.Credential) > gateway.MaxTokenText:
		return gateway.Errorf(gateway.EINVALID, "token: longer than %d characters", gateway.MaxTokenText)
	case req.Amount <= 0 || req.Amount > MaxAmount:
		return gateway.Errorf(gateway.EINVALID, "amount: %d outside 1 to %d", req.Amount, MaxAmount)
	case req.Currency != currency:
		return gateway.Errorf(gateway.EINVALID, "currency: %s is not the ledger's currency (%s)", gateway.QuoteInput(req.Currency), currency)
	}
	if len(req.Lines) > 0 {
		// The basket must add up to the amount charged; the gateway's own
		// rule for baskets says how.
		basket := gateway.AuthorizeRequest{
			Lane: req.Lane, POSTxnID: req.POSTxnID, Lines: req.Lines,
			Total: req.Amount, Currency: req.Currency, Token: req.Credential,
		}
		if err := basket.Validate(currency); err != nil {
			return err
		}
	}
	return nil
}

// Authorize decides a payment online, verifying a token against keys at
// now, in one short transaction. A decline is a result, not an error;
// errors are EINVALID for a malformed request and anything else for broken
// machinery, in which case nothing was recorded.
//
// The token id (or payment code) is single use chain-wide: its first sale is
// recorded, with the debit, in one transaction. The same store, lane, POS
// transaction and amount get the first answer again, without a second
// debit; anything else is declined as replayed. A decline for an unknown
// account or insufficient funds is recorded too, so the token cannot be
// tried at another sale; so is one for an account on HQ's freeze list.
func (l *Ledger) Authorize(ctx context.Context, req *gateway.CentralRequest, keys *gateway.Keyring, now time.Time) (*gateway.CentralResult, error) {
	if err := validateAuthorize(req, l.Currency); err != nil {
		return nil, err
	}
	var (
		key        CredentialKey
		credential string
		accountID  string
		isCode     = gateway.IsPaymentCode(req.Credential)
	)
	if isCode {
		key, credential = CodeKey(req.Credential), "code:"+gateway.Fingerprint(req.Credential)
	} else {
		tok, err := l.Verifier.Verify(req.Credential, keys, now)
		if err != nil {
			var te *gateway.TokenError
			if !errors.As(err, &te) {
				return nil, fmt.Errorf("verify token: %w", err)
			}
			return declined(te.Reason, te.Detail), nil
		}
		key, credential = TokenKey(tok.TokenID), "token:"+hex.EncodeToString(tok.TokenID)
		accountID = tok.Account
	}
	// A fresh id for an approval, made before the transaction so that a
	// rerun of it has no effect outside it.
	id, err := newAuthorizationID()
	if err != nil {
		return nil, err
	}

	var res *gateway.CentralResult
	// The storage may run the function more than once, so it sets res
	// afresh each time.
	err = l.storage.Update(ctx, func(tx Tx) error {
		res = nil
		acctID := accountID
		if isCode {
			acct, ok, err := tx.PaymentCode(req.Credential)
			if err != nil {
				return err
			}
			if !ok {
				res = declined(gateway.ReasonCentralDeclined, "unknown payment code")
				return nil
			}
			acctID = acct
		}
		prevs, err := tx.Authorizations([]CredentialKey{key})
		if err != nil {
			return err
		}
		if prev := prevs[key]; prev != nil {
			switch {
			case prev.Status == AuthOffline:
				res = declined(gateway.ReasonReplayed, "this token was already used for a sale approved offline")
			case prev.sameSale(req):
				res = prev.result()
			default:
				res = declined(gateway.ReasonReplayed, "this token was already used for another sale")
			}
			return nil
		}

		auth := &Authorization{
			Key:        key,
			Credential: credential,
			StoreID:    req.StoreID,
			Lane:       req.Lane,
			POSTxnID:   req.POSTxnID,
			Account:    acctID,
			Amount:     req.Amount,
			Currency:   req.Currency,
			Created:    stamp(now),
		}
		accts, err := tx.Accounts([]string{acctID})
		if err != nil {
			return err
		}
		frozen, err := tx.Frozen([]string{acctID})
		if err != nil {
			return err
		}
		acct := accts[acctID]
		_, isFrozen := frozen[acctID]
		switch {
		case acct == nil:
			auth.Status, auth.Reason, auth.Message = AuthDeclined, gateway.ReasonCentralDeclined, "unknown account"
		case isFrozen:
			auth.Status, auth.Reason, auth.Message = AuthDeclined, gateway.ReasonAccountFrozen, "the account is frozen by HQ"
		case acct.Currency != req.Currency:
			auth.Status, auth.Reason, auth.Message = AuthDeclined, gateway.ReasonCentralDeclined, "the account is held in "+acct.Currency
		case acct.Balance < req.Amount:
			auth.Status, auth.Reason, auth.Message = AuthDeclined, gateway.ReasonInsufficientFunds, "the balance does not cover the amount"
		default:
			acct.Balance -= req.Amount
			if err := tx.PutAccounts([]*Account{acct}); err != nil {
				return err
			}
			auth.ID, auth.Status = id, AuthHeld
		}
		n, err := tx.InsertAuthorizations([]*Authorization{auth})
		if err := wantInserted("authorization", 1, n, err); err != nil {
			return err
		}
		res = auth.result()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	return res, nil
}

// newAuthorizationID returns "auth-" and 16 random bytes in hex.
func newAuthorizationID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("authorization id: %w", err)
	}
	return "auth-" + hex.EncodeToString(b), nil
}

// wantInserted turns an insert that recorded fewer records than it was
// given into an error. The rules read every record before they insert it,
// in the same transaction, so a record that is already there means a
// concurrent writer the storage failed to serialize against: nothing of the
// transaction may be kept.
func wantInserted(what string, want, got int, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("insert %s: %w", what, err)
	case got != want:
		return fmt.Errorf("insert %s: %d of %d were already recorded by a concurrent transaction", what, want-got, want)
	}
	return nil
}
