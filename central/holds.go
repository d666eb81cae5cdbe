package central

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// DefaultHoldExpiry is how long the reference central service keeps an
// uncaptured hold before VoidStaleHolds gives its amount back. A store's
// capture normally arrives within seconds; an hour leaves room for long
// outages between a store and HQ, and a capture that arrives after the void
// still takes the amount again if the balance covers it.
const DefaultHoldExpiry = time.Hour

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
