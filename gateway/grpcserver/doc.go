// Package grpcserver is storegated's gRPC face: PaymentService for the lanes'
// POS terminals on the POS listener, AdminService for the operators on a unix
// socket, over the gateway domain.
//
// Server (server.go) owns the daemon's two grpc.Servers: Open serves
// PaymentService, grpc.health.v1 and reflection on the POS listener and
// AdminService on the admin socket (adminsocket.go: ListenAdminSocket, and
// PeerCredentials, whose AuthInfo is the caller's uid from SO_PEERCRED), and
// Close drains both (health NOT_SERVING first, decisions in flight finish,
// streams end after a grace). AdminService is never served on the POS
// listener. Handlers stay thin: validation and decisions live in package
// gateway, and every conversion between the storegate.v1 contract and the
// domain, domain errors to gRPC statuses included, is package wire's. The
// server's limits are Options (options.go: message size, keepalive, a
// default deadline); interceptors.go holds the interceptors that apply the
// deadline, recover panics, end streams at shutdown, tell the wire.Observer
// that metrics hang on, and bind every call to its caller: a PaymentService
// call to the POS terminal or supervisor its verified certificate names
// (callers.go: its store must be this one, and a POS acts on its own lane
// only), an admin call to the operator its socket's peer credentials name.
// The handlers get the caller as a gateway.Caller and refuse a call that has
// none. health.go keeps grpc.health.v1 truthful about whether the store can
// be written.
//
// It must never put a full payment token or an internal error text in a
// response or a log line, never serve AdminService where PaymentService's
// callers reach it, never take a caller's identity from a request, and never
// import a metrics library or another adapter: metrics are a wire.Observer
// that cmd/storegated wires in.
package grpcserver
