package central

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"storegate/gateway"
	"storegate/internal/loop"
)

// DefaultHoldExpiry is how long the reference central service keeps an
// uncaptured hold before VoidStaleHolds gives its amount back. A store's
// capture normally arrives within seconds; an hour leaves room for long
// outages between a store and HQ, and a capture that arrives after the void
// still takes the amount again if the balance covers it.
const DefaultHoldExpiry = time.Hour

// HoldVoider voids stale holds (Ledger.VoidStaleHolds) every tenth of
// Expiry (at least every second, at most every minute), so that a customer
// whose sale never completed gets the amount back within about Expiry.
// Create it with NewHoldVoider, set its exported fields, then call Run.
type HoldVoider struct {
	// Ledger holds the holds.
	Ledger *Ledger
	// Expiry is how long an uncaptured hold stands before it is voided and
	// its amount given back; NewHoldVoider sets DefaultHoldExpiry, and zero
	// means it too.
	Expiry time.Duration
	// Interval is the time between voids; zero, as NewHoldVoider leaves it,
	// means a tenth of Expiry within [1s, 1m].
	Interval time.Duration
	// Now is the clock a hold's age is measured on; NewHoldVoider sets
	// time.Now.
	Now func() time.Time
	// Logger receives failures and what was voided; NewHoldVoider sets one
	// that discards them.
	Logger *slog.Logger
}

// NewHoldVoider returns a voider of the stale holds in l with the default
// settings.
func NewHoldVoider(l *Ledger) *HoldVoider {
	return &HoldVoider{Ledger: l, Expiry: DefaultHoldExpiry, Now: time.Now, Logger: discard}
}

// Run voids stale holds every Interval until ctx ends. A failed void is
// logged and tried again at the next tick.
func (v *HoldVoider) Run(ctx context.Context) {
	expiry := v.Expiry
	if expiry <= 0 {
		expiry = DefaultHoldExpiry
	}
	every := v.Interval
	if every <= 0 {
		every = min(max(expiry/10, time.Second), time.Minute)
	}
	now, logger := v.Now, v.Logger
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = discard
	}
	loop.Every(ctx, every, func(ctx context.Context) {
		n, err := v.Ledger.VoidStaleHolds(ctx, now(), expiry)
		if err != nil {
			logger.Error("void stale holds", "err", err)
		} else if n > 0 {
			logger.Info("voided stale holds", "count", n, "older_than", expiry.String())
		}
	})
}

// voidChunk bounds the holds one VoidStaleHolds transaction voids.
const voidChunk = 1000

// VoidStaleHolds voids every held authorization made before now−olderThan:
// its amount goes back to the account and it is marked voided, so that a
// customer whose sale never completed (the store crashed after central
// approved it and the sale was then declined or abandoned) is not left
// debited. A capture that arrives for a voided hold takes the amount again
// if the balance covers it and is refused otherwise. A retry of the sale
// after the void is declined. It returns how many holds it voided, in
// transactions of at most 1,000 voids each.
func (l *Ledger) VoidStaleHolds(ctx context.Context, now time.Time, olderThan time.Duration) (int, error) {
	cutoff := now.Add(-olderThan)
	total := 0
	for {
		n := 0
		err := l.storage.Update(ctx, func(tx Tx) error {
			n = 0
			held, err := tx.HeldBefore(cutoff, voidChunk)
			if err != nil || len(held) == 0 {
				return err
			}
			ids := make([]string, 0, len(held))
			for _, a := range held {
				ids = append(ids, a.Account)
			}
			accts, err := tx.Accounts(ids)
			if err != nil {
				return err
			}
			changed := make(map[string]*Account)
			for _, a := range held {
				acct := accts[a.Account]
				if acct == nil {
					return fmt.Errorf("authorization %s: account %q is missing", a.ID, a.Account)
				}
				acct.Balance += a.Amount
				changed[acct.ID] = acct
				a.Status, a.VoidedAt = AuthVoided, stamp(now)
				a.Reason, a.Message = gateway.ReasonCentralDeclined, "the hold expired before the store captured it"
			}
			put := make([]*Account, 0, len(changed))
			for _, id := range slices.Sorted(maps.Keys(changed)) {
				put = append(put, changed[id])
			}
			if err := tx.PutAccounts(put); err != nil {
				return err
			}
			if err := tx.UpdateAuthorizations(held); err != nil {
				return err
			}
			n = len(held)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("void stale holds: %w", err)
		}
		total += n
		if n < voidChunk {
			return total, nil
		}
	}
}
