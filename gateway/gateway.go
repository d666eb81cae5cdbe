package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for a Gateway's exported fields.
const (
	// DefaultCentralTimeout is how long a decision waits for the central
	// service before deciding without it. A customer is standing at the lane.
	DefaultCentralTimeout = 800 * time.Millisecond
	// DefaultCurrency is the store's currency when none is configured.
	DefaultCurrency = "JPY"
)

// Gateway decides payments for one store (DESIGN.md, "The decision"). Set the
// exported fields, call Open, then Authorize and Reverse from any number of
// goroutines.
type Gateway struct {
	// StoreID names this store to the central service.
	StoreID string
	// Currency is the only currency the store takes.
	Currency string
	Store    Store
	Central  Central
	// Scans resolves scan ids; nil when the gateway has no scanners.
	Scans ScanSource
	// RootKey is HQ's root public key, which signs keysets.
	RootKey  ed25519.PublicKey
	Verifier TokenVerifier
	// CentralTimeout bounds each call to the central service.
	CentralTimeout time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
	// Committed, when set, is called after each durable commit that queued
	// a settlement, to wake the forwarder.
	Committed func()
	// Breaker decides when central is not worth asking (nil: a Breaker
	// with the defaults, on Now).
	Breaker *Breaker
	// Offline says what may be approved when central cannot answer: the
	// offline caps and which goods policy lets be sold offline. Nil
	// approves nothing offline.
	Offline OfflinePolicy

	keys    atomic.Pointer[Keyring]
	central centralHealth

	// docs serializes applying HQ's signed documents, so that what is in
	// force always matches what is on disk.
	docs   sync.Mutex
	policy atomic.Pointer[PolicySet]
	freeze atomic.Pointer[FreezeSet]
	limits reservations

	mu       sync.Mutex
	inflight map[IdempotencyKey]chan struct{}
	tokens   map[string]struct{}
}

// centralHealth remembers how the last calls to central went, for status.
type centralHealth struct {
	reachable   atomic.Bool
	lastContact atomic.Int64 // unix nanoseconds
}

func (h *centralHealth) record(ok bool, now time.Time) {
	h.reachable.Store(ok)
	if ok {
		h.lastContact.Store(now.UnixNano())
	}
}

// Open fills defaults and loads the keyset the store holds.
func (g *Gateway) Open(ctx context.Context) error {
	if g.Store == nil || g.Central == nil {
		return errors.New("gateway: Store and Central are required")
	}
	if g.StoreID == "" {
		return errors.New("gateway: StoreID is required")
	}
	if len(g.RootKey) != ed25519.PublicKeySize {
		return errors.New("gateway: RootKey is required")
	}
	if g.Currency == "" {
		g.Currency = DefaultCurrency
	}
	if g.CentralTimeout <= 0 {
		g.CentralTimeout = DefaultCentralTimeout
	}
	if g.Now == nil {
		g.Now = time.Now
	}
	if g.Logger == nil {
		g.Logger = slog.New(slog.DiscardHandler)
	}
	if g.Breaker == nil {
		g.Breaker = &Breaker{}
	}
	if g.Breaker.Now == nil {
		g.Breaker.Now = g.Now
	}
	g.inflight = make(map[IdempotencyKey]chan struct{})
	g.tokens = make(map[string]struct{})
	raw, _, err := g.Store.LoadDocument(ctx, DocumentKeyset)
	if err != nil {
		return fmt.Errorf("load keyset: %w", err)
	}
	if raw != nil {
		ring, err := OpenKeyset(raw, g.RootKey)
		if err != nil {
			return fmt.Errorf("stored keyset: %w", err)
		}
		g.keys.Store(ring)
	}
	if err := g.loadPolicy(ctx); err != nil {
		return err
	}
	return g.loadFreeze(ctx)
}

// Keyring returns the keyring in force, or nil before any keyset.
func (g *Gateway) Keyring() *Keyring { return g.keys.Load() }

// ApplyKeyset verifies a keyset signed by the root key and, when it is newer
// than the one held, stores it durably and puts it in force. An older version
// is ESTALE. It returns the version now held and whether it changed.
func (g *Gateway) ApplyKeyset(ctx context.Context, raw []byte) (uint64, bool, error) {
	ring, err := OpenKeyset(raw, g.RootKey)
	if err != nil {
		return 0, false, err
	}
	g.docs.Lock()
	defer g.docs.Unlock()
	if cur := g.keys.Load(); cur != nil && cur.Version > ring.Version {
		return cur.Version, false, Errorf(ESTALE, "keyset version %d is older than the held version %d", ring.Version, cur.Version)
	}
	changed, err := g.Store.SaveDocument(ctx, DocumentKeyset, ring.Version, raw)
	if err != nil {
		return 0, false, err
	}
	if changed {
		g.keys.Store(ring)
		g.Logger.Info("keyset applied", "version", ring.Version, "keys", ring.Len())
	}
	return ring.Version, changed, nil
}

// Authorize decides a basket (DESIGN.md steps 1 to 6). The decision is
// durable before it returns. A decline is a result, not an error; errors are
// EINVALID for a malformed request, ECONFLICT for an idempotency key reused
// with another basket, ENOTFOUND for an unknown scan id, and anything else
// for broken machinery (then nothing was decided).
func (g *Gateway) Authorize(ctx context.Context, req *AuthorizeRequest) (*AuthorizeResult, error) {
	if err := req.Validate(g.Currency); err != nil {
		return nil, err
	}
	key := req.Key()
	release, err := g.lockKey(ctx, key)
	if err != nil {
		return nil, err
	}
	defer release()

	// Step 1: the same sale seen before gets the same answer.
	digest := req.Digest()
	if prev, err := g.Store.LookupDecision(ctx, key); err != nil {
		return nil, fmt.Errorf("look up %s: %w", key, err)
	} else if prev != nil {
		if prev.Digest != digest {
			return nil, Errorf(ECONFLICT, "lane %s transaction %s was decided for another basket; use a new POS transaction id", key.Lane, key.POSTxnID)
		}
		return &AuthorizeResult{Decision: prev.Decision, Replayed: true}, nil
	}

	cred := req.Token
	if req.ScanID != "" {
		if g.Scans == nil {
			return nil, Errorf(ENOTFOUND, "scan %s: this gateway has no scanners", req.ScanID)
		}
		if cred, err = g.Scans.TakeScan(req.Lane, req.ScanID); err != nil {
			return nil, err
		}
	}
	now := g.Now()
	d := &decision{req: req, digest: digest, now: now, Decision: Decision{
		Mode:             ModeLocal,
		Amount:           req.Total,
		Currency:         req.Currency,
		TokenFingerprint: Fingerprint(cred),
		DecidedAt:        now,
	}}
	defer d.releaseLimits()

	if IsPaymentCode(cred) {
		if ok, err := g.checkPolicy(ctx, d, "", 0, true); err != nil {
			return nil, err
		} else if ok {
			g.decideCode(ctx, d, cred)
			g.checkFrozenAfterCentral(d)
		}
		return g.commit(ctx, d)
	}

	// Step 2: the token, its key, its lifetime, and that it is unspent.
	tok, err := g.verifier().Verify(cred, g.keys.Load(), now)
	if err != nil {
		r, ok := TokenReason(err)
		if !ok {
			return nil, err
		}
		d.decline(r, "token."+r.String(), err.Error())
		return g.commit(ctx, d)
	}
	d.Account = tok.Account
	if !g.claimToken(tok.TokenID) {
		// Another lane is deciding on this very token right now.
		d.decline(ReasonReplayed, "token.replayed", "token is being used at another lane")
		return g.commit(ctx, d)
	}
	defer g.releaseToken(tok.TokenID)
	if spent, err := g.Store.TokenSpent(ctx, tok.TokenID); err != nil {
		return nil, fmt.Errorf("check token: %w", err)
	} else if spent {
		d.decline(ReasonReplayed, "token.replayed", "token was already used")
		return g.commit(ctx, d)
	}
	d.tokenID, d.tokenExpires = tok.TokenID, tok.Expires

	// Steps 3 and 4: store mode, freeze list and the rules for restricted
	// goods, from HQ's signed policy, before central is asked.
	if ok, err := g.checkPolicy(ctx, d, tok.Account, tok.Assurance, false); err != nil {
		return nil, err
	} else if !ok {
		return g.commit(ctx, d)
	}

	// Step 5: ask central under a deadline, or decide offline.
	g.decideOnline(ctx, d, cred, tok)
	return g.commit(ctx, d)
}

// decision is one Authorize call on its way to the commit.
type decision struct {
	Decision
	req          *AuthorizeRequest
	digest       [32]byte
	now          time.Time
	tokenID      []byte
	tokenExpires time.Time
	// offline is the charge of an offline approval on the offline caps;
	// whyOffline says why it was decided offline.
	offline    *OfflineCharge
	whyOffline string
	// charges are the window charges an approval makes; release gives
	// back their reservation once the decision is committed.
	charges []CounterCharge
	release func()
}

func (d *decision) releaseLimits() {
	if d.release != nil {
		d.release()
	}
}

func (d *decision) decline(r Reason, rule, msg string) {
	d.Approved, d.Reason, d.Rule, d.Message = false, r, rule, msg
	d.offline = nil
}

// decideOnline asks central. When central cannot answer (unreachable, too
// slow, or held back by the breaker) the decision is made offline
// (decideOffline, in offline.go). When central refuses the request as
// malformed, the payment is declined: central answered, and an offline
// approval must never override an answer.
func (g *Gateway) decideOnline(ctx context.Context, d *decision, cred string, tok *Token) {
	if why, answered := g.askAndApply(ctx, d, cred); !answered {
		g.decideOffline(d, tok, why)
	}
}

// decideCode decides a numeric payment code: online only, never offline.
func (g *Gateway) decideCode(ctx context.Context, d *decision, code string) {
	if why, answered := g.askAndApply(ctx, d, code); !answered {
		d.Mode = ModeOffline
		d.decline(ReasonOnlineOnlyCode, "code.online_only", "a numeric payment code needs the central service: "+why)
	}
}

// askAndApply asks central and applies its answer to d. A request central
// refuses as malformed is declined: central answered, and nothing decided
// offline may override an answer. When central gave no answer, it returns
// false and why, in words for the decision's message.
func (g *Gateway) askAndApply(ctx context.Context, d *decision, cred string) (string, bool) {
	res, err := g.askCentral(ctx, d, cred)
	switch {
	case err == nil:
		g.applyCentral(d, res)
	case ErrorCode(err) == EINVALID:
		d.Mode = ModeOnline
		d.decline(ReasonCentralDeclined, "central.refused", ErrorMessage(err))
	default:
		return g.whyNoCentral(err), false
	}
	return "", true
}

func (g *Gateway) askCentral(ctx context.Context, d *decision, cred string) (*CentralResult, error) {
	done, ok := g.Breaker.Allow()
	if !ok {
		return nil, errBreakerOpen
	}
	cctx, cancel := context.WithTimeout(ctx, g.CentralTimeout)
	defer cancel()
	res, err := g.Central.Authorize(cctx, &CentralRequest{
		StoreID:    g.StoreID,
		Lane:       d.req.Lane,
		POSTxnID:   d.req.POSTxnID,
		Credential: cred,
		Amount:     d.req.Total,
		Currency:   d.req.Currency,
		Lines:      d.req.Lines,
	})
	switch {
	case err == nil || ErrorCode(err) == EINVALID:
		done(true)
		g.NoteCentral(true)
	case ctx.Err() != nil:
		// The caller gave up: that says nothing about central.
	default:
		done(false)
		g.NoteCentral(false)
		if cctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("%w: %w", errCentralDeadline, err)
		}
	}
	if err != nil {
		g.Logger.Warn("central unavailable", "lane", d.req.Lane, "txn", d.req.POSTxnID, "token_fp", d.TokenFingerprint, "err", err)
	}
	return res, err
}

func (g *Gateway) applyCentral(d *decision, res *CentralResult) {
	d.Mode = ModeOnline
	if res.Account != "" {
		d.Account = res.Account
	}
	if !res.Approved {
		r := res.Reason
		if r == ReasonNone {
			r = ReasonCentralDeclined
		}
		d.decline(r, "central."+r.String(), res.Message)
		return
	}
	d.Approved, d.Reason, d.Rule = true, ReasonNone, ""
	d.AuthorizationID = res.AuthorizationID
	d.Message = "approved by the central service"
}

// commit is step 6: the decision, spent token, settlement and audit record in
// one durable transaction, before anyone hears the answer.
func (g *Gateway) commit(ctx context.Context, d *decision) (*AuthorizeResult, error) {
	c := &DecisionCommit{
		Key:          d.req.Key(),
		TokenID:      d.tokenID,
		TokenExpires: d.tokenExpires,
		Offline:      d.offline,
	}
	if d.Approved {
		id, err := NewSettlementID()
		if err != nil {
			return nil, err
		}
		d.SettlementID = id
		c.Charges = d.charges
		c.Settlement = &Settlement{
			ID:              id,
			Kind:            SettlementCapture,
			StoreID:         g.StoreID,
			Lane:            d.req.Lane,
			POSTxnID:        d.req.POSTxnID,
			AuthorizationID: d.AuthorizationID,
			Account:         d.Account,
			TokenID:         d.tokenID,
			Amount:          d.Amount,
			Currency:        d.Currency,
			Mode:            d.Mode,
			CreatedAt:       d.now,
		}
	}
	c.Stored = StoredDecision{Decision: d.Decision, Digest: d.digest}
	c.Audit = AuditEntry{
		Time:             d.now,
		Event:            AuditAuthorize,
		StoreID:          g.StoreID,
		Lane:             d.req.Lane,
		POSTxnID:         d.req.POSTxnID,
		Account:          d.Account,
		TokenFingerprint: d.TokenFingerprint,
		Amount:           d.Amount,
		Currency:         d.Currency,
		Outcome:          d.Outcome(),
		Reason:           d.Reason,
		Rule:             d.Rule,
		Mode:             d.Mode,
		SettlementID:     d.SettlementID,
		AuthorizationID:  d.AuthorizationID,
	}
	err := g.Store.CommitDecision(ctx, c)
	if errors.Is(err, ErrTokenSpent) {
		// Spent between the check and the commit, by a decision this process
		// did not see (the claim map covers this process), or expiring no
		// later than an id the store has pruned (a clock stepped back).
		// Central refuses a second use of a token id too, so no approval can
		// stand here.
		g.Logger.Error("token refused as spent at commit", "token_fp", d.TokenFingerprint, "lane", d.req.Lane, "txn", d.req.POSTxnID)
		d.Approved, d.SettlementID = false, ""
		d.decline(ReasonReplayed, "token.replayed", "token was already used")
		d.tokenID = nil
		return g.commit(ctx, d)
	}
	if g.limitRecheckFailed(d, err) {
		d.offline = nil
		return g.commit(ctx, d)
	}
	if lim, ok := errors.AsType[*OfflineLimitError](err); ok {
		// Other lanes' offline sales filled the cap since the decision
		// began: the store checked it in the transaction and wrote
		// nothing.
		d.Approved, d.SettlementID, d.offline, d.charges = false, "", nil, nil
		d.decline(ReasonOfflineLimit, lim.Rule(), d.whyOffline+": "+lim.Error())
		return g.commit(ctx, d)
	}
	if err != nil {
		return nil, fmt.Errorf("commit decision %s: %w", c.Key, err)
	}
	g.Logger.Info("decision",
		"lane", d.req.Lane, "txn", d.req.POSTxnID, "outcome", d.Outcome(), "reason", d.Reason.String(),
		"rule", d.Rule, "mode", string(d.Mode), "amount", d.Amount, "token_fp", d.TokenFingerprint)
	if c.Settlement != nil && g.Committed != nil {
		g.Committed()
	}
	return &AuthorizeResult{Decision: d.Decision}, nil
}

// Reverse reverses an approved sale: a reversal settlement is queued for
// central in the same durable transaction that marks the sale reversed.
// Reversing twice returns the first reversal. ENOTFOUND when no sale is stored
// under the key; ECONFLICT when the sale was declined.
func (g *Gateway) Reverse(ctx context.Context, req *ReverseRequest) (*ReverseResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	key := IdempotencyKey{Lane: req.Lane, POSTxnID: req.POSTxnID}
	release, err := g.lockKey(ctx, key)
	if err != nil {
		return nil, err
	}
	defer release()
	sd, err := g.Store.LookupDecision(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", key, err)
	}
	if sd == nil {
		return nil, Errorf(ENOTFOUND, "no sale lane %s transaction %s", key.Lane, key.POSTxnID)
	}
	if !sd.Decision.Approved {
		return nil, Errorf(ECONFLICT, "sale lane %s transaction %s was declined; there is nothing to reverse", key.Lane, key.POSTxnID)
	}
	if sd.Reversal != nil {
		return &ReverseResult{Reversal: *sd.Reversal, AlreadyReversed: true}, nil
	}
	id, err := NewSettlementID()
	if err != nil {
		return nil, err
	}
	now := g.Now()
	orig := sd.Decision
	rev := Reversal{ID: id, Amount: orig.Amount, Currency: orig.Currency, Reason: req.Reason, CreatedAt: now}
	stl := &Settlement{
		ID:              id,
		Kind:            SettlementReversal,
		StoreID:         g.StoreID,
		Lane:            key.Lane,
		POSTxnID:        key.POSTxnID,
		AuthorizationID: orig.AuthorizationID,
		Account:         orig.Account,
		Amount:          orig.Amount,
		Currency:        orig.Currency,
		Mode:            orig.Mode,
		CreatedAt:       now,
		ReversesID:      orig.SettlementID,
	}
	audit := AuditEntry{
		Time:             now,
		Event:            AuditReverse,
		StoreID:          g.StoreID,
		Lane:             key.Lane,
		POSTxnID:         key.POSTxnID,
		Account:          orig.Account,
		TokenFingerprint: orig.TokenFingerprint,
		Amount:           orig.Amount,
		Currency:         orig.Currency,
		Outcome:          "reversed",
		Mode:             orig.Mode,
		SettlementID:     id,
		AuthorizationID:  orig.AuthorizationID,
	}
	got, already, err := g.Store.CommitReversal(ctx, key, rev, stl, audit)
	if err != nil {
		return nil, fmt.Errorf("commit reversal %s: %w", key, err)
	}
	if !already {
		g.Logger.Info("reversal", "lane", key.Lane, "txn", key.POSTxnID, "amount", rev.Amount, "settlement_id", id)
		if g.Committed != nil {
			g.Committed()
		}
	}
	return &ReverseResult{Reversal: got, AlreadyReversed: already}, nil
}

// lockKey makes concurrent calls with one idempotency key take turns, so a
// POS that retries while its first call is still running gets the first
// call's answer instead of a second decision.
func (g *Gateway) lockKey(ctx context.Context, key IdempotencyKey) (func(), error) {
	for {
		g.mu.Lock()
		wait, busy := g.inflight[key]
		if !busy {
			done := make(chan struct{})
			g.inflight[key] = done
			g.mu.Unlock()
			return func() {
				g.mu.Lock()
				delete(g.inflight, key)
				g.mu.Unlock()
				close(done)
			}, nil
		}
		g.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, &Error{Code: EUNAVAILABLE, Message: "waiting for an earlier call with the same transaction id", Err: ctx.Err()}
		}
	}
}

// claimToken marks a token id as being decided in this process; false when
// another call holds it.
func (g *Gateway) claimToken(id []byte) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, busy := g.tokens[string(id)]; busy {
		return false
	}
	g.tokens[string(id)] = struct{}{}
	return true
}

func (g *Gateway) releaseToken(id []byte) {
	g.mu.Lock()
	delete(g.tokens, string(id))
	g.mu.Unlock()
}

// Status is the gateway's state, for GetStatus and storegatectl status.
type Status struct {
	StoreID string
	// CentralReachable is whether the last call to central, a decision's
	// or the forwarder's, reached it.
	CentralReachable   bool
	LastCentralContact time.Time
	// Breaker says whether decisions go to central (closed) or are made
	// offline at once (open, half-open while one call probes).
	Breaker BreakerStatus
	// OfflineCaps are the caps in force.
	OfflineCaps   OfflineCaps
	Outbox        OutboxStats
	KeysetVersion uint64
	AuditRecords  uint64
	// Documents are the versions of HQ's signed documents in force.
	Documents DocumentVersions
	// PolicyIssued and StorePolicyIssued are when HQ issued the chain-wide
	// and the store's policy in force; zero when none is held.
	PolicyIssued      time.Time
	StorePolicyIssued time.Time
}

// Status reports the gateway's state.
func (g *Gateway) Status(ctx context.Context) (*Status, error) {
	ob, err := g.Store.OutboxStats(ctx)
	if err != nil {
		return nil, fmt.Errorf("outbox stats: %w", err)
	}
	n, _, err := g.Store.AuditHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit head: %w", err)
	}
	s := &Status{
		StoreID:          g.StoreID,
		CentralReachable: g.central.reachable.Load(),
		Breaker:          g.Breaker.Status(),
		OfflineCaps:      g.offlinePolicy().OfflineCaps(),
		Outbox:           ob,
		AuditRecords:     n,
		Documents:        g.DocumentVersions(),
	}
	if pol := g.Policy(); pol != nil {
		if pol.Chain != nil {
			s.PolicyIssued = pol.Chain.IssuedAt
		}
		if pol.Store != nil {
			s.StorePolicyIssued = pol.Store.IssuedAt
		}
	}
	if ns := g.central.lastContact.Load(); ns != 0 {
		s.LastCentralContact = time.Unix(0, ns)
	}
	if k := g.keys.Load(); k != nil {
		s.KeysetVersion = k.Version
	}
	return s, nil
}

// PruneSpent forgets spent token ids whose expiry, plus the clock skew
// allowance and margin, lies in the past: such tokens are refused as expired
// anyway.
func (g *Gateway) PruneSpent(ctx context.Context, margin time.Duration) (int, error) {
	skew := g.Verifier.Skew
	if skew <= 0 {
		skew = DefaultClockSkew
	}
	return g.Store.PruneSpent(ctx, g.Now().Add(-skew-margin))
}

// NoteCentral records whether a call reached the central service, for status.
// The forwarder reports its calls here too.
func (g *Gateway) NoteCentral(ok bool) { g.central.record(ok, g.Now()) }
