package grpcserver

import (
	"context"
	"errors"

	"google.golang.org/grpc/peer"

	"storegate/certs"
	"storegate/gateway"
	"storegate/gateway/wire"
)

// callerKey is the context key of the gateway.Caller the interceptors put
// in for the handlers.
type callerKey struct{}

func withCaller(ctx context.Context, c gateway.Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// callerFrom returns the caller the interceptors authenticated. A handler
// reached without them (a server built without PaymentServerOptions or
// AdminServerOptions) has none and must refuse: EUNAUTHENTICATED.
func callerFrom(ctx context.Context) (gateway.Caller, error) {
	c, ok := ctx.Value(callerKey{}).(gateway.Caller)
	if !ok || c.Kind == "" {
		return gateway.Caller{}, gateway.Errorf(gateway.EUNAUTHENTICATED, "no authenticated caller")
	}
	return c, nil
}

// InsecureCallerName is the name every caller without a certificate
// carries under Server.InsecureCallers.
const InsecureCallerName = "insecure-callers"

// paymentCaller authenticates a caller of PaymentService: a POS terminal or
// supervisor certificate of this store, verified by the handshake; or,
// under InsecureCallers and only for a caller that presents none, a
// supervisor of this store named by its address. A certificate of another
// kind, or of another store, is EPERMISSION; none, or one that names
// nobody of this chain, EUNAUTHENTICATED.
func (srv *Server) paymentCaller(ctx context.Context) (gateway.Caller, error) {
	store := srv.Gateway.StoreID
	id, err := certs.PeerIdentity(ctx, srv.Chain, certs.KindPOS, certs.KindSupervisor)
	switch {
	case errors.Is(err, certs.ErrNoIdentity) && srv.InsecureCallers:
		addr := "unknown"
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			addr = p.Addr.String()
		}
		return gateway.Caller{Kind: gateway.CallerSupervisor, Store: store, Name: InsecureCallerName, ID: "insecure:" + addr}, nil
	case errors.Is(err, certs.ErrKindRefused):
		return gateway.Caller{}, &gateway.Error{Code: gateway.EPERMISSION, Message: "PaymentService takes POS and supervisor certificates only", Err: err}
	case err != nil:
		return gateway.Caller{}, &gateway.Error{Code: gateway.EUNAUTHENTICATED, Message: "PaymentService needs a POS or supervisor certificate naming its holder: " + err.Error()}
	case id.Store != store:
		return gateway.Caller{}, gateway.Errorf(gateway.EPERMISSION, "%s is a certificate of store %s; this is store %s", id, id.Store, store)
	}
	c := gateway.Caller{Kind: gateway.CallerPOS, Store: id.Store, Lane: id.Lane, ID: id.String()}
	if id.Kind == certs.KindSupervisor {
		c = gateway.Caller{Kind: gateway.CallerSupervisor, Store: id.Store, Name: id.Name, ID: id.String()}
	}
	return c, nil
}

// laneRequest is a request that names a lane: Authorize, Reverse and
// WatchScans.
type laneRequest interface{ GetLane() string }

// checkLane refuses a request for a lane the caller may not act on: another
// lane's POS terminal asking for this lane's payments, reversals or scans.
func (srv *Server) checkLane(c gateway.Caller, req any) error {
	r, ok := req.(laneRequest)
	if !ok || c.MayActOn(srv.Gateway.StoreID, r.GetLane()) {
		return nil
	}
	return gateway.Errorf(gateway.EPERMISSION, "%s may not act on lane %s: a POS terminal acts on its own lane only", c, gateway.QuoteInput(r.GetLane()))
}

// operatorCaller authenticates a caller of the admin socket by the peer
// credentials its connection carries: an operator named by its uid. Any
// other connection is EUNAUTHENTICATED.
func operatorCaller(ctx context.Context) (gateway.Caller, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return gateway.Caller{}, gateway.Errorf(gateway.EUNAUTHENTICATED, "AdminService is served on the admin socket only")
	}
	cred, ok := p.AuthInfo.(PeerCred)
	if !ok {
		return gateway.Caller{}, gateway.Errorf(gateway.EUNAUTHENTICATED, "AdminService is served on the admin socket only")
	}
	return gateway.Caller{Kind: gateway.CallerOperator, Name: cred.String()[len("unix:"):], ID: cred.String()}, nil
}

// operatorFrom returns the operator the admin interceptors authenticated;
// an AdminService handler reached any other way refuses the call.
func operatorFrom(ctx context.Context) error {
	c, err := callerFrom(ctx)
	if err != nil {
		return wire.Status(err)
	}
	if c.Kind != gateway.CallerOperator {
		return wire.Status(gateway.Errorf(gateway.EPERMISSION, "AdminService is for operators on the admin socket; %s is not one", c))
	}
	return nil
}
