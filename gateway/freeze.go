package gateway

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"maps"
	"time"

	"google.golang.org/protobuf/proto"

	documentv1 "storegate/proto/storegate/document/v1"
)

// MaxFreezeReason bounds the reason given for one freeze entry.
const MaxFreezeReason = 256

// FreezeEntry freezes or unfreezes one account.
type FreezeEntry struct {
	Account string
	Frozen  bool
	Reason  string
}

// FreezeList is one of HQ's signed freeze lists, checked: a delta on top of
// the version before it, or a snapshot that replaces every earlier entry.
type FreezeList struct {
	Version  uint64
	IssuedAt time.Time
	Snapshot bool
	Entries  []FreezeEntry
	// SignedBy is the id of the key that signed the document.
	SignedBy []byte
}

// ValidateFreezeList checks a freeze-list message. The error is EINVALID and
// lists every fault, each naming its field.
func ValidateFreezeList(m *documentv1.FreezeList) error {
	_, err := freezeListFromProto(m)
	return err
}

func freezeListFromProto(m *documentv1.FreezeList) (*FreezeList, error) {
	pr := &problems{doc: "freeze list"}
	if m == nil {
		pr.add("document", "empty")
		return nil, pr.err()
	}
	l := &FreezeList{Version: m.GetVersion(), IssuedAt: time.Unix(m.GetIssuedAt(), 0), Snapshot: m.GetSnapshot()}
	if l.Version == 0 {
		pr.add("version", "must be at least 1")
	}
	if m.GetIssuedAt() < 0 {
		pr.add("issued_at", "negative")
	}
	if !l.Snapshot && len(m.GetEntries()) == 0 {
		pr.add("entries", "a delta must freeze or unfreeze at least one account")
	}
	seen := make(map[string]int, len(m.GetEntries()))
	for i, e := range m.GetEntries() {
		at := fmt.Sprintf("entries[%d]", i)
		if !ValidID(e.GetAccount()) {
			pr.add(at+".account", "want 1-%d characters of [A-Za-z0-9._:-]", MaxIDLength)
		} else if j, dup := seen[e.GetAccount()]; dup {
			pr.add(at+".account", "%s is also entries[%d]", e.GetAccount(), j)
		}
		seen[e.GetAccount()] = i
		if len(e.GetReason()) > MaxFreezeReason {
			pr.add(at+".reason", "longer than %d characters", MaxFreezeReason)
		}
		if l.Snapshot && !e.GetFrozen() {
			pr.add(at+".frozen", "a snapshot lists frozen accounts only")
		}
		l.Entries = append(l.Entries, FreezeEntry{Account: e.GetAccount(), Frozen: e.GetFrozen(), Reason: e.GetReason()})
	}
	if err := pr.err(); err != nil {
		return nil, err
	}
	return l, nil
}

// SignFreezeList checks a freeze list and signs it with priv: the root key,
// or a policy key the keyset names.
func SignFreezeList(priv ed25519.PrivateKey, m *documentv1.FreezeList) ([]byte, error) {
	if err := ValidateFreezeList(m); err != nil {
		return nil, err
	}
	payload, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode freeze list: %w", err)
	}
	return SignDocument(priv, ContentTypeFreeze, payload)
}

// OpenFreezeList verifies a signed freeze list and checks it. The signer
// must be the root key or a policy key of ring that is not retired.
func OpenFreezeList(raw []byte, root ed25519.PublicKey, ring *Keyring) (*FreezeList, error) {
	payload, kid, err := openSigned(raw, ContentTypeFreeze, "freeze list", root, ring, false)
	if err != nil {
		return nil, err
	}
	var m documentv1.FreezeList
	if err := proto.Unmarshal(payload, &m); err != nil {
		return nil, &Error{Code: EINVALID, Message: "freeze list payload", Err: err}
	}
	l, err := freezeListFromProto(&m)
	if err != nil {
		return nil, err
	}
	l.SignedBy = kid
	return l, nil
}

// FreezeFollows says whether list may be applied on top of the held
// version (0: none held): a delta must carry exactly the next version, so
// that none is missed; a snapshot replaces everything and may skip
// versions, by at most MaxVersionStep once a version is held. It returns
// false and no error when list is the held version, ESTALE when it is
// older, ECONFLICT for a delta after a gap and EINVALID for a snapshot too
// far ahead.
func FreezeFollows(held uint64, list *FreezeList) (bool, error) {
	switch {
	case list.Version == held:
		return false, nil
	case list.Version < held:
		return false, Errorf(ESTALE, "freeze list version %d is older than the held version %d", list.Version, held)
	case !list.Snapshot && list.Version != held+1:
		return false, Errorf(ECONFLICT, "freeze delta version %d does not follow the held version %d: the deltas between, or a snapshot, are needed first", list.Version, held)
	case held > 0:
		if err := CheckVersionStep("freeze snapshot", held, list.Version); err != nil {
			return false, err
		}
	}
	return true, nil
}

// FrozenAccount is an account on the freeze list.
type FrozenAccount struct {
	Reason string `json:"reason,omitempty"`
	// Version is the freeze list version that froze it.
	Version uint64 `json:"version"`
}

// FreezeSet is the freeze list in force. It is immutable, so the decision
// path reads it without locks; applying a list makes a new set.
type FreezeSet struct {
	Version  uint64
	accounts map[string]FrozenAccount
}

// NewFreezeSet returns a freeze set at version holding accounts, which it
// takes over.
func NewFreezeSet(version uint64, accounts map[string]FrozenAccount) *FreezeSet {
	if accounts == nil {
		accounts = map[string]FrozenAccount{}
	}
	return &FreezeSet{Version: version, accounts: accounts}
}

// Lookup returns the freeze entry of an account, if it is frozen.
func (s *FreezeSet) Lookup(account string) (FrozenAccount, bool) {
	if s == nil {
		return FrozenAccount{}, false
	}
	fa, ok := s.accounts[account]
	return fa, ok
}

// Len returns the number of frozen accounts.
func (s *FreezeSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.accounts)
}

// Accounts returns a copy of the frozen accounts.
func (s *FreezeSet) Accounts() map[string]FrozenAccount {
	if s == nil {
		return map[string]FrozenAccount{}
	}
	return maps.Clone(s.accounts)
}

// Each walks the list's entries in order, calling freeze for an account it
// freezes (with the record to keep) and unfreeze for one it lifts. It is
// how every keeper of a freeze list applies one, in memory or on disk: a
// snapshot replaces the whole list, so the keeper clears its list first
// (list.Snapshot), then walks the entries; a delta is walked on top.
func (l *FreezeList) Each(freeze func(account string, fa FrozenAccount) error, unfreeze func(account string) error) error {
	for _, e := range l.Entries {
		var err error
		if e.Frozen {
			err = freeze(e.Account, FrozenAccount{Reason: e.Reason, Version: l.Version})
		} else {
			err = unfreeze(e.Account)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Apply returns the set with list applied: a snapshot replaces it, a delta
// freezes and unfreezes on top of it. The caller checks FreezeFollows
// first.
func (s *FreezeSet) Apply(list *FreezeList) *FreezeSet {
	var next map[string]FrozenAccount
	if list.Snapshot || s == nil {
		next = make(map[string]FrozenAccount, len(list.Entries))
	} else {
		next = maps.Clone(s.accounts)
	}
	_ = list.Each(func(account string, fa FrozenAccount) error {
		next[account] = fa
		return nil
	}, func(account string) error {
		delete(next, account)
		return nil
	})
	return &FreezeSet{Version: list.Version, accounts: next}
}

// FreezeStore keeps the freeze list durably. It is part of Store.
type FreezeStore interface {
	// LoadFreezeList returns the freeze list the store holds; version 0 and
	// no accounts when it holds none.
	LoadFreezeList(ctx context.Context) (*FreezeSet, error)
	// ApplyFreezeList durably applies a checked freeze list and stores its
	// signed document, in one transaction. It checks FreezeFollows against
	// the version the store holds and returns its error (ESTALE, ECONFLICT)
	// having written nothing; false and no error when it holds the version.
	ApplyFreezeList(ctx context.Context, list *FreezeList, raw []byte) (bool, error)
}

// FreezeList returns the freeze list in force (never nil).
func (g *Gateway) FreezeList() *FreezeSet {
	if s := g.freeze.Load(); s != nil {
		return s
	}
	return NewFreezeSet(0, nil)
}

// loadFreeze puts the freeze list the store holds in force, at Open.
func (g *Gateway) loadFreeze(ctx context.Context) error {
	set, err := g.Store.LoadFreezeList(ctx)
	if err != nil {
		return fmt.Errorf("load freeze list: %w", err)
	}
	g.freeze.Store(set)
	return nil
}

// ApplyFreezeList verifies a signed freeze list (signed by the root key or a
// current policy key of the keyset) and, when it follows the version held
// (see FreezeFollows), applies it durably and puts it in force at once: the
// next token of a newly frozen account is declined. It returns the version
// now held and whether it changed; errors are EINVALID, ESTALE or
// ECONFLICT as FreezeFollows says.
func (g *Gateway) ApplyFreezeList(ctx context.Context, raw []byte) (uint64, bool, error) {
	g.docs.Lock()
	defer g.docs.Unlock()
	list, err := OpenFreezeList(raw, g.RootKey, g.keys.Load())
	if err != nil {
		return 0, false, err
	}
	cur := g.FreezeList()
	if ok, err := FreezeFollows(cur.Version, list); err != nil || !ok {
		return cur.Version, false, err
	}
	changed, err := g.Store.ApplyFreezeList(ctx, list, raw)
	if err != nil {
		return 0, false, err
	}
	if !changed {
		return list.Version, false, nil
	}
	next := cur.Apply(list)
	g.freeze.Store(next)
	frozen, unfrozen := 0, 0
	for _, e := range list.Entries {
		if e.Frozen {
			frozen++
		} else {
			unfrozen++
		}
	}
	g.Logger.Info("freeze list applied", "version", list.Version, "snapshot", list.Snapshot,
		"frozen", frozen, "unfrozen", unfrozen, "accounts_frozen", next.Len(), "signed_by", kidString(list.SignedBy))
	return list.Version, true, nil
}

// declineFrozen declines d when account is on the freeze list. The freeze
// reason is HQ's and stays in the log; the lane only learns that the
// account is frozen.
func (g *Gateway) declineFrozen(d *decision, account string) bool {
	set := g.FreezeList()
	fa, frozen := set.Lookup(account)
	if !frozen {
		return false
	}
	g.Logger.Warn("frozen account declined", "lane", d.req.Lane, "txn", d.req.POSTxnID, "account", account,
		"freeze_version", fa.Version, "freeze_reason", fa.Reason, "token_fp", d.TokenFingerprint)
	d.decline(ReasonAccountFrozen, "freeze.account", fmt.Sprintf("the account is frozen by HQ (freeze list version %d)", fa.Version))
	return true
}

// checkFrozenAfterCentral declines a numeric payment code's approval when
// the account central named is frozen here: the code named no account
// before central was asked. Central refuses frozen accounts itself, so
// this fires only when the two freeze lists disagree; central's hold then
// stands until HQ releases it, which the log says loudly.
func (g *Gateway) checkFrozenAfterCentral(d *decision) {
	if !d.Approved || d.Account == "" {
		return
	}
	if _, frozen := g.FreezeList().Lookup(d.Account); !frozen {
		return
	}
	g.Logger.Error("central approved a payment code for an account this store holds frozen; declining, and central's hold stands until HQ releases it",
		"lane", d.req.Lane, "txn", d.req.POSTxnID, "authorization_id", d.AuthorizationID, "account", d.Account)
	d.Approved = false
	g.declineFrozen(d, d.Account)
}
