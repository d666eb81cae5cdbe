package central

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"

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
	loop.Every(ctx, every, func(context.Context) {
		n, err := v.Ledger.VoidStaleHolds(now(), expiry)
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
// after the void is declined. It returns how many holds it voided.
//
// It walks every authorization, in transactions of at most 1,000 voids: the
// reference service has no index by age, which its size does not need.
func (l *Ledger) VoidStaleHolds(now time.Time, olderThan time.Duration) (int, error) {
	cutoff := now.Add(-olderThan)
	total := 0
	for {
		n := 0
		err := l.db.Update(func(tx *bolt.Tx) error {
			n = 0
			auths := tx.Bucket(authorizationsBucket)
			accts := tx.Bucket(accountsBucket)
			type stale struct {
				key  []byte
				auth Authorization
			}
			var found []stale
			err := auths.ForEach(func(k, v []byte) error {
				if len(found) == voidChunk {
					return nil
				}
				var a Authorization
				if err := decodeJSON(v, &a); err != nil {
					return fmt.Errorf("authorization %x: %w", k, err)
				}
				if a.Status == AuthHeld && a.Created.Before(cutoff) {
					found = append(found, stale{append([]byte(nil), k...), a})
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, s := range found {
				var acct account
				ok, err := getJSON(accts, []byte(s.auth.Account), &acct)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("authorization %s: account %q is missing", s.auth.ID, s.auth.Account)
				}
				acct.Balance += s.auth.Amount
				if err := putJSON(accts, []byte(s.auth.Account), acct); err != nil {
					return err
				}
				a := s.auth
				a.Status, a.VoidedAt = AuthVoided, now.UTC()
				a.Reason, a.Message = gateway.ReasonCentralDeclined, "the hold expired before the store captured it"
				if err := putJSON(auths, s.key, a); err != nil {
					return err
				}
			}
			n = len(found)
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
