package grpcserver

import (
	"context"
	"fmt"
	"regexp"
	"runtime/debug"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

const authorizeMethod = storegatev1.PaymentService_Authorize_FullMethodName

// paymentMethods is the prefix of PaymentService's methods: the ones bound
// to their caller on the POS listener. Health and reflection beside them
// answer anyone who completed the handshake.
var paymentMethods = "/" + storegatev1.PaymentService_ServiceDesc.ServiceName + "/"

// bindUnary binds a PaymentService call to its caller: it authenticates
// the caller from its certificate (paymentCaller), refuses a request for a
// lane the caller may not act on (checkLane), and hands the handler the
// gateway.Caller in the context. A refusal is Unauthenticated or
// PermissionDenied, logged, and reaches no handler.
func (srv *Server) bindUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !strings.HasPrefix(info.FullMethod, paymentMethods) {
		return handler(ctx, req)
	}
	c, err := srv.paymentCaller(ctx)
	if err == nil {
		err = srv.checkLane(c, req)
	}
	if err != nil {
		return nil, srv.refuse(info.FullMethod, c, err)
	}
	return handler(withCaller(ctx, c), req)
}

// bindStream is bindUnary for PaymentService's streams: the caller is
// authenticated when the stream opens, and each request it receives is
// checked as it arrives, before the handler sees it.
func (srv *Server) bindStream(s any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !strings.HasPrefix(info.FullMethod, paymentMethods) {
		return handler(s, ss)
	}
	c, err := srv.paymentCaller(ss.Context())
	if err != nil {
		return srv.refuse(info.FullMethod, c, err)
	}
	return handler(s, &boundStream{ServerStream: ss, ctx: withCaller(ss.Context(), c), check: func(req any) error {
		if err := srv.checkLane(c, req); err != nil {
			return srv.refuse(info.FullMethod, c, err)
		}
		return nil
	}})
}

// boundStream is a stream whose context carries its caller and whose
// requests are checked as they are received.
type boundStream struct {
	grpc.ServerStream
	ctx   context.Context
	check func(req any) error
}

func (s *boundStream) Context() context.Context { return s.ctx }

func (s *boundStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.check(m)
}

// operatorUnary takes admin socket calls from the operators its peer
// credentials name, and logs each with who made it and how it ended.
func (srv *Server) operatorUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	c, err := operatorCaller(ctx)
	if err != nil {
		return nil, srv.refuse(info.FullMethod, c, err)
	}
	res, err := handler(withCaller(ctx, c), req)
	srv.log().Info("admin call", "method", info.FullMethod, "caller", c.ID, "code", status.Code(err).String())
	return res, err
}

// operatorStream is operatorUnary for streams (ExportAudit).
func (srv *Server) operatorStream(s any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	c, err := operatorCaller(ss.Context())
	if err != nil {
		return srv.refuse(info.FullMethod, c, err)
	}
	err = handler(s, &boundStream{ServerStream: ss, ctx: withCaller(ss.Context(), c), check: func(any) error { return nil }})
	srv.log().Info("admin call", "method", info.FullMethod, "caller", c.ID, "code", status.Code(err).String())
	return err
}

// refuse logs a refused call and returns its status.
func (srv *Server) refuse(method string, c gateway.Caller, err error) error {
	st := wire.Status(err)
	srv.log().Warn("call refused", "method", method, "caller", c.String(), "code", status.Code(st).String(), "err", status.Convert(st).Message())
	return st
}

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
