package grpcserver

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// ListOutbox limits.
const (
	defaultOutboxList = 100
	maxOutboxList     = 1000
)

// centralStateOf is the table from the breaker's states to the wire's.
var centralStateOf = map[gateway.BreakerState]storegatev1.CentralState{
	gateway.BreakerClosed:   storegatev1.CentralState_CENTRAL_STATE_ONLINE,
	gateway.BreakerOpen:     storegatev1.CentralState_CENTRAL_STATE_OFFLINE,
	gateway.BreakerHalfOpen: storegatev1.CentralState_CENTRAL_STATE_PROBING,
}

var kindOf = map[gateway.SettlementKind]storegatev1.SettlementKind{
	gateway.SettlementCapture:  storegatev1.SettlementKind_SETTLEMENT_KIND_CAPTURE,
	gateway.SettlementReversal: storegatev1.SettlementKind_SETTLEMENT_KIND_REVERSAL,
}

// ListOutbox lists the settlements waiting for central and the disputed
// ones, each list up to the request's limit, with their totals.
func (srv *Server) ListOutbox(ctx context.Context, in *storegatev1.ListOutboxRequest) (*storegatev1.ListOutboxResponse, error) {
	limit := int(in.GetLimit())
	switch {
	case limit < 0:
		return nil, Status(gateway.Errorf(gateway.EINVALID, "limit: %d is negative", limit))
	case limit == 0:
		limit = defaultOutboxList
	case limit > maxOutboxList:
		limit = maxOutboxList
	}
	stats, err := srv.Store.OutboxStats(ctx)
	if err != nil {
		return nil, Status(err)
	}
	pending, err := srv.Store.PendingSettlements(ctx, limit)
	if err != nil {
		return nil, Status(err)
	}
	disputed, err := srv.Store.DisputedSettlements(ctx, limit)
	if err != nil {
		return nil, Status(err)
	}
	out := &storegatev1.ListOutboxResponse{PendingTotal: stats.Depth, DisputedTotal: stats.Disputed}
	for i := range pending {
		out.Pending = append(out.Pending, OutboxEntryToProto(&pending[i]))
	}
	for i := range disputed {
		d := &disputed[i]
		out.Disputed = append(out.Disputed, &storegatev1.DisputedEntry{
			Settlement: OutboxEntryToProto(&d.Settlement),
			Message:    d.Message,
			RefusedAt:  timestamppb.New(d.RefusedAt),
		})
	}
	return out, nil
}

// OutboxEntryToProto converts a queued settlement for listing, its account
// masked.
func OutboxEntryToProto(s *gateway.Settlement) *storegatev1.OutboxEntry {
	return &storegatev1.OutboxEntry{
		Seq:              s.Seq,
		SettlementId:     s.ID,
		Kind:             kindOf[s.Kind],
		Mode:             modeOf[s.Mode],
		Lane:             s.Lane,
		PosTransactionId: s.POSTxnID,
		Amount:           s.Amount,
		Currency:         s.Currency,
		AccountHint:      MaskAccount(s.Account),
		AuthorizationId:  s.AuthorizationID,
		ReversesId:       s.ReversesID,
		CreatedAt:        timestamppb.New(s.CreatedAt),
	}
}
