package grpcserver

import (
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// modeOf and reasonOf are the tables between domain and wire enums.
var modeOf = map[gateway.Mode]storegatev1.DecisionMode{
	gateway.ModeOnline:  storegatev1.DecisionMode_DECISION_MODE_ONLINE,
	gateway.ModeOffline: storegatev1.DecisionMode_DECISION_MODE_OFFLINE,
	gateway.ModeLocal:   storegatev1.DecisionMode_DECISION_MODE_UNSPECIFIED,
}

// ReasonToProto converts a decline reason. The domain's values mirror the
// wire enum's, which TestReasonTable checks name by name.
func ReasonToProto(r gateway.Reason) storegatev1.DeclineReason {
	return storegatev1.DeclineReason(r)
}

// ReasonFromProto converts a wire decline reason.
func ReasonFromProto(r storegatev1.DeclineReason) gateway.Reason {
	return gateway.Reason(r)
}

// LinesFromProto converts basket lines.
func LinesFromProto(in []*storegatev1.BasketLine) []gateway.Line {
	out := make([]gateway.Line, len(in))
	for i, l := range in {
		out[i] = gateway.Line{SKU: l.GetSku(), Category: l.GetCategory(), Quantity: l.GetQuantity(), UnitPrice: l.GetUnitPrice()}
	}
	return out
}

// LinesToProto converts basket lines.
func LinesToProto(in []gateway.Line) []*storegatev1.BasketLine {
	out := make([]*storegatev1.BasketLine, len(in))
	for i, l := range in {
		out[i] = &storegatev1.BasketLine{Sku: l.SKU, Category: l.Category, Quantity: l.Quantity, UnitPrice: l.UnitPrice}
	}
	return out
}

func decisionToProto(d *gateway.Decision) *storegatev1.Decision {
	out := &storegatev1.Decision{
		Outcome:          storegatev1.Outcome_OUTCOME_DECLINED,
		Reason:           ReasonToProto(d.Reason),
		Rule:             d.Rule,
		Mode:             modeOf[d.Mode],
		AuthorizationId:  d.AuthorizationID,
		SettlementId:     d.SettlementID,
		Amount:           d.Amount,
		Currency:         d.Currency,
		TokenFingerprint: d.TokenFingerprint,
		AccountHint:      MaskAccount(d.Account),
		DecidedAt:        timestamppb.New(d.DecidedAt),
		Message:          d.Message,
	}
	if d.Approved {
		out.Outcome = storegatev1.Outcome_OUTCOME_APPROVED
	}
	return out
}

// MaskAccount keeps the last characters of an account id and masks the rest,
// so that a receipt or a POS screen can show which account paid without
// naming it.
func MaskAccount(a string) string {
	if a == "" {
		return ""
	}
	keep := 4
	if len(a) <= 6 {
		keep = 1
	}
	return strings.Repeat("*", len(a)-keep) + a[len(a)-keep:]
}

var scanKindOf = map[gateway.ScanKind]storegatev1.ScanKind{
	gateway.ScanUnknown:      storegatev1.ScanKind_SCAN_KIND_UNKNOWN,
	gateway.ScanPaymentToken: storegatev1.ScanKind_SCAN_KIND_PAYMENT_TOKEN,
	gateway.ScanPaymentCode:  storegatev1.ScanKind_SCAN_KIND_PAYMENT_CODE,
	gateway.ScanProduct:      storegatev1.ScanKind_SCAN_KIND_PRODUCT,
}

func scanToProto(ev gateway.ScanEvent) *storegatev1.Scan {
	out := &storegatev1.Scan{
		Lane:        ev.Lane,
		Kind:        scanKindOf[ev.Kind],
		ScanId:      ev.ScanID,
		Code:        ev.Code,
		Fingerprint: ev.Fingerprint,
		Symbology:   ev.Symbology,
		ScannedAt:   timestamppb.New(ev.ScannedAt),
	}
	if !ev.ExpiresAt.IsZero() {
		out.ExpiresAt = timestamppb.New(ev.ExpiresAt)
	}
	return out
}

func scannerToProto(s gateway.ScannerStatus) *storegatev1.ScannerStatus {
	state := storegatev1.ScannerState_SCANNER_STATE_DOWN
	if s.Up {
		state = storegatev1.ScannerState_SCANNER_STATE_UP
	}
	return &storegatev1.ScannerStatus{
		Lane:      s.Lane,
		Device:    s.Device,
		State:     state,
		Since:     timestamppb.New(s.Since),
		Frames:    s.Frames,
		Dropped:   s.Dropped,
		LastError: s.LastError,
	}
}
