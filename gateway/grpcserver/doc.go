// Package grpcserver is storegated's gRPC face: PaymentService for the lanes'
// POS terminals and AdminService for HQ, over the gateway domain.
//
// Server (server.go) owns the daemon's grpc.Server: Open serves both
// services, grpc.health.v1 and reflection on a listener, and Close drains it
// (health NOT_SERVING first, decisions in flight finish, streams end after a
// grace). Handlers stay thin: validation and decisions live in package
// gateway, and every conversion between the storegate.v1 contract and the
// domain, domain errors to gRPC statuses included, is package wire's. The
// server's limits are Options (options.go: message size, keepalive, a
// default deadline); interceptors.go holds the interceptors that apply the
// deadline, recover panics, end streams at shutdown and tell the
// wire.Observer that metrics hang on; health.go keeps grpc.health.v1
// truthful about whether the store can be written.
//
// It must never put a full payment token or an internal error text in a
// response or a log line, and never import a metrics library or another
// adapter: metrics are a wire.Observer that cmd/storegated wires in.
package grpcserver
