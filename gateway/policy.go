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
// another store is EINVALID, and so is a version more than MaxVersionStep
// past the one held; an older version than the one held is ESTALE.
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
	if held != nil {
		if held.Version > p.Version {
			return held.Version, false, Errorf(ESTALE, "%s policy version %d is older than the held version %d", p.Scope(), p.Version, held.Version)
		}
		if err := CheckVersionStep(p.Scope()+" policy", held.Version, p.Version); err != nil {
			return held.Version, false, err
		}
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
