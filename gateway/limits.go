package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// CounterBucket is the granularity of the sliding-window counters: a charge
// is counted in the bucket of the minute it was made, and a window sums the
// buckets that overlap it. A charge therefore counts for at least the
// window and at most one bucket longer, never less.
const CounterBucket = time.Minute

// BucketStart returns the start, in unix seconds, of the bucket t falls in.
func BucketStart(t time.Time) int64 {
	s := t.Unix()
	b := int64(CounterBucket / time.Second)
	return s - ((s%b)+b)%b
}

// WindowStart returns the first bucket a window of length w ending at now
// sums: every charge made after now−w is in it or a later bucket.
func WindowStart(now time.Time, w time.Duration) int64 {
	return BucketStart(now.Add(-w))
}

// CounterWindow names a counter and the window it is summed over.
type CounterWindow struct {
	Counter string
	Window  time.Duration
}

// CounterCharge is what an approval adds to one sliding-window counter, and
// the cap the window's sum must stay within.
type CounterCharge struct {
	// Rule is the policy rule that set the cap.
	Rule string `json:"rule"`
	// Counter names the counter: the rule's scope and id, the unit, and the
	// account for per-account caps.
	Counter string        `json:"counter"`
	Window  time.Duration `json:"window"`
	Cap     int64         `json:"cap"`
	Amount  int64         `json:"amount"`
	// At is when the charge is made; it picks the bucket.
	At time.Time `json:"at"`
	// Limit describes the cap for a person, for example "30000 JPY per
	// account per 24h".
	Limit string `json:"limit"`
}

// LimitError is a charge that would take its counter's window over the
// cap. Store.CommitDecision returns it, having written nothing, when the
// re-check inside the commit's transaction fails.
type LimitError struct {
	Charge CounterCharge
	// Held is what the window held before this charge.
	Held int64
}

// Error describes the limit hit.
func (e *LimitError) Error() string { return "limit exceeded: " + e.Message() }

// Message is the decline's message: the rule, its cap, and what this sale
// would make.
func (e *LimitError) Message() string {
	return fmt.Sprintf("rule %s: %s; this sale would make %d", e.Charge.Rule, e.Charge.Limit, e.Held+e.Charge.Amount)
}

// CounterStore keeps the sliding-window counters of the rules for
// restricted goods. It is part of Store. Charges are written by
// CommitDecision, in the decision's transaction, and given back by
// CommitReversal.
type CounterStore interface {
	// CounterSums returns, for each window, the sum of its counter's buckets
	// from WindowStart(now, window) on.
	CounterSums(ctx context.Context, now time.Time, windows []CounterWindow) ([]int64, error)
	// PruneCounters deletes the buckets that start before cutoff (unix
	// seconds) and returns how many it deleted.
	PruneCounters(ctx context.Context, cutoff int64) (int, error)
}

// ruleUse is what a basket buys under one rule.
type ruleUse struct {
	scope  string // "chain" or "store"
	rule   *Rule
	qty    int64
	amount int64
}

// uses returns, for every rule the basket falls under, its quantity and
// amount, chain rules first, in policy order.
func (s *PolicySet) uses(lines []Line) []ruleUse {
	var out []ruleUse
	for _, p := range s.policies() {
		scope := "chain"
		if p.StoreID != "" {
			scope = "store"
		}
		for i := range p.Rules {
			r := &p.Rules[i]
			u := ruleUse{scope: scope, rule: r}
			for _, l := range lines {
				if r.Matches(l) {
					u.qty += l.Quantity
					u.amount += l.Quantity * l.UnitPrice
				}
			}
			if u.qty > 0 {
				out = append(out, u)
			}
		}
	}
	return out
}

// overTransaction checks the per-transaction caps.
func (u ruleUse) overTransaction(currency string) (string, bool) {
	r := u.rule
	switch {
	case r.MaxQuantityPerTransaction > 0 && u.qty > r.MaxQuantityPerTransaction:
		return fmt.Sprintf("rule %s: at most %d per transaction; this sale has %d", r.ID, r.MaxQuantityPerTransaction, u.qty), true
	case r.MaxAmountPerTransaction > 0 && u.amount > r.MaxAmountPerTransaction:
		return fmt.Sprintf("rule %s: at most %d %s per transaction; this sale has %d", r.ID, r.MaxAmountPerTransaction, currency, u.amount), true
	}
	return "", false
}

// chargesFor returns the window charges an approval of the basket makes.
// Counters are named by the rule's scope and id, so that a chain rule and
// a store rule with the same id count apart. account is empty for a
// payment code, which checkPolicy lets through only without per-account
// caps.
func chargesFor(uses []ruleUse, account, currency string, now time.Time) []CounterCharge {
	var out []CounterCharge
	for _, u := range uses {
		r := u.rule
		base := u.scope + "/" + r.ID
		if account != "" {
			if r.MaxQuantityPerAccount > 0 {
				out = append(out, CounterCharge{Rule: r.ID, Counter: "acct/" + base + "/qty/" + account, Window: r.AccountWindow,
					Cap: r.MaxQuantityPerAccount, Amount: u.qty, At: now,
					Limit: fmt.Sprintf("%d per account per %s", r.MaxQuantityPerAccount, fmtWindow(r.AccountWindow))})
			}
			if r.MaxAmountPerAccount > 0 {
				out = append(out, CounterCharge{Rule: r.ID, Counter: "acct/" + base + "/amount/" + account, Window: r.AccountWindow,
					Cap: r.MaxAmountPerAccount, Amount: u.amount, At: now,
					Limit: fmt.Sprintf("%d %s per account per %s", r.MaxAmountPerAccount, currency, fmtWindow(r.AccountWindow))})
			}
		}
		if r.MaxAmountPerStore > 0 {
			out = append(out, CounterCharge{Rule: r.ID, Counter: "store/" + base + "/amount", Window: r.StoreWindow,
				Cap: r.MaxAmountPerStore, Amount: u.amount, At: now,
				Limit: fmt.Sprintf("%d %s per store per %s", r.MaxAmountPerStore, currency, fmtWindow(r.StoreWindow))})
		}
	}
	return out
}

// fmtWindow writes a window the way a person says it: 24h, 90m, 45s.
func fmtWindow(d time.Duration) string {
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	default:
		return d.String()
	}
}

// reservations are the window charges of decisions in flight: reserved
// before central is asked, released once the decision is committed (then
// the charge is on disk) or declined. A check counts what is stored plus
// what is reserved, so two lanes can never both pass a cap while central
// thinks, and the re-check inside the commit cannot fail after central
// approved. In the instant between a commit and its release a charge is
// counted twice, which can only decline, never over-approve.
type reservations struct {
	mu   sync.Mutex
	held map[string]int64
}

// reserve checks charges against the stored windows plus the reservations
// and, when every one fits, reserves them all. It returns the release, or
// the first charge that does not fit.
func (r *reservations) reserve(ctx context.Context, store CounterStore, now time.Time, charges []CounterCharge) (func(), *LimitError, error) {
	windows := make([]CounterWindow, len(charges))
	for i, c := range charges {
		windows[i] = CounterWindow{Counter: c.Counter, Window: c.Window}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sums, err := store.CounterSums(ctx, now, windows)
	if err != nil {
		return nil, nil, err
	}
	if len(sums) != len(charges) {
		return nil, nil, fmt.Errorf("counter sums: got %d for %d counters", len(sums), len(charges))
	}
	for i, c := range charges {
		held := sums[i] + r.held[c.Counter]
		if held+c.Amount > c.Cap {
			return nil, &LimitError{Charge: c, Held: held}, nil
		}
	}
	if r.held == nil {
		r.held = make(map[string]int64)
	}
	for _, c := range charges {
		r.held[c.Counter] += c.Amount
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, c := range charges {
				if r.held[c.Counter] -= c.Amount; r.held[c.Counter] <= 0 {
					delete(r.held, c.Counter)
				}
			}
		})
	}, nil, nil
}

// limitRecheckFailed turns an approval whose charges the commit refused
// into a decline. With one gateway process on the store file the
// reservations make this impossible; it is the safety net for anything
// else writing the same counters. When central had approved, its hold
// stands until HQ releases it (central books nothing without a capture),
// which the log says loudly.
func (g *Gateway) limitRecheckFailed(d *decision, err error) bool {
	var lerr *LimitError
	if !errors.As(err, &lerr) {
		return false
	}
	g.Logger.Error("limit re-check at commit refused an approval; declining it, and central's hold stands until HQ releases it",
		"lane", d.req.Lane, "txn", d.req.POSTxnID, "rule", lerr.Charge.Rule, "counter", lerr.Charge.Counter,
		"authorization_id", d.AuthorizationID, "account", d.Account, "amount", d.Amount)
	d.Approved, d.SettlementID, d.charges = false, "", nil
	d.decline(ReasonLimitExceeded, lerr.Charge.Rule, lerr.Message())
	return true
}
