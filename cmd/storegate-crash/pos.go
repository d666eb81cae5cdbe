package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// How a POS lane behaves.
const (
	// callTimeout bounds one call to the gateway.
	callTimeout = 3 * time.Second
	// giveUpAfter is how long a POS keeps retrying a sale before it gives
	// up and the outcome stays unknown to it.
	giveUpAfter = 20 * time.Second
	// reverseOneIn and resendOneIn: an approved sale is reversed, and an
	// answered one sent again, once in that many.
	reverseOneIn = 20
	resendOneIn  = 10
)

// Outcomes a POS records.
const (
	outcomeApproved = "approved"
	outcomeDeclined = "declined"
	outcomeUnknown  = "unknown"
)

// sale is one sale a POS lane made, and what it was told.
type sale struct {
	Lane    string `json:"lane"`
	Txn     string `json:"txn"`
	Account string `json:"account"`
	Amount  int64  `json:"amount"`
	Ofl     int64  `json:"ofl"`

	Outcome      string `json:"outcome"`
	Mode         string `json:"mode,omitempty"`
	Reason       string `json:"reason,omitempty"`
	SettlementID string `json:"settlement_id,omitempty"`
	// Attempts counts the calls it took to hear an answer.
	Attempts int `json:"attempts"`
	// ReversalID is set once the POS heard that the sale was reversed;
	// ReverseUnknown when it asked and never heard.
	ReversalID     string `json:"reversal_id,omitempty"`
	ReverseUnknown bool   `json:"reverse_unknown,omitempty"`
}

func (s *sale) key() string { return s.Lane + "/" + s.Txn }

// journal is every sale the lanes made, in the order they began.
type journal struct {
	mu    sync.Mutex
	sales []*sale
}

func (j *journal) add(s *sale) {
	j.mu.Lock()
	j.sales = append(j.sales, s)
	j.mu.Unlock()
}

func (j *journal) all() []*sale {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]*sale(nil), j.sales...)
}

// pos is one lane's POS terminal.
type pos struct {
	h      *harness
	lane   string
	client storegatev1.PaymentServiceClient
	rng    *rand.Rand
	key    ed25519.PrivateKey
}

// run makes sales until stop is closed; the sale under way when it closes
// is finished first, as a cashier would.
func (p *pos) run(ctx context.Context, stop <-chan struct{}) {
	for n := 1; ; n++ {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		default:
		}
		p.sell(ctx, n)
	}
}

func (p *pos) sell(ctx context.Context, n int) {
	cfg := &p.h.cfg
	s := &sale{
		Lane:    p.lane,
		Txn:     fmt.Sprintf("txn-%06d", n),
		Account: fmt.Sprintf("acct-%04d", p.rng.IntN(cfg.Accounts)),
		Amount:  int64(1+p.rng.IntN(40)) * 100,
	}
	switch r := p.rng.IntN(10); {
	case r == 0:
		s.Ofl = 0
	case r < 8:
		s.Ofl = cfg.Caps.MaxAmountPerTransaction
	default:
		s.Ofl = 10 * cfg.Caps.MaxAmountPerTransaction
	}
	tok, err := p.mint(s)
	if err != nil {
		p.h.problem("mint token: %v", err)
		return
	}
	p.h.journal.add(s)
	req := &storegatev1.AuthorizeRequest{
		Lane: s.Lane, PosTransactionId: s.Txn, Total: s.Amount, Currency: "JPY",
		Lines:      []*storegatev1.BasketLine{{Sku: "4901234567894", Category: "food", Quantity: 1, UnitPrice: s.Amount}},
		Credential: &storegatev1.AuthorizeRequest_Token{Token: tok},
	}
	res, attempts := p.authorize(ctx, req)
	s.Attempts = attempts
	if res == nil {
		s.Outcome = outcomeUnknown
		return
	}
	d := res.GetDecision()
	s.Mode = strings.ToLower(strings.TrimPrefix(d.GetMode().String(), "DECISION_MODE_"))
	if d.GetOutcome() == storegatev1.Outcome_OUTCOME_APPROVED {
		s.Outcome, s.SettlementID = outcomeApproved, d.GetSettlementId()
		if s.SettlementID == "" {
			p.h.problem("%s approved without a settlement id", s.key())
		}
	} else {
		s.Outcome = outcomeDeclined
		s.Reason = strings.ToLower(strings.TrimPrefix(d.GetReason().String(), "DECLINE_REASON_"))
	}

	// A POS that lost the answer asks again: it must hear the same one.
	if p.rng.IntN(resendOneIn) == 0 {
		again, _ := p.authorize(ctx, req)
		switch {
		case again == nil:
		case !again.GetReplayed() || !proto.Equal(again.GetDecision(), d):
			p.h.problem("%s asked again: got %v (replayed %v), first heard %v", s.key(), again.GetDecision(), again.GetReplayed(), d)
		default:
			p.h.stats.resentSame.Add(1)
		}
	}
	if s.Outcome == outcomeApproved && p.rng.IntN(reverseOneIn) == 0 {
		p.reverse(ctx, s)
	}
}

func (p *pos) mint(s *sale) (string, error) {
	id, err := gateway.NewTokenID()
	if err != nil {
		return "", err
	}
	now := time.Now()
	return gateway.MintToken(p.key, gateway.Claims{
		Issuer: "storegate-hq", Account: s.Account, IssuedAt: now, Expires: now.Add(gateway.DefaultMaxTokenLifetime),
		TokenID: id, Device: "phone-" + s.Account, Assurance: gateway.AssuranceDeviceBound, OfflineAllowance: s.Ofl,
	})
}

// authorize sends req until the gateway answers, as a POS does after a
// timeout or a dropped connection: same lane, transaction and token. It
// gives up after giveUpAfter and returns nil.
func (p *pos) authorize(ctx context.Context, req *storegatev1.AuthorizeRequest) (*storegatev1.AuthorizeResponse, int) {
	var res *storegatev1.AuthorizeResponse
	n := p.retry(ctx, req.GetLane()+"/"+req.GetPosTransactionId(), func(cctx context.Context) error {
		var err error
		res, err = p.client.Authorize(cctx, req)
		return err
	})
	return res, n
}

// reverse reverses an approved sale, retrying until the gateway answers.
func (p *pos) reverse(ctx context.Context, s *sale) {
	var res *storegatev1.ReverseResponse
	p.retry(ctx, s.key()+" reverse", func(cctx context.Context) error {
		var err error
		res, err = p.client.Reverse(cctx, &storegatev1.ReverseRequest{Lane: s.Lane, PosTransactionId: s.Txn, Reason: "crash test"})
		return err
	})
	if res == nil {
		s.ReverseUnknown = true
		return
	}
	s.ReversalID = res.GetReversalId()
}

// retry calls fn until it succeeds or giveUpAfter has passed, and returns
// the number of calls; res is left nil by a caller's fn when it gave up.
// Errors a gateway that is being killed or restarted gives (Unavailable,
// DeadlineExceeded, Canceled) are expected; any other is a problem, retried
// all the same.
func (p *pos) retry(ctx context.Context, what string, fn func(context.Context) error) int {
	deadline := time.Now().Add(giveUpAfter)
	for n := 1; ; n++ {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := fn(cctx)
		cancel()
		if err == nil {
			return n
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
			p.h.stats.retries.Add(1)
		default:
			p.h.problem("%s: unexpected error %v", what, err)
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return n
		}
		time.Sleep(time.Duration(10+p.rng.IntN(90)) * time.Millisecond)
	}
}
