package grpcserver

import (
	"context"

	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

// ListOutbox limits.
const (
	defaultOutboxList = 100
	maxOutboxList     = 1000
)

// ListOutbox lists the settlements waiting for central and the disputed
// ones, each list up to the request's limit, with their totals.
func (srv *Server) ListOutbox(ctx context.Context, in *storegatev1.ListOutboxRequest) (*storegatev1.ListOutboxResponse, error) {
	if err := operatorFrom(ctx); err != nil {
		return nil, err
	}
	limit := int(in.GetLimit())
	switch {
	case limit < 0:
		return nil, wire.Status(gateway.Errorf(gateway.EINVALID, "limit: %d is negative", limit))
	case limit == 0:
		limit = defaultOutboxList
	case limit > maxOutboxList:
		limit = maxOutboxList
	}
	l, err := gateway.ListOutbox(ctx, srv.Store, limit)
	if err != nil {
		return nil, wire.Status(err)
	}
	return wire.OutboxToProto(l), nil
}
