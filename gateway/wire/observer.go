package wire

import (
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	storegatev1 "storegate/proto/storegate/v1"
)

// Observer is told what storegated's gRPC server did, for metrics: the
// server calls it, package metrics implements it, and neither imports the
// other. Its methods are called on the request path and must be quick and
// never block.
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

// NewAuthorizeObservation describes an Authorize call that took took and
// ended with res and err; res is read only when err is nil.
func NewAuthorizeObservation(res *storegatev1.AuthorizeResponse, err error, took time.Duration) AuthorizeObservation {
	obs := AuthorizeObservation{Code: status.Code(err), Took: took}
	if err != nil || res == nil {
		return obs
	}
	d := res.GetDecision()
	obs.Outcome = "declined"
	if d.GetOutcome() == storegatev1.Outcome_OUTCOME_APPROVED {
		obs.Outcome = "approved"
	}
	obs.Reason = ReasonFromProto(d.GetReason()).String()
	obs.Mode = string(ModeFromProto(d.GetMode()))
	obs.Replayed = res.GetReplayed()
	return obs
}
