package gatewaytest

import (
	"context"

	"storegate/gateway"
)

// HeldCentral is a gateway.Central whose Authorize holds every decision in
// flight: it says on Entered that a call arrived, waits until Release is
// closed (or the call's context ends), then approves for Account. A test
// reads Entered to know a decision is at central, and closes Release to let
// every held call go on.
type HeldCentral struct {
	// Entered receives one value per Authorize call; give it room for the
	// calls the test does not read.
	Entered chan struct{}
	// Release, once closed, lets every held call and every later one go on.
	Release chan struct{}
	// Account is the account central's approvals name.
	Account string
}

var _ gateway.Central = (*HeldCentral)(nil)

// NewHeldCentral returns a HeldCentral whose Entered holds up to entered
// arrivals unread, approving for acct-0001.
func NewHeldCentral(entered int) *HeldCentral {
	return &HeldCentral{Entered: make(chan struct{}, entered), Release: make(chan struct{}), Account: "acct-0001"}
}

// Authorize waits for Release and approves, with an authorization id made
// from the POS transaction id; it returns the context's error when the call
// ends first.
func (c *HeldCentral) Authorize(ctx context.Context, req *gateway.CentralRequest) (*gateway.CentralResult, error) {
	c.Entered <- struct{}{}
	select {
	case <-c.Release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &gateway.CentralResult{Approved: true, AuthorizationID: "auth-" + req.POSTxnID, Account: c.Account}, nil
}

// SubmitSettlements acknowledges every settlement as accepted.
func (c *HeldCentral) SubmitSettlements(_ context.Context, _ string, batch []gateway.Settlement) ([]gateway.SettlementAck, error) {
	acks := make([]gateway.SettlementAck, len(batch))
	for i, s := range batch {
		acks[i] = gateway.SettlementAck{ID: s.ID, Status: gateway.SettlementAccepted}
	}
	return acks, nil
}
