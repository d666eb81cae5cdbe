package gateway

import (
	"context"
	"fmt"
	"strings"
	"time"

	documentv1 "storegate/proto/storegate/document/v1"
)

// Rule limits restricted goods. A basket line falls under a rule when its
// category is one of Categories or its SKU starts with one of SKUPrefixes.
// Zero means "no limit" for every cap.
type Rule struct {
	ID          string
	Categories  []string
	SKUPrefixes []string
	// Per transaction: the lines under the rule, summed.
	MaxQuantityPerTransaction int64
	MaxAmountPerTransaction   int64
	// Per account at this store, over AccountWindow.
	MaxQuantityPerAccount int64
	MaxAmountPerAccount   int64
	AccountWindow         time.Duration
	// For the whole store, over StoreWindow.
	MaxAmountPerStore int64
	StoreWindow       time.Duration
	// MinAssurance is the lowest token "aal" claim accepted; zero accepts
	// any token.
	MinAssurance int
	// OfflineAllowed lets the store approve these goods while central is
	// unreachable (within the offline caps).
	OfflineAllowed bool
}

// Matches reports whether a basket line falls under the rule.
func (r *Rule) Matches(l Line) bool {
	for _, c := range r.Categories {
		if l.Category == c {
			return true
		}
	}
	for _, p := range r.SKUPrefixes {
		if strings.HasPrefix(l.SKU, p) {
			return true
		}
	}
	return false
}

// hasAccountCaps reports whether the rule counts per account.
func (r *Rule) hasAccountCaps() bool {
	return r.MaxQuantityPerAccount > 0 || r.MaxAmountPerAccount > 0
}

func checkWindow(pr *problems, field string, seconds int64) time.Duration {
	switch {
	case seconds < 0:
		pr.add(field, "negative")
	case seconds > int64(MaxRuleWindow/time.Second):
		pr.add(field, "%ds is over the longest window, %s", seconds, fmtWindow(MaxRuleWindow))
	case seconds > 0 && time.Duration(seconds)*time.Second < CounterBucket:
		pr.add(field, "%ds is shorter than a counter bucket (%s)", seconds, CounterBucket)
	default:
		return time.Duration(seconds) * time.Second
	}
	return 0
}

func ruleFromProto(pr *problems, at string, m *documentv1.Rule) Rule {
	r := Rule{
		ID:                        m.GetId(),
		Categories:                append([]string(nil), m.GetCategories()...),
		SKUPrefixes:               append([]string(nil), m.GetSkuPrefixes()...),
		MaxQuantityPerTransaction: m.GetMaxQuantityPerTransaction(),
		MaxAmountPerTransaction:   m.GetMaxAmountPerTransaction(),
		MaxQuantityPerAccount:     m.GetMaxQuantityPerAccount(),
		MaxAmountPerAccount:       m.GetMaxAmountPerAccount(),
		MaxAmountPerStore:         m.GetMaxAmountPerStore(),
		MinAssurance:              int(m.GetMinAssurance()),
		OfflineAllowed:            m.GetOfflineAllowed(),
	}
	if !idPattern.MatchString(r.ID) {
		pr.add(at+".id", "want 1-%d characters of [A-Za-z0-9._:-]", MaxIDLength)
	}
	if len(r.Categories)+len(r.SKUPrefixes) == 0 {
		pr.add(at, "matches nothing: give categories or sku_prefixes")
	}
	if n := len(r.Categories) + len(r.SKUPrefixes); n > MaxRuleMatchers {
		pr.add(at, "%d categories and sku_prefixes, at most %d", n, MaxRuleMatchers)
	}
	for j, c := range r.Categories {
		if c == "" || len(c) > MaxCategoryLen {
			pr.add(fmt.Sprintf("%s.categories[%d]", at, j), "want 1 to %d characters", MaxCategoryLen)
		}
	}
	for j, s := range r.SKUPrefixes {
		if s == "" || len(s) > MaxSKULength {
			pr.add(fmt.Sprintf("%s.sku_prefixes[%d]", at, j), "want 1 to %d characters", MaxSKULength)
		}
	}
	checkCap(pr, at+".max_quantity_per_transaction", r.MaxQuantityPerTransaction, MaxPolicyQuantity)
	checkCap(pr, at+".max_amount_per_transaction", r.MaxAmountPerTransaction, MaxPolicyAmount)
	checkCap(pr, at+".max_quantity_per_account", r.MaxQuantityPerAccount, MaxPolicyQuantity)
	checkCap(pr, at+".max_amount_per_account", r.MaxAmountPerAccount, MaxPolicyAmount)
	checkCap(pr, at+".max_amount_per_store", r.MaxAmountPerStore, MaxPolicyAmount)
	r.AccountWindow = checkWindow(pr, at+".account_window", m.GetAccountWindowSeconds())
	r.StoreWindow = checkWindow(pr, at+".store_window", m.GetStoreWindowSeconds())
	accountCaps := r.MaxQuantityPerAccount != 0 || r.MaxAmountPerAccount != 0
	switch {
	case accountCaps && m.GetAccountWindowSeconds() == 0:
		pr.add(at+".account_window", "required with max_quantity_per_account or max_amount_per_account")
	case !accountCaps && m.GetAccountWindowSeconds() != 0:
		pr.add(at+".account_window", "set without a per-account cap to count against")
	}
	switch {
	case r.MaxAmountPerStore != 0 && m.GetStoreWindowSeconds() == 0:
		pr.add(at+".store_window", "required with max_amount_per_store")
	case r.MaxAmountPerStore == 0 && m.GetStoreWindowSeconds() != 0:
		pr.add(at+".store_window", "set without max_amount_per_store to count against")
	}
	if r.MinAssurance < 0 || r.MinAssurance > AssuranceDeviceBound {
		pr.add(at+".min_assurance", "%d is not 0, %d or %d", r.MinAssurance, AssurancePassword, AssuranceDeviceBound)
	}
	if r.OfflineAllowed && r.MinAssurance == 0 && r.MaxQuantityPerTransaction == 0 && r.MaxAmountPerTransaction == 0 &&
		!r.hasAccountCaps() && r.MaxAmountPerStore == 0 {
		pr.add(at, "sets no limit: give a cap, min_assurance, or offline_allowed: false")
	}
	return r
}

// checkPolicy runs steps 3 and 4 of the decision, before central is asked:
// the store mode, the freeze list, then the rules for restricted goods. A
// token names its account and assurance level; a numeric payment code names
// neither (account "" and code true), so a code cannot buy goods whose rule
// needs an assurance level or counts per account: the store could not
// count them before central answers. Window caps are reserved in memory
// until the decision is committed, so that concurrent lanes never both pass
// a cap. It returns false when d has been declined.
func (g *Gateway) checkPolicy(ctx context.Context, d *decision, account string, assurance int, code bool) (bool, error) {
	pol := g.Policy()
	if pol.Mode() == StoreSuspended {
		src := pol.modeSource()
		d.decline(ReasonStoreSuspended, "policy.suspended",
			fmt.Sprintf("payments are suspended by HQ (%s policy version %d)", src.Scope(), src.Version))
		return false, nil
	}
	if account != "" && g.declineFrozen(d, account) {
		return false, nil
	}
	uses := pol.uses(d.req.Lines)
	for _, u := range uses {
		if r := u.rule; r.MinAssurance > 0 && (code || assurance < r.MinAssurance) {
			have := fmt.Sprintf("this token has %d", assurance)
			if code {
				have = "a numeric payment code carries none; pay with the app's token"
			}
			d.decline(ReasonAssuranceRequired, r.ID, fmt.Sprintf("rule %s: needs assurance level %d; %s", r.ID, r.MinAssurance, have))
			return false, nil
		}
		if code && u.rule.hasAccountCaps() {
			d.decline(ReasonAssuranceRequired, u.rule.ID, fmt.Sprintf("rule %s: limited per account; a numeric payment code names no account before central is asked; pay with the app's token", u.rule.ID))
			return false, nil
		}
		if msg, over := u.overTransaction(d.Currency); over {
			d.decline(ReasonLimitExceeded, u.rule.ID, msg)
			return false, nil
		}
	}
	charges := chargesFor(uses, account, d.Currency, d.now)
	if len(charges) == 0 {
		return true, nil
	}
	release, lerr, err := g.limits.reserve(ctx, g.Store, d.now, charges)
	if err != nil {
		return false, fmt.Errorf("check limits: %w", err)
	}
	if lerr != nil {
		d.decline(ReasonLimitExceeded, lerr.Charge.Rule, lerr.Message())
		return false, nil
	}
	d.charges, d.release = charges, release
	return true, nil
}
