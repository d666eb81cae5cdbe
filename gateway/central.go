package gateway

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// CentralRequest asks the central service to decide a payment.
type CentralRequest struct {
	StoreID  string
	Lane     string
	POSTxnID string
	// Credential is the token text or numeric code.
	Credential string
	Amount     int64
	Currency   string
	Lines      []Line
}

// CentralResult is the central service's answer.
type CentralResult struct {
	Approved        bool
	Reason          Reason
	AuthorizationID string
	Account         string
	Message         string
}

// Central is the chain's central service as the gateway sees it.
type Central interface {
	// Authorize asks central to decide. An EINVALID *Error means central
	// answered that the request is malformed: the caller declines. Any
	// other error means central could not be asked or did not answer in
	// time: the caller decides without it (offline).
	Authorize(ctx context.Context, req *CentralRequest) (*CentralResult, error)
	// SubmitSettlements sends a batch of settlements and returns central's
	// acknowledgements. A settlement without an ack was not recorded and is
	// sent again; an error means none is known to be recorded.
	SubmitSettlements(ctx context.Context, storeID string, batch []Settlement) ([]SettlementAck, error)
}

// centralHealth remembers how the last calls to central went, for status.
type centralHealth struct {
	// called is set once any call has ended: until then reachable and
	// lastContact say nothing.
	called      atomic.Bool
	reachable   atomic.Bool
	lastContact atomic.Int64 // unix nanoseconds
}

func (h *centralHealth) record(ok bool, now time.Time) {
	if ok {
		h.lastContact.Store(now.UnixNano())
	}
	h.reachable.Store(ok)
	h.called.Store(true)
}

// NoteCentral records whether a call that the breaker does not guard
// reached the central service: the forwarder's and the policy stream's. A
// call that reached it also closes the breaker (Breaker.Reached), so that
// status never says offline while central answers.
func (g *Gateway) NoteCentral(ok bool) {
	g.central.record(ok, g.Now())
	if ok {
		g.Breaker.Reached()
	}
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
		g.central.record(true, g.Now())
	case ctx.Err() != nil:
		// The caller gave up: that says nothing about central.
	default:
		done(false)
		g.central.record(false, g.Now())
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
