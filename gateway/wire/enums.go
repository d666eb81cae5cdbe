package wire

import (
	"fmt"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// enum is the one table between a domain enum and a wire enum: both
// directions read it, so they cannot disagree.
type enum[D, W comparable] struct {
	toWire   map[D]W
	toDomain map[W]D
}

// newEnum builds both directions from pairs. Two domain values for one wire
// value would make the way back ambiguous: that is a bug in this package,
// found when the program starts.
func newEnum[D, W comparable](pairs map[D]W) enum[D, W] {
	e := enum[D, W]{toWire: pairs, toDomain: make(map[W]D, len(pairs))}
	for d, w := range pairs {
		if prev, dup := e.toDomain[w]; dup {
			panic(fmt.Sprintf("wire: %v and %v both map to %v", prev, d, w))
		}
		e.toDomain[w] = d
	}
	return e
}

// wire returns d's wire value; the zero value (UNSPECIFIED) for a value
// the table does not name.
func (e enum[D, W]) wire(d D) W { return e.toWire[d] }

// domain returns w's domain value, or false for a value the table does not
// name.
func (e enum[D, W]) domain(w W) (D, bool) {
	d, ok := e.toDomain[w]
	return d, ok
}

// domainOrName returns w's domain value from e, or for a value e does not
// name, w's wire name as a domain value: a string-valued domain enum then
// refuses it by name rather than taking it for another value.
func domainOrName[D ~string, W interface {
	comparable
	String() string
}](e enum[D, W], w W) D {
	if d, ok := e.domain(w); ok {
		return d
	}
	return D(w.String())
}

// The tables. Every zero wire value (UNSPECIFIED) is unnamed: a value the
// sender did not set is never taken for one it meant.
var (
	modes = newEnum(map[gateway.Mode]storegatev1.DecisionMode{
		gateway.ModeOnline:  storegatev1.DecisionMode_DECISION_MODE_ONLINE,
		gateway.ModeOffline: storegatev1.DecisionMode_DECISION_MODE_OFFLINE,
		gateway.ModeLocal:   storegatev1.DecisionMode_DECISION_MODE_LOCAL,
	})
	settlementKinds = newEnum(map[gateway.SettlementKind]storegatev1.SettlementKind{
		gateway.SettlementCapture:  storegatev1.SettlementKind_SETTLEMENT_KIND_CAPTURE,
		gateway.SettlementReversal: storegatev1.SettlementKind_SETTLEMENT_KIND_REVERSAL,
	})
	settlementStatuses = newEnum(map[gateway.SettlementStatus]storegatev1.SettlementStatus{
		gateway.SettlementAccepted:  storegatev1.SettlementStatus_SETTLEMENT_STATUS_ACCEPTED,
		gateway.SettlementDuplicate: storegatev1.SettlementStatus_SETTLEMENT_STATUS_DUPLICATE,
		gateway.SettlementRefused:   storegatev1.SettlementStatus_SETTLEMENT_STATUS_REFUSED,
	})
	// The wire has one kind for policies: a store's own policy and the
	// chain's differ by the store_id inside the document.
	documentKinds = newEnum(map[gateway.DocumentKind]storegatev1.DocumentKind{
		gateway.DocumentKeyset: storegatev1.DocumentKind_DOCUMENT_KIND_KEYSET,
		gateway.DocumentPolicy: storegatev1.DocumentKind_DOCUMENT_KIND_POLICY,
		gateway.DocumentFreeze: storegatev1.DocumentKind_DOCUMENT_KIND_FREEZE_LIST,
	})
	scanKinds = newEnum(map[gateway.ScanKind]storegatev1.ScanKind{
		gateway.ScanUnknown:      storegatev1.ScanKind_SCAN_KIND_UNKNOWN,
		gateway.ScanPaymentToken: storegatev1.ScanKind_SCAN_KIND_PAYMENT_TOKEN,
		gateway.ScanPaymentCode:  storegatev1.ScanKind_SCAN_KIND_PAYMENT_CODE,
		gateway.ScanProduct:      storegatev1.ScanKind_SCAN_KIND_PRODUCT,
	})
	// The breaker's states as the wire names them for people: whether the
	// gateway asks central.
	centralStates = newEnum(map[gateway.BreakerState]storegatev1.CentralState{
		gateway.BreakerClosed:   storegatev1.CentralState_CENTRAL_STATE_ONLINE,
		gateway.BreakerOpen:     storegatev1.CentralState_CENTRAL_STATE_OFFLINE,
		gateway.BreakerHalfOpen: storegatev1.CentralState_CENTRAL_STATE_PROBING,
	})
)

// ReasonToProto converts a decline reason. The domain's values are the wire
// enum's numbers, which TestReasonTable checks name by name, so this is the
// one place a reason crosses by number.
func ReasonToProto(r gateway.Reason) storegatev1.DeclineReason {
	return storegatev1.DeclineReason(r)
}

// ReasonFromProto converts a wire decline reason. A number this build does
// not know stays that number, whose name is "unknown".
func ReasonFromProto(r storegatev1.DeclineReason) gateway.Reason {
	return gateway.Reason(r)
}

// ModeToProto converts who decided; UNSPECIFIED for a mode the table does
// not name.
func ModeToProto(m gateway.Mode) storegatev1.DecisionMode { return modes.wire(m) }

// ModeFromProto converts a wire decision mode. UNSPECIFIED, or a value this
// build does not know, comes back under its wire name, which names no mode
// the domain has.
func ModeFromProto(m storegatev1.DecisionMode) gateway.Mode { return domainOrName(modes, m) }

// SettlementKindToProto converts a settlement kind; UNSPECIFIED for one the
// table does not name.
func SettlementKindToProto(k gateway.SettlementKind) storegatev1.SettlementKind {
	return settlementKinds.wire(k)
}

// SettlementKindFromProto converts a wire settlement kind. A kind this build
// does not know comes back under its wire name, so that the domain refuses
// it by name rather than taking it for another.
func SettlementKindFromProto(k storegatev1.SettlementKind) gateway.SettlementKind {
	return domainOrName(settlementKinds, k)
}

// SettlementStatusToProto converts central's answer for a settlement;
// UNSPECIFIED for one the table does not name.
func SettlementStatusToProto(s gateway.SettlementStatus) storegatev1.SettlementStatus {
	return settlementStatuses.wire(s)
}

// SettlementStatusFromProto converts a wire settlement status, or returns
// false for one this build does not know.
func SettlementStatusFromProto(s storegatev1.SettlementStatus) (gateway.SettlementStatus, bool) {
	return settlementStatuses.domain(s)
}

// DocumentKindToProto converts a signed document's kind; UNSPECIFIED for
// one the table does not name.
func DocumentKindToProto(k gateway.DocumentKind) storegatev1.DocumentKind {
	return documentKinds.wire(k)
}

// DocumentKindFromProto converts a wire document kind. A kind this build
// does not know comes back under its wire name, for the domain to refuse
// and log by name.
func DocumentKindFromProto(k storegatev1.DocumentKind) gateway.DocumentKind {
	return domainOrName(documentKinds, k)
}

// ScanKindToProto converts what a scanner read; UNSPECIFIED for a kind the
// table does not name.
func ScanKindToProto(k gateway.ScanKind) storegatev1.ScanKind { return scanKinds.wire(k) }

// ScanKindFromProto converts a wire scan kind, or returns false for one
// this build does not know.
func ScanKindFromProto(k storegatev1.ScanKind) (gateway.ScanKind, bool) {
	return scanKinds.domain(k)
}

// CentralStateToProto converts the breaker's state; UNSPECIFIED for one the
// table does not name.
func CentralStateToProto(s gateway.BreakerState) storegatev1.CentralState {
	return centralStates.wire(s)
}

// CentralStateFromProto converts a wire central state to the breaker's, or
// returns false for one this build does not know.
func CentralStateFromProto(s storegatev1.CentralState) (gateway.BreakerState, bool) {
	return centralStates.domain(s)
}
