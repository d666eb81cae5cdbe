package grpcserver

import (
	"context"
	"fmt"
	"regexp"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// Observer is told what the server did, for metrics. Its methods are called
// on the request path and must be quick and never block.
type Observer interface {
	// ObserveAuthorize is called once per Authorize call, after it ended.
	ObserveAuthorize(AuthorizeObservation)
	// ObservePanic is called when a handler panicked; the call was answered
	// with codes.Internal.
	ObservePanic(method string)
}

// AuthorizeObservation is one Authorize call as metrics see it.
type AuthorizeObservation struct {
	// Code is the call's gRPC code: OK when a decision was returned.
	Code codes.Code
	// Outcome is "approved" or "declined"; empty when Code is not OK.
	Outcome string
	// Reason is the decline reason's name ("none" for an approval).
	Reason string
	// Mode is who decided: "online", "offline" or "local".
	Mode string
	// Replayed is true when the stored answer to an earlier identical
	// request was returned: no new decision was made.
	Replayed bool
	// Took is the call's duration as the server saw it.
	Took time.Duration
}

const authorizeMethod = storegatev1.PaymentService_Authorize_FullMethodName

func (o Options) observeUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if o.Observer == nil || info.FullMethod != authorizeMethod {
		return handler(ctx, req)
	}
	start := o.Now()
	res, err := handler(ctx, req)
	obs := AuthorizeObservation{Code: status.Code(err), Took: o.Now().Sub(start)}
	if r, ok := res.(*storegatev1.AuthorizeResponse); ok && err == nil {
		d := r.GetDecision()
		obs.Outcome = "declined"
		if d.GetOutcome() == storegatev1.Outcome_OUTCOME_APPROVED {
			obs.Outcome = "approved"
		}
		obs.Reason = ReasonFromProto(d.GetReason()).String()
		obs.Mode = string(ModeFromProto(d.GetMode()))
		obs.Replayed = r.GetReplayed()
	}
	o.Observer.ObserveAuthorize(obs)
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

// ModeFromProto converts a wire decision mode: the inverse of the table in
// convert.go, where a local decision travels as UNSPECIFIED.
func ModeFromProto(m storegatev1.DecisionMode) gateway.Mode {
	switch m {
	case storegatev1.DecisionMode_DECISION_MODE_ONLINE:
		return gateway.ModeOnline
	case storegatev1.DecisionMode_DECISION_MODE_OFFLINE:
		return gateway.ModeOffline
	default:
		return gateway.ModeLocal
	}
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
