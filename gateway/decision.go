package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Mode says who decided.
type Mode string

// Decision modes.
const (
	// ModeOnline: the central service decided.
	ModeOnline Mode = "online"
	// ModeOffline: the store decided alone, within its offline caps.
	ModeOffline Mode = "offline"
	// ModeLocal: the store declined before asking anyone (a bad token, a
	// replay, a frozen account, a limit).
	ModeLocal Mode = "local"
)

// Decision is the answer to an authorization. A decline is a decision with a
// reason and the rule that fired, never an error.
type Decision struct {
	Approved bool   `json:"approved"`
	Reason   Reason `json:"reason"`
	// Rule names the check or policy rule that fired.
	Rule string `json:"rule,omitempty"`
	Mode Mode   `json:"mode"`
	// AuthorizationID is central's id for an online approval.
	AuthorizationID string `json:"authorization_id,omitempty"`
	// SettlementID is the queued settlement of an approval.
	SettlementID     string    `json:"settlement_id,omitempty"`
	Amount           int64     `json:"amount"`
	Currency         string    `json:"currency"`
	TokenFingerprint string    `json:"token_fp,omitempty"`
	Account          string    `json:"account,omitempty"`
	DecidedAt        time.Time `json:"decided_at"`
	Message          string    `json:"message,omitempty"`
}

// Outcome returns "approved" or "declined".
func (d *Decision) Outcome() string {
	if d.Approved {
		return "approved"
	}
	return "declined"
}

// StoredDecision is a decision as the idempotency record keeps it.
type StoredDecision struct {
	Decision Decision `json:"decision"`
	// Digest is the request's basket digest (AuthorizeRequest.Digest).
	Digest [32]byte `json:"digest"`
	// Reversal is set once the sale has been reversed.
	Reversal *Reversal `json:"reversal,omitempty"`
}

// AuthorizeResult is what Authorize returns.
type AuthorizeResult struct {
	Decision Decision
	// Replayed is true when the decision is the stored answer to an earlier
	// identical request.
	Replayed bool
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

	// Step 5: ask central under a deadline (central.go), or decide offline
	// (offline.go).
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
		Caller:           d.req.Caller.ID,
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
