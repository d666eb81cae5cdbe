package grpcserver

import (
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"storegate/gateway/wire"
)

// Defaults for Options.
const (
	// DefaultMaxRecvMsgSize bounds a request. An Authorize request is a
	// basket and a token, a few KiB; a keyset or policy document is
	// smaller than this too.
	DefaultMaxRecvMsgSize = 256 << 10
	// DefaultCallTimeout is the deadline of a unary call whose client set
	// none: no POS waits forever on a gateway, and no handler holds an
	// idempotency key forever.
	DefaultCallTimeout = 10 * time.Second
	// DefaultKeepaliveTime is how long a connection may sit idle before the
	// server pings the client, to notice a POS that went away without
	// closing its connection.
	DefaultKeepaliveTime = 30 * time.Second
	// DefaultKeepaliveTimeout is how long the server waits for that ping's
	// answer before it closes the connection.
	DefaultKeepaliveTimeout = 10 * time.Second
	// DefaultKeepaliveMinTime is the shortest interval at which a client
	// may ping; a client that pings more often is disconnected.
	DefaultKeepaliveMinTime = 10 * time.Second
)

// Options are the daemon's gRPC server settings. The zero value is usable.
type Options struct {
	// Creds, when set, are the transport credentials (TLS); nil serves
	// plaintext.
	Creds credentials.TransportCredentials
	// MaxRecvMsgSize bounds a request in bytes; zero means
	// DefaultMaxRecvMsgSize.
	MaxRecvMsgSize int
	// CallTimeout is the deadline given to a unary call whose client set
	// none; zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// Observer, when set, is told about calls and panics.
	Observer wire.Observer
	// Logger receives a line for every recovered panic; nil discards.
	Logger *slog.Logger
	// Now is the clock for call durations; nil means time.Now.
	Now func() time.Time
	// Drain, when closed, ends every open stream (a health Watch, a scan
	// watch, an audit export) by cancelling its context, so that
	// GracefulStop waits only for unary calls such as a decision in
	// flight. nil leaves streams alone.
	Drain <-chan struct{}
}

// ServerOptions returns the grpc.ServerOption values that put o in force:
// credentials, the message size limit, the keepalive policy, and the
// interceptors that observe Authorize, recover panics and apply the default
// deadline.
func (o Options) ServerOptions() []grpc.ServerOption {
	if o.MaxRecvMsgSize <= 0 {
		o.MaxRecvMsgSize = DefaultMaxRecvMsgSize
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(o.MaxRecvMsgSize),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             DefaultKeepaliveMinTime,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    DefaultKeepaliveTime,
			Timeout: DefaultKeepaliveTimeout,
		}),
		// Observation runs outermost, so that it sees a recovered panic as
		// the Internal error the client got.
		grpc.ChainUnaryInterceptor(o.observeUnary, o.recoverUnary, o.deadlineUnary),
		grpc.ChainStreamInterceptor(o.recoverStream, o.drainStream),
	}
	if o.Creds != nil {
		opts = append(opts, grpc.Creds(o.Creds))
	}
	return opts
}
