package central

import (
	"crypto/rand"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// PaymentCodeDigits is the length of the payment codes IssueCode makes.
const PaymentCodeDigits = 20

// account is an account record. Funded is every amount ever put in through
// SetAccount and EnsureAccount, so that Books can check that the balance is
// what was put in, less what was debited, plus what was given back.
type account struct {
	Balance  int64  `json:"balance"`
	Currency string `json:"currency"`
	Funded   int64  `json:"funded"`
}

func validateAccount(id string, balance int64) error {
	if !gateway.ValidID(id) {
		return gateway.Errorf(gateway.EINVALID, "account id %q: want 1-64 characters of [A-Za-z0-9._:-]", id)
	}
	if balance < 0 || balance > MaxAmount {
		return gateway.Errorf(gateway.EINVALID, "balance %d outside 0 to %d", balance, MaxAmount)
	}
	return nil
}

// SetAccount sets an account's balance, creating the account in the ledger's
// currency when it does not exist. The difference to the old balance is
// booked as funding, so the books stay balanced.
func (l *Ledger) SetAccount(id string, balance int64) error {
	if err := validateAccount(id, balance); err != nil {
		return err
	}
	return l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(accountsBucket)
		acct := account{Currency: l.currency}
		if _, err := getJSON(b, []byte(id), &acct); err != nil {
			return err
		}
		acct.Funded += balance - acct.Balance
		acct.Balance = balance
		return putJSON(b, []byte(id), acct)
	})
}

// EnsureAccount creates an account with an opening balance when it does not
// exist, and leaves an existing account as it is.
func (l *Ledger) EnsureAccount(id string, opening int64) error {
	if err := validateAccount(id, opening); err != nil {
		return err
	}
	return l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(accountsBucket)
		if b.Get([]byte(id)) != nil {
			return nil
		}
		return putJSON(b, []byte(id), account{Balance: opening, Currency: l.currency, Funded: opening})
	})
}

// Balance returns an account's balance in minor units, or ENOTFOUND.
func (l *Ledger) Balance(id string) (int64, error) {
	var acct account
	err := l.db.View(func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(accountsBucket), []byte(id), &acct)
		if err != nil {
			return err
		}
		if !found {
			return gateway.Errorf(gateway.ENOTFOUND, "account %q not found", id)
		}
		return nil
	})
	return acct.Balance, err
}

// IssueCode makes a random 20-digit numeric payment code that charges
// account, for tests and the demo. The code is single use: the first sale
// it pays for records it, and any other sale is declined as replayed.
// An unknown account is ENOTFOUND.
func (l *Ledger) IssueCode(accountID string) (string, error) {
	var code string
	err := l.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(accountsBucket).Get([]byte(accountID)) == nil {
			return gateway.Errorf(gateway.ENOTFOUND, "account %q not found", accountID)
		}
		codes, auths := tx.Bucket(codesBucket), tx.Bucket(authorizationsBucket)
		for {
			c, err := newPaymentCode()
			if err != nil {
				return err
			}
			if codes.Get([]byte(c)) == nil && auths.Get(codeKey(c)) == nil {
				code = c
				break
			}
		}
		return codes.Put([]byte(code), []byte(accountID))
	})
	if err != nil {
		return "", err
	}
	return code, nil
}

// newPaymentCode returns PaymentCodeDigits uniformly random decimal digits.
func newPaymentCode() (string, error) {
	digits := make([]byte, 0, PaymentCodeDigits)
	buf := make([]byte, 2*PaymentCodeDigits)
	for len(digits) < PaymentCodeDigits {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("payment code: %w", err)
		}
		for _, b := range buf {
			// 250 is the largest multiple of 10 that fits a byte: rejecting
			// the rest keeps every digit equally likely.
			if b < 250 && len(digits) < PaymentCodeDigits {
				digits = append(digits, '0'+b%10)
			}
		}
	}
	return string(digits), nil
}
