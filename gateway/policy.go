package gateway

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	documentv1 "storegate/proto/storegate/document/v1"
)

// DocumentStorePolicy is the stored kind of the policy HQ addressed to this
// store alone; DocumentPolicy holds the chain-wide one.
const DocumentStorePolicy DocumentKind = "store_policy"

// Policy limits. A policy outside them is invalid (EINVALID).
const (
	// MaxRules bounds the rules of one policy.
	MaxRules = 256
	// MaxRuleMatchers bounds a rule's categories plus SKU prefixes.
	MaxRuleMatchers = 256
	// MaxRuleWindow is the longest window a cap may count over.
	MaxRuleWindow = 31 * 24 * time.Hour
	// MaxPolicyAmount bounds every amount cap, in minor units, so that no
	// window sum can overflow.
	MaxPolicyAmount int64 = 1 << 52
	// MaxPolicyQuantity bounds every quantity cap.
	MaxPolicyQuantity int64 = 1 << 40
)

// StoreMode is the mode HQ's policy puts a store in. The values mirror
// storegate.document.v1.StoreMode.
type StoreMode int32

// Store modes, from the most permissive to the strictest.
const (
	// StoreNormal: online decisions, and offline ones within the caps.
	StoreNormal StoreMode = 1
	// StoreOnlineOnly: nothing is approved offline.
	StoreOnlineOnly StoreMode = 2
	// StoreSuspended: every payment is declined (the emergency stop).
	StoreSuspended StoreMode = 3
)

var storeModeNames = map[StoreMode]string{
	StoreNormal:     "normal",
	StoreOnlineOnly: "online_only",
	StoreSuspended:  "suspended",
}

// String returns the mode's name as the readable policy format writes it.
func (m StoreMode) String() string {
	if s, ok := storeModeNames[m]; ok {
		return s
	}
	return fmt.Sprintf("unknown(%d)", int32(m))
}

// ParseStoreMode returns the mode named s ("normal", "online_only",
// "suspended").
func ParseStoreMode(s string) (StoreMode, bool) {
	for m, name := range storeModeNames {
		if name == s {
			return m, true
		}
	}
	return 0, false
}

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

// Policy is one of HQ's signed policies, checked.
type Policy struct {
	Version  uint64
	IssuedAt time.Time
	// StoreID is the store the policy is for; empty for every store.
	StoreID          string
	Mode             StoreMode
	MaxTokenLifetime time.Duration
	Rules            []Rule
	// Offline are the policy's offline caps; a zero cap means this policy
	// sets none (see Gateway.offlinePolicy for how they combine).
	Offline OfflineCaps
	// SignedBy is the id of the key that signed the document.
	SignedBy []byte
}

// Scope names the policy's scope for logs: "chain" or "store <id>".
func (p *Policy) Scope() string {
	if p.StoreID == "" {
		return "chain"
	}
	return "store " + p.StoreID
}

// problems collects the faults of a document, each naming its field.
type problems struct {
	doc  string
	list []string
}

func (p *problems) add(field, format string, args ...any) {
	p.list = append(p.list, p.doc+": "+field+": "+fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: strings.Join(p.list, "; ")}
}

// ValidatePolicy checks a policy message. The error is EINVALID and lists
// every fault, each naming its field as the readable policy format does, for
// example "policy: rules[2].max_amount_per_account: negative".
func ValidatePolicy(m *documentv1.Policy) error {
	_, err := policyFromProto(m)
	return err
}

// PolicyFromProto checks a policy message and returns it as a Policy.
func PolicyFromProto(m *documentv1.Policy) (*Policy, error) { return policyFromProto(m) }

func policyFromProto(m *documentv1.Policy) (*Policy, error) {
	pr := &problems{doc: "policy"}
	if m == nil {
		pr.add("document", "empty")
		return nil, pr.err()
	}
	p := &Policy{
		Version:  m.GetVersion(),
		IssuedAt: time.Unix(m.GetIssuedAt(), 0),
		StoreID:  m.GetStoreId(),
		Mode:     StoreMode(m.GetMode()),
		Offline: OfflineCaps{
			MaxAmountPerTransaction: m.GetOffline().GetMaxAmountPerTransaction(),
			MaxAmountPerAccount:     m.GetOffline().GetMaxAmountPerAccount(),
			MaxStoreExposure:        m.GetOffline().GetMaxStoreExposure(),
		},
	}
	if p.Version == 0 {
		pr.add("version", "must be at least 1")
	}
	if m.GetIssuedAt() < 0 {
		pr.add("issued_at", "negative")
	}
	if p.StoreID != "" && !ValidID(p.StoreID) {
		pr.add("store_id", "want empty (every store) or 1-%d characters of [A-Za-z0-9._:-]", MaxIDLength)
	}
	if _, ok := storeModeNames[p.Mode]; !ok {
		if m.GetMode() == documentv1.StoreMode_STORE_MODE_UNSPECIFIED {
			pr.add("mode", "required: normal, online_only or suspended")
		} else {
			pr.add("mode", "unknown value %d", int32(m.GetMode()))
		}
	}
	switch life := m.GetMaxTokenLifetimeSeconds(); {
	case life < 0:
		pr.add("max_token_lifetime", "negative")
	case life > int64(DefaultMaxTokenLifetime/time.Second):
		pr.add("max_token_lifetime", "%ds is over the %s every token is held to", life, DefaultMaxTokenLifetime)
	default:
		p.MaxTokenLifetime = time.Duration(life) * time.Second
	}
	for _, c := range []struct {
		field string
		v     int64
	}{
		{"offline.max_amount_per_transaction", p.Offline.MaxAmountPerTransaction},
		{"offline.max_amount_per_account", p.Offline.MaxAmountPerAccount},
		{"offline.max_store_exposure", p.Offline.MaxStoreExposure},
	} {
		checkCap(pr, c.field, c.v, MaxPolicyAmount)
	}
	if n := len(m.GetRules()); n > MaxRules {
		pr.add("rules", "%d rules, at most %d", n, MaxRules)
		return nil, pr.err()
	}
	seen := make(map[string]int, len(m.GetRules()))
	for i, mr := range m.GetRules() {
		r := ruleFromProto(pr, fmt.Sprintf("rules[%d]", i), mr)
		if j, dup := seen[r.ID]; dup && r.ID != "" {
			pr.add(fmt.Sprintf("rules[%d].id", i), "%q is also the id of rules[%d]", r.ID, j)
		}
		seen[r.ID] = i
		p.Rules = append(p.Rules, r)
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	return p, nil
}

func checkCap(pr *problems, field string, v, limit int64) {
	switch {
	case v < 0:
		pr.add(field, "negative")
	case v > limit:
		pr.add(field, "%d is over %d", v, limit)
	}
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

// Proto returns the policy as its signed message.
func (p *Policy) Proto() *documentv1.Policy {
	m := &documentv1.Policy{
		Version:                 p.Version,
		IssuedAt:                p.IssuedAt.Unix(),
		StoreId:                 p.StoreID,
		Mode:                    documentv1.StoreMode(p.Mode),
		MaxTokenLifetimeSeconds: int64(p.MaxTokenLifetime / time.Second),
	}
	if p.Offline != (OfflineCaps{}) {
		m.Offline = &documentv1.OfflineCaps{
			MaxAmountPerTransaction: p.Offline.MaxAmountPerTransaction,
			MaxAmountPerAccount:     p.Offline.MaxAmountPerAccount,
			MaxStoreExposure:        p.Offline.MaxStoreExposure,
		}
	}
	for _, r := range p.Rules {
		m.Rules = append(m.Rules, &documentv1.Rule{
			Id:                        r.ID,
			Categories:                append([]string(nil), r.Categories...),
			SkuPrefixes:               append([]string(nil), r.SKUPrefixes...),
			MaxQuantityPerTransaction: r.MaxQuantityPerTransaction,
			MaxAmountPerTransaction:   r.MaxAmountPerTransaction,
			MaxQuantityPerAccount:     r.MaxQuantityPerAccount,
			MaxAmountPerAccount:       r.MaxAmountPerAccount,
			AccountWindowSeconds:      int64(r.AccountWindow / time.Second),
			MaxAmountPerStore:         r.MaxAmountPerStore,
			StoreWindowSeconds:        int64(r.StoreWindow / time.Second),
			MinAssurance:              int32(r.MinAssurance),
			OfflineAllowed:            r.OfflineAllowed,
		})
	}
	return m
}

// SignPolicy checks a policy and signs it with priv: the root key, or a
// policy key the keyset names.
func SignPolicy(priv ed25519.PrivateKey, m *documentv1.Policy) ([]byte, error) {
	if err := ValidatePolicy(m); err != nil {
		return nil, err
	}
	payload, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	return SignDocument(priv, ContentTypePolicy, payload)
}

// OpenPolicy verifies a signed policy and checks it. The signer must be the
// root key or a policy key of ring that is not retired; a policy signed by a
// retired key is refused.
func OpenPolicy(raw []byte, root ed25519.PublicKey, ring *Keyring) (*Policy, error) {
	return openPolicy(raw, root, ring, false)
}

func openPolicy(raw []byte, root ed25519.PublicKey, ring *Keyring, allowRetired bool) (*Policy, error) {
	payload, kid, err := openSigned(raw, ContentTypePolicy, "policy", root, ring, allowRetired)
	if err != nil {
		return nil, err
	}
	var m documentv1.Policy
	if err := proto.Unmarshal(payload, &m); err != nil {
		return nil, &Error{Code: EINVALID, Message: "policy payload", Err: err}
	}
	p, err := policyFromProto(&m)
	if err != nil {
		return nil, err
	}
	p.SignedBy = kid
	return p, nil
}

// openSigned checks a policy or freeze-list document: signed by the root
// key, or by a policy key of ring. A retired policy key is refused unless
// allowRetired, which only documents already held use: they were accepted
// while the key was current.
func openSigned(raw []byte, contentType, what string, root ed25519.PublicKey, ring *Keyring, allowRetired bool) ([]byte, []byte, error) {
	rootID := KeyID(root)
	var retired []byte
	payload, kid, err := OpenDocument(raw, contentType, func(kid []byte) (ed25519.PublicKey, bool) {
		if string(kid) == string(rootID) {
			return root, true
		}
		key, ok := ring.Lookup(kid)
		if !ok || key.Use != KeyUsePolicy {
			return nil, false
		}
		if key.Retired && !allowRetired {
			retired = kid
			return nil, false
		}
		return key.Public, true
	})
	if err != nil {
		if retired != nil {
			return nil, nil, Errorf(EINVALID, "%s: signed by key %s, which the keyset retired", what, kidString(retired))
		}
		return nil, nil, err
	}
	return payload, kid, nil
}

// PolicySet is the policy in force at a store: HQ's chain-wide policy and
// the store's own, either of which may be missing. It is immutable; the
// gateway swaps the whole set when a policy is applied.
//
// The two stack, so that a store's policy can only tighten the chain's: the
// stricter mode wins (suspended over online-only over normal), every rule of
// both applies, and for the token lifetime and each offline cap the lower
// non-zero value wins.
type PolicySet struct {
	Chain *Policy
	Store *Policy
}

func (s *PolicySet) policies() []*Policy {
	if s == nil {
		return nil
	}
	var out []*Policy
	for _, p := range []*Policy{s.Chain, s.Store} {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// Mode returns the mode in force; StoreNormal when no policy is held.
func (s *PolicySet) Mode() StoreMode {
	m := StoreNormal
	for _, p := range s.policies() {
		m = max(m, p.Mode)
	}
	return m
}

// modeSource names the policy that set the mode in force, for messages.
func (s *PolicySet) modeSource() *Policy {
	var src *Policy
	for _, p := range s.policies() {
		if src == nil || p.Mode > src.Mode {
			src = p
		}
	}
	return src
}

// MaxTokenLifetime returns the token lifetime cap the policies set; zero
// when none does.
func (s *PolicySet) MaxTokenLifetime() time.Duration {
	var d time.Duration
	for _, p := range s.policies() {
		d = lowerNonZero(d, p.MaxTokenLifetime)
	}
	return d
}

// Offline returns the offline caps in force: for each, the lower non-zero
// value of the two policies.
func (s *PolicySet) Offline() OfflineCaps {
	var c OfflineCaps
	for _, p := range s.policies() {
		c.MaxAmountPerTransaction = lowerNonZero(c.MaxAmountPerTransaction, p.Offline.MaxAmountPerTransaction)
		c.MaxAmountPerAccount = lowerNonZero(c.MaxAmountPerAccount, p.Offline.MaxAmountPerAccount)
		c.MaxStoreExposure = lowerNonZero(c.MaxStoreExposure, p.Offline.MaxStoreExposure)
	}
	return c
}

// OfflineAllowed reports whether the basket may be approved offline under
// the policies: not in online-only or suspended mode, and only when every
// rule the basket falls under allows it. When it may not, it returns the
// rule (or "policy.online_only") that forbids it.
func (s *PolicySet) OfflineAllowed(lines []Line) (bool, string) {
	if m := s.Mode(); m != StoreNormal {
		return false, "policy." + m.String()
	}
	for _, u := range s.uses(lines) {
		if !u.rule.OfflineAllowed {
			return false, u.rule.ID
		}
	}
	return true, ""
}

// longestWindow returns the longest window any rule counts over.
func (s *PolicySet) longestWindow() time.Duration {
	var w time.Duration
	for _, p := range s.policies() {
		for _, r := range p.Rules {
			w = max(w, r.AccountWindow, r.StoreWindow)
		}
	}
	return w
}

func lowerNonZero[T int64 | time.Duration](a, b T) T {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	default:
		return min(a, b)
	}
}

// Policy returns the policies in force (never nil; its fields are nil
// before HQ sent any).
func (g *Gateway) Policy() *PolicySet {
	if s := g.policy.Load(); s != nil {
		return s
	}
	return &PolicySet{}
}

// TokenLifetimeCap returns the token lifetime cap in force: the
// verifier's own (DefaultMaxTokenLifetime unless configured), lowered by
// the policy's.
func (g *Gateway) TokenLifetimeCap() time.Duration {
	v := g.verifier()
	if v.MaxLifetime <= 0 {
		return DefaultMaxTokenLifetime
	}
	return v.MaxLifetime
}

// verifier returns the token verifier with the policy's lifetime cap
// applied: a policy may lower the cap, never raise it.
func (g *Gateway) verifier() TokenVerifier {
	v := g.Verifier
	limit := v.MaxLifetime
	if limit <= 0 {
		limit = DefaultMaxTokenLifetime
	}
	if c := g.Policy().MaxTokenLifetime(); c > 0 && c < limit {
		v.MaxLifetime = c
	}
	return v
}

// loadPolicy puts the policies the store holds in force, at Open.
func (g *Gateway) loadPolicy(ctx context.Context) error {
	set := &PolicySet{}
	for _, kind := range []DocumentKind{DocumentPolicy, DocumentStorePolicy} {
		raw, _, err := g.Store.LoadDocument(ctx, kind)
		if err != nil {
			return fmt.Errorf("load %s: %w", kind, err)
		}
		if raw == nil {
			continue
		}
		p, err := openPolicy(raw, g.RootKey, g.keys.Load(), true)
		if err != nil {
			return fmt.Errorf("stored %s: %w", kind, err)
		}
		if kind == DocumentPolicy {
			set.Chain = p
		} else {
			set.Store = p
		}
	}
	g.policy.Store(set)
	return nil
}

// ApplyPolicy verifies a signed policy (signed by the root key or a current
// policy key of the keyset) and, when it is newer than the one held for its
// scope, stores it durably and puts it in force at once. A policy for
// another store is EINVALID; an older version than the one held is ESTALE.
// It returns the version now held for the policy's scope and whether it
// changed.
func (g *Gateway) ApplyPolicy(ctx context.Context, raw []byte) (uint64, bool, error) {
	g.docs.Lock()
	defer g.docs.Unlock()
	p, err := OpenPolicy(raw, g.RootKey, g.keys.Load())
	if err != nil {
		return 0, false, err
	}
	if p.StoreID != "" && p.StoreID != g.StoreID {
		return 0, false, Errorf(EINVALID, "policy version %d is for store %s; this is store %s", p.Version, p.StoreID, g.StoreID)
	}
	cur := g.Policy()
	kind, held := DocumentPolicy, cur.Chain
	if p.StoreID != "" {
		kind, held = DocumentStorePolicy, cur.Store
	}
	if held != nil && held.Version > p.Version {
		return held.Version, false, Errorf(ESTALE, "%s policy version %d is older than the held version %d", p.Scope(), p.Version, held.Version)
	}
	changed, err := g.Store.SaveDocument(ctx, kind, p.Version, raw)
	if err != nil {
		return 0, false, err
	}
	if !changed {
		return p.Version, false, nil
	}
	next := *cur
	if kind == DocumentPolicy {
		next.Chain = p
	} else {
		next.Store = p
	}
	g.policy.Store(&next)
	g.Logger.Info("policy applied", "scope", p.Scope(), "version", p.Version, "mode", p.Mode.String(),
		"rules", len(p.Rules), "mode_in_force", next.Mode().String(), "signed_by", kidString(p.SignedBy))
	return p.Version, true, nil
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
