package gateway

import (
	"errors"
	"fmt"
)

// Names of the offline caps, as storegated's configuration, the policy's
// OfflineCaps message and the decline rules ("offline." + name) spell them.
const (
	CapPerTransaction = "max_amount_per_transaction"
	CapPerAccount     = "max_amount_per_account"
	CapStoreExposure  = "max_store_exposure"
)

// OfflineCaps bound what the store approves while the central service cannot
// answer (DESIGN.md step 5). Amounts are int64 minor units. A cap of zero
// allows nothing, so the zero value, the default, approves nothing offline.
type OfflineCaps struct {
	// MaxAmountPerTransaction caps one offline sale.
	MaxAmountPerTransaction int64
	// MaxAmountPerAccount caps one account's offline sales at this store
	// that central has not acknowledged yet.
	MaxAmountPerAccount int64
	// MaxStoreExposure caps all of the store's offline sales that central
	// has not acknowledged yet, every account together.
	MaxStoreExposure int64
}

// Enabled reports whether c lets anything be approved offline: every cap
// must be positive.
func (c OfflineCaps) Enabled() bool {
	return c.MaxAmountPerTransaction > 0 && c.MaxAmountPerAccount > 0 && c.MaxStoreExposure > 0
}

// Check returns the first cap an offline sale of amount would exceed, given
// the account's offline total and the store's offline exposure before it, or
// nil when the sale fits every cap. The sums are compared without overflow.
func (c OfflineCaps) Check(amount, accountTotal, storeExposure int64) *OfflineLimitError {
	for _, k := range []struct {
		name         string
		limit, total int64
	}{
		{CapPerTransaction, c.MaxAmountPerTransaction, 0},
		{CapPerAccount, c.MaxAmountPerAccount, accountTotal},
		{CapStoreExposure, c.MaxStoreExposure, storeExposure},
	} {
		if amount > k.limit-k.total {
			return &OfflineLimitError{Cap: k.name, Limit: k.limit, Total: k.total, Amount: amount}
		}
	}
	return nil
}

// OfflineLimitError says that an offline sale would take a total past its
// cap. Store.CommitDecision returns it, having written nothing, when an
// OfflineCharge does not fit; the gateway then records an offline_limit
// decline.
type OfflineLimitError struct {
	// Cap names the cap: CapPerTransaction, CapPerAccount or
	// CapStoreExposure.
	Cap string
	// Limit is the cap's value.
	Limit int64
	// Total is what the cap already counted before this sale: the
	// account's offline total or the store's exposure (0 for the
	// per-transaction cap).
	Total int64
	// Amount is the sale's amount.
	Amount int64
}

// Error describes the cap that would be exceeded.
func (e *OfflineLimitError) Error() string {
	if e.Cap == CapPerTransaction {
		return fmt.Sprintf("offline %s is %d; the sale is %d", e.Cap, e.Limit, e.Amount)
	}
	return fmt.Sprintf("offline %s is %d; %d is outstanding and the sale is %d", e.Cap, e.Limit, e.Total, e.Amount)
}

// Rule returns the decline's rule: "offline." and the cap's name.
func (e *OfflineLimitError) Rule() string { return "offline." + e.Cap }

// OfflineCharge is an offline approval's claim on the store's offline caps.
// It travels in the DecisionCommit, and the store checks it against the
// account's offline total and the store's exposure inside the commit's own
// transaction, so that concurrent lanes can never approve past a cap between
// a check and a write.
type OfflineCharge struct {
	// Account is the token's account; Amount the sale. They are the
	// settlement's.
	Account string
	Amount  int64
	// Caps are the caps in force when the decision was made.
	Caps OfflineCaps
}

// OfflinePolicy says what may be approved offline: the caps in force and
// which goods may be sold offline. FixedOffline carries the store's own caps
// from storegated's configuration; Gateway.offlinePolicy combines it with
// HQ's signed policy in force. Implementations are safe for concurrent use.
type OfflinePolicy interface {
	// OfflineCaps returns the caps in force now.
	OfflineCaps() OfflineCaps
	// AllowOffline reports whether policy allows every line of the basket
	// to be approved offline. When it does not, rule names the policy rule
	// that forbids it (or the store mode, when that forbids offline
	// approval altogether), which becomes the offline_not_allowed decline's
	// rule. It cannot fail: a policy that cannot tell must forbid.
	AllowOffline(lines []Line) (rule string, ok bool)
}

// FixedOffline is an OfflinePolicy of fixed caps and no rules for restricted
// goods. Without HQ's policy no goods are restricted, so it allows offline
// for every line; the caps still bound every offline sale.
type FixedOffline struct {
	Caps OfflineCaps
}

var _ OfflinePolicy = FixedOffline{}

// OfflineCaps returns the fixed caps.
func (f FixedOffline) OfflineCaps() OfflineCaps { return f.Caps }

// AllowOffline allows every line: no rule restricts any goods.
func (FixedOffline) AllowOffline([]Line) (string, bool) { return "", true }

// offlinePolicy returns what governs offline approval now: HQ's signed
// policy in force together with the store's configured caps (g.Offline).
// Each cap is the lower of the two where both set one, and whichever is set
// where only one does; a cap neither sets stays zero, and then nothing is
// approved offline, since every offline sale must be bounded by all three.
// HQ's store mode and rules for restricted goods decide which baskets may be
// approved offline at all; the configured policy may forbid more.
func (g *Gateway) offlinePolicy() OfflinePolicy {
	local := g.Offline
	if local == nil {
		local = FixedOffline{}
	}
	return combinedOffline{local: local, hq: g.Policy()}
}

// combinedOffline is the store's configured offline policy under HQ's.
type combinedOffline struct {
	local OfflinePolicy
	hq    *PolicySet
}

func (c combinedOffline) OfflineCaps() OfflineCaps {
	l, h := c.local.OfflineCaps(), c.hq.Offline()
	return OfflineCaps{
		MaxAmountPerTransaction: lowerNonZero(l.MaxAmountPerTransaction, h.MaxAmountPerTransaction),
		MaxAmountPerAccount:     lowerNonZero(l.MaxAmountPerAccount, h.MaxAmountPerAccount),
		MaxStoreExposure:        lowerNonZero(l.MaxStoreExposure, h.MaxStoreExposure),
	}
}

func (c combinedOffline) AllowOffline(lines []Line) (string, bool) {
	if ok, rule := c.hq.OfflineAllowed(lines); !ok {
		return rule, false
	}
	return c.local.AllowOffline(lines)
}

// Errors of askCentral that say why central gave no answer.
var (
	// errBreakerOpen: the circuit breaker holds calls to central back.
	errBreakerOpen = errors.New("the central service failed repeatedly and is not being asked until its next probe")
	// errCentralDeadline: central did not answer within CentralTimeout.
	errCentralDeadline = errors.New("no answer from the central service within the deadline")
)

// whyNoCentral turns askCentral's error into words for the decision's
// message.
func (g *Gateway) whyNoCentral(err error) string {
	switch {
	case errors.Is(err, errBreakerOpen):
		return errBreakerOpen.Error()
	case errors.Is(err, errCentralDeadline):
		return fmt.Sprintf("the central service did not answer within %s", g.CentralTimeout)
	default:
		return "the central service could not be reached"
	}
}

// decideOffline is step 5 when central gave no answer: approve only a token
// that allows it (its ofl claim), only goods policy lets be sold offline, and
// only within the caps. The per-account and store-wide caps are checked
// again, against the totals, in the commit's transaction (OfflineCharge);
// here the decision checks what needs no totals.
func (g *Gateway) decideOffline(d *decision, tok *Token, why string) {
	d.Mode, d.whyOffline = ModeOffline, why
	pol := g.offlinePolicy()
	caps := pol.OfflineCaps()
	if !caps.Enabled() {
		d.decline(ReasonCentralUnavailable, "central.unavailable", why+", and this store approves nothing offline")
		return
	}
	if tok.OfflineAllowance <= 0 {
		d.decline(ReasonOfflineNotAllowed, "offline.token", why+", and the token allows no offline payment")
		return
	}
	if rule, ok := pol.AllowOffline(d.req.Lines); !ok {
		d.decline(ReasonOfflineNotAllowed, rule, why+", and policy does not allow these goods to be sold offline")
		return
	}
	if d.Amount > tok.OfflineAllowance {
		d.decline(ReasonOfflineLimit, "offline.token_allowance",
			fmt.Sprintf("%s, and the token allows at most %d offline; the sale is %d", why, tok.OfflineAllowance, d.Amount))
		return
	}
	if lim := caps.Check(d.Amount, 0, 0); lim != nil {
		d.decline(ReasonOfflineLimit, lim.Rule(), why+": "+lim.Error())
		return
	}
	d.Approved, d.Reason, d.Rule = true, ReasonNone, ""
	d.Message = why + "; approved offline within the store's offline caps, to be settled with central later"
	d.offline = &OfflineCharge{Account: d.Account, Amount: d.Amount, Caps: caps}
}
