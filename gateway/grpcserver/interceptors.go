package grpcserver

import (
	"context"
	"fmt"
	"regexp"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

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
