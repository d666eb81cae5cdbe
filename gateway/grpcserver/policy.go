package grpcserver

import (
	"context"

	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

// ApplyPolicy installs a signed policy, chain-wide or for this store.
func (srv *Server) ApplyPolicy(ctx context.Context, in *storegatev1.ApplyPolicyRequest) (*storegatev1.ApplyPolicyResponse, error) {
	if err := operatorFrom(ctx); err != nil {
		return nil, err
	}
	version, changed, err := srv.Gateway.ApplyPolicy(ctx, in.GetDocument().GetCoseSign1())
	if err != nil {
		return nil, wire.Status(err)
	}
	return &storegatev1.ApplyPolicyResponse{Applied: wire.AppliedToProto(gateway.DocumentPolicy, version, changed)}, nil
}

// FreezeAccounts applies a signed freeze list.
func (srv *Server) FreezeAccounts(ctx context.Context, in *storegatev1.FreezeAccountsRequest) (*storegatev1.FreezeAccountsResponse, error) {
	if err := operatorFrom(ctx); err != nil {
		return nil, err
	}
	version, changed, err := srv.Gateway.ApplyFreezeList(ctx, in.GetDocument().GetCoseSign1())
	if err != nil {
		return nil, wire.Status(err)
	}
	return &storegatev1.FreezeAccountsResponse{Applied: wire.AppliedToProto(gateway.DocumentFreeze, version, changed)}, nil
}

// GetPolicy returns the policies held and what is in force.
func (srv *Server) GetPolicy(ctx context.Context, _ *storegatev1.GetPolicyRequest) (*storegatev1.GetPolicyResponse, error) {
	if err := operatorFrom(ctx); err != nil {
		return nil, err
	}
	return wire.PolicyToProto(srv.Gateway), nil
}
