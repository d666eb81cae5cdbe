package grpcserver

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
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

const authorizeMethod = storegatev1.PaymentService_Authorize_FullMethodName

func (o Options) observeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if o.Observer == nil || info.FullMethod != authorizeMethod {
		return handler(ctx, req)
	}
	start := o.Now()
	res, err := handler(ctx, req)
	r, _ := res.(*storegatev1.AuthorizeResponse)
	o.Observer.ObserveAuthorize(wire.NewAuthorizeObservation(r, err, o.Now().Sub(start)))
	return res, err
}

// deadlineUnary gives a call without a deadline the default one.
func (o Options) deadlineUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.CallTimeout)
		defer cancel()
	}
	return handler(ctx, req)
}

// recoverUnary turns a handler's panic into an Internal error: the daemon
// keeps deciding for the other lanes. A panic in a goroutine that a handler
// started is not the handler's and still ends the process.
func (o Options) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, o.recovered(info.FullMethod, p)
		}
	}()
	return handler(ctx, req)
}

func (o Options) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = o.recovered(info.FullMethod, p)
		}
	}()
	return handler(srv, ss)
}

// drainStream ends the stream when Drain is closed.
func (o Options) drainStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if o.Drain == nil {
		return handler(srv, ss)
	}
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	go func() {
		select {
		case <-o.Drain:
			cancel()
		case <-ctx.Done():
		}
	}()
	return handler(srv, &drainedStream{ServerStream: ss, ctx: ctx})
}

// drainedStream is a stream whose context Drain can cancel.
type drainedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *drainedStream) Context() context.Context { return s.ctx }

func (o Options) recovered(method string, p any) error {
	if o.Observer != nil {
		o.Observer.ObservePanic(method)
	}
	o.Logger.Error("handler panicked; the call was answered Internal",
		"method", method, "panic", Redact(fmt.Sprint(p)), "stack", Redact(string(debug.Stack())))
	return status.Error(codes.Internal, "internal error")
}

// credentialPattern matches a payment token (the SGP1: prefix and base45
// text) or a 16 to 20 digit payment code.
var credentialPattern = regexp.MustCompile(regexp.QuoteMeta(gateway.TokenPrefix) + `[0-9A-Z$%*+\-./:]+|\b[0-9]{16,20}\b`)

// Redact replaces every payment token and numeric payment code in s with
// its fingerprint, for text that goes to a log but did not come from this
// package's own careful formatting (a panic's value, a stack trace).
func Redact(s string) string {
	return credentialPattern.ReplaceAllStringFunc(s, func(c string) string {
		return "[credential fp=" + gateway.Fingerprint(c) + "]"
	})
}
