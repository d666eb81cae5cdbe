package grpcserver

import (
	"context"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
	storegatev1 "storegate/proto/storegate/v1"
)

// documentKinds is the table between wire and domain document kinds. The
// wire has one kind for policies: a store's own policy and the chain's
// differ by the store_id inside the document.
var documentKinds = map[storegatev1.DocumentKind]gateway.DocumentKind{
	storegatev1.DocumentKind_DOCUMENT_KIND_KEYSET:      gateway.DocumentKeyset,
	storegatev1.DocumentKind_DOCUMENT_KIND_POLICY:      gateway.DocumentPolicy,
	storegatev1.DocumentKind_DOCUMENT_KIND_FREEZE_LIST: gateway.DocumentFreeze,
}

// DocumentKindFromProto converts a wire document kind; false for one the
// domain does not know.
func DocumentKindFromProto(k storegatev1.DocumentKind) (gateway.DocumentKind, bool) {
	d, ok := documentKinds[k]
	return d, ok
}

func applied(kind storegatev1.DocumentKind, version uint64, changed bool) *storegatev1.AppliedDocument {
	return &storegatev1.AppliedDocument{Kind: kind, Version: version, Unchanged: !changed}
}

// ApplyPolicy installs a signed policy, chain-wide or for this store.
func (srv *Server) ApplyPolicy(ctx context.Context, in *storegatev1.ApplyPolicyRequest) (*storegatev1.ApplyPolicyResponse, error) {
	version, changed, err := srv.Gateway.ApplyPolicy(ctx, in.GetDocument().GetCoseSign1())
	if err != nil {
		return nil, Status(err)
	}
	return &storegatev1.ApplyPolicyResponse{Applied: applied(storegatev1.DocumentKind_DOCUMENT_KIND_POLICY, version, changed)}, nil
}

// FreezeAccounts applies a signed freeze list.
func (srv *Server) FreezeAccounts(ctx context.Context, in *storegatev1.FreezeAccountsRequest) (*storegatev1.FreezeAccountsResponse, error) {
	version, changed, err := srv.Gateway.ApplyFreezeList(ctx, in.GetDocument().GetCoseSign1())
	if err != nil {
		return nil, Status(err)
	}
	return &storegatev1.FreezeAccountsResponse{Applied: applied(storegatev1.DocumentKind_DOCUMENT_KIND_FREEZE_LIST, version, changed)}, nil
}

// GetPolicy returns the policies held and what is in force.
func (srv *Server) GetPolicy(ctx context.Context, _ *storegatev1.GetPolicyRequest) (*storegatev1.GetPolicyResponse, error) {
	pol := srv.Gateway.Policy()
	freeze := srv.Gateway.FreezeList()
	docs := srv.Gateway.DocumentVersions()
	out := &storegatev1.GetPolicyResponse{
		StoreId:                 srv.Gateway.StoreID,
		Mode:                    documentv1.StoreMode(pol.Mode()),
		MaxTokenLifetimeSeconds: int64(srv.Gateway.TokenLifetimeCap().Seconds()),
		KeysetVersion:           docs.Keyset,
		FreezeVersion:           freeze.Version,
		FrozenAccounts:          uint64(freeze.Len()),
	}
	if pol.Chain != nil {
		out.Chain = pol.Chain.Proto()
	}
	if pol.Store != nil {
		out.Store = pol.Store.Proto()
	}
	return out, nil
}
