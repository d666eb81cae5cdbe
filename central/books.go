package central

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"storegate/gateway"
)

// Books is a consistent snapshot of the ledger, for tests, crash tests and
// tools: every account with its totals, every authorization and every
// booked settlement.
type Books struct {
	// Accounts holds each account's totals, by account id.
	Accounts map[string]AccountBooks
	// Authorizations lists every recorded use of a token id or payment
	// code, approvals and declines.
	Authorizations []Authorization
	// Settlements lists every booked settlement, accepted and refused, in
	// id order.
	Settlements []BookedSettlement

	// problems are references to accounts that do not exist, found while
	// reading; Verify reports them.
	problems []error
}

// AccountBooks are one account's totals, in minor units.
type AccountBooks struct {
	Currency string
	// Balance is the stored balance.
	Balance int64
	// Funded is every amount put in through SetAccount and EnsureAccount.
	Funded int64
	// Debited is the sum of approved authorizations and of accepted
	// captures made without one (offline approvals).
	Debited int64
	// Credited is the sum of accepted reversals.
	Credited int64
	// Held is the sum of approved authorizations not captured yet.
	Held int64
	// Captured is the sum of accepted captures not reversed.
	Captured int64
	// Voided is the sum of holds voided uncaptured (given back, so in
	// neither Debited nor Credited).
	Voided int64
}

// Settlement returns the booked settlement with the given id.
func (b *Books) Settlement(id string) (BookedSettlement, bool) {
	i := sort.Search(len(b.Settlements), func(i int) bool { return b.Settlements[i].ID >= id })
	if i < len(b.Settlements) && b.Settlements[i].ID == id {
		return b.Settlements[i], true
	}
	return BookedSettlement{}, false
}

// Books reads the whole ledger in one read transaction.
func (l *Ledger) Books(ctx context.Context) (*Books, error) {
	var b *Books
	err := l.storage.View(ctx, func(tx Tx) error {
		b = &Books{Accounts: make(map[string]AccountBooks)}
		err := tx.EachAccount(func(a *Account) error {
			b.Accounts[a.ID] = AccountBooks{Currency: a.Currency, Balance: a.Balance, Funded: a.Funded}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.EachAuthorization(func(a *Authorization) error {
			b.Authorizations = append(b.Authorizations, *a)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.EachSettlement(func(s *BookedSettlement) error {
			b.Settlements = append(b.Settlements, *s)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read books: %w", err)
	}
	// Settlement looks up by id; authorizations come in their keys' order,
	// whichever order the storage read them in.
	slices.SortFunc(b.Settlements, func(x, y BookedSettlement) int { return strings.Compare(x.ID, y.ID) })
	slices.SortFunc(b.Authorizations, func(x, y Authorization) int { return strings.Compare(string(x.Key), string(y.Key)) })

	add := func(accountID, what string, f func(*AccountBooks)) {
		ab, ok := b.Accounts[accountID]
		if !ok {
			b.problems = append(b.problems, fmt.Errorf("%s names unknown account %q", what, accountID))
			return
		}
		f(&ab)
		b.Accounts[accountID] = ab
	}
	for _, a := range b.Authorizations {
		if a.Status == AuthVoided {
			add(a.Account, "authorization "+a.ID, func(ab *AccountBooks) { ab.Voided += a.Amount })
		}
		if !a.Status.approved() {
			continue
		}
		add(a.Account, "authorization "+a.ID, func(ab *AccountBooks) {
			ab.Debited += a.Amount
			if a.Status == AuthHeld {
				ab.Held += a.Amount
			}
		})
	}
	for _, s := range b.Settlements {
		if s.Status != gateway.SettlementAccepted {
			continue
		}
		add(s.Account, "settlement "+s.ID, func(ab *AccountBooks) {
			switch s.Kind {
			case gateway.SettlementCapture:
				if s.AuthorizationID == "" {
					ab.Debited += s.Amount
				}
				if s.ReversedBy == "" {
					ab.Captured += s.Amount
				}
			case gateway.SettlementReversal:
				ab.Credited += s.Amount
			}
		})
	}
	return b, nil
}

// Verify checks that the books balance and that their records agree: each
// balance is what was funded, less what was debited, plus what was given
// back, and never negative; each captured authorization was captured by
// exactly one accepted capture; each reversed capture by exactly one
// accepted reversal; each accepted capture without an authorization (an
// offline approval) spent its token, and each token spent offline names that
// capture. It returns every problem found, joined.
func (b *Books) Verify() error {
	return errors.Join(b.Problems()...)
}

// Problems returns every problem Verify finds, one error each; none when
// the books balance.
func (b *Books) Problems() []error {
	errs := append([]error(nil), b.problems...)
	for id, ab := range b.Accounts {
		if want := ab.Funded - ab.Debited + ab.Credited; ab.Balance != want {
			errs = append(errs, fmt.Errorf("account %s: balance %d, want funded %d - debited %d + credited %d = %d",
				id, ab.Balance, ab.Funded, ab.Debited, ab.Credited, want))
		}
		if ab.Balance < 0 {
			errs = append(errs, fmt.Errorf("account %s: negative balance %d", id, ab.Balance))
		}
	}

	auths := make(map[string]Authorization)
	spentOffline := make(map[string]Authorization) // by capture id
	for _, a := range b.Authorizations {
		if a.Status == AuthOffline {
			if prev, dup := spentOffline[a.CapturedBy]; dup {
				errs = append(errs, fmt.Errorf("capture %s spent two tokens, %s and %s", a.CapturedBy, prev.Credential, a.Credential))
			}
			spentOffline[a.CapturedBy] = a
			c, ok := b.Settlement(a.CapturedBy)
			if !ok || c.Status != gateway.SettlementAccepted || c.Kind != gateway.SettlementCapture || c.AuthorizationID != "" || c.Amount != a.Amount {
				errs = append(errs, fmt.Errorf("token %s spent offline: capture %s missing or not an accepted offline capture of %d", a.Credential, a.CapturedBy, a.Amount))
			}
		}
		if !a.Status.approved() {
			continue
		}
		if a.ID == "" {
			errs = append(errs, fmt.Errorf("authorization %s: approved without an id", a.Credential))
			continue
		}
		auths[a.ID] = a
	}
	capturedBy := make(map[string]string)
	for _, s := range b.Settlements {
		if s.Status != gateway.SettlementAccepted {
			continue
		}
		switch s.Kind {
		case gateway.SettlementCapture:
			if _, ok := spentOffline[s.ID]; s.AuthorizationID == "" && !ok {
				errs = append(errs, fmt.Errorf("offline capture %s: no token is recorded as spent by it", s.ID))
			}
			if s.AuthorizationID != "" {
				a, ok := auths[s.AuthorizationID]
				switch {
				case !ok:
					errs = append(errs, fmt.Errorf("capture %s: authorization %s not approved or missing", s.ID, s.AuthorizationID))
				case a.CapturedBy != s.ID:
					errs = append(errs, fmt.Errorf("capture %s: authorization %s names capture %q", s.ID, a.ID, a.CapturedBy))
				case s.ReversedBy == "" && a.Status != AuthCaptured, s.ReversedBy != "" && a.Status != AuthReversed:
					errs = append(errs, fmt.Errorf("capture %s: authorization %s is %s", s.ID, a.ID, a.Status))
				}
				if prev, dup := capturedBy[s.AuthorizationID]; dup {
					errs = append(errs, fmt.Errorf("authorization %s captured twice, by %s and %s", s.AuthorizationID, prev, s.ID))
				}
				capturedBy[s.AuthorizationID] = s.ID
			}
			if s.ReversedBy != "" {
				r, ok := b.Settlement(s.ReversedBy)
				if !ok || r.Status != gateway.SettlementAccepted || r.ReversesID != s.ID {
					errs = append(errs, fmt.Errorf("capture %s: reversal %s missing or not booked against it", s.ID, s.ReversedBy))
				}
			}
		case gateway.SettlementReversal:
			c, ok := b.Settlement(s.ReversesID)
			if !ok || c.ReversedBy != s.ID {
				errs = append(errs, fmt.Errorf("reversal %s: capture %s does not name it", s.ID, s.ReversesID))
			}
		}
	}
	for id, a := range auths {
		if a.Status == AuthHeld {
			if _, ok := capturedBy[id]; ok {
				errs = append(errs, fmt.Errorf("authorization %s is held but was captured by %s", id, capturedBy[id]))
			}
			continue
		}
		if _, ok := capturedBy[id]; !ok {
			errs = append(errs, fmt.Errorf("authorization %s is %s but no accepted capture names it", id, a.Status))
		}
	}
	return errs
}
