package central

import (
	"context"
	"crypto/rand"
	"fmt"

	"storegate/gateway"
)

// PaymentCodeDigits is the length of the payment codes IssueCode makes.
const PaymentCodeDigits = 20

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
func (l *Ledger) SetAccount(ctx context.Context, id string, balance int64) error {
	if err := validateAccount(id, balance); err != nil {
		return err
	}
	return l.storage.Update(ctx, func(tx Tx) error {
		accts, err := tx.Accounts([]string{id})
		if err != nil {
			return err
		}
		acct := accts[id]
		if acct == nil {
			acct = &Account{ID: id, Currency: l.Currency}
		}
		acct.Funded += balance - acct.Balance
		acct.Balance = balance
		return tx.PutAccounts([]*Account{acct})
	})
}

// EnsureAccount creates an account with an opening balance when it does not
// exist, and leaves an existing account as it is.
func (l *Ledger) EnsureAccount(ctx context.Context, id string, opening int64) error {
	if err := validateAccount(id, opening); err != nil {
		return err
	}
	return l.storage.Update(ctx, func(tx Tx) error {
		_, err := tx.InsertAccount(&Account{ID: id, Balance: opening, Currency: l.Currency, Funded: opening})
		return err
	})
}

// Balance returns an account's balance in minor units, or ENOTFOUND.
func (l *Ledger) Balance(ctx context.Context, id string) (int64, error) {
	var balance int64
	err := l.storage.View(ctx, func(tx Tx) error {
		accts, err := tx.Accounts([]string{id})
		if err != nil {
			return err
		}
		acct, ok := accts[id]
		if !ok {
			return gateway.Errorf(gateway.ENOTFOUND, "account %q not found", id)
		}
		balance = acct.Balance
		return nil
	})
	return balance, err
}

// IssueCode makes a random 20-digit numeric payment code that charges
// account, for tests and the demo. The code is single use: the first sale
// it pays for records it, and any other sale is declined as replayed.
// An unknown account is ENOTFOUND.
func (l *Ledger) IssueCode(ctx context.Context, accountID string) (string, error) {
	var code string
	err := l.storage.Update(ctx, func(tx Tx) error {
		accts, err := tx.Accounts([]string{accountID})
		if err != nil {
			return err
		}
		if accts[accountID] == nil {
			return gateway.Errorf(gateway.ENOTFOUND, "account %q not found", accountID)
		}
		for {
			c, err := newPaymentCode()
			if err != nil {
				return err
			}
			// A code an authorization has spent stays spent.
			used, err := tx.Authorizations([]CredentialKey{CodeKey(c)})
			if err != nil {
				return err
			}
			if len(used) > 0 {
				continue
			}
			ok, err := tx.InsertPaymentCode(c, accountID)
			if err != nil {
				return err
			}
			if ok {
				code = c
				return nil
			}
		}
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
