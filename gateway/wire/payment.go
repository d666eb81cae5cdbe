package wire

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

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

// AuthorizeRequestFromProto converts a POS's Authorize request. The domain
// validates it.
func AuthorizeRequestFromProto(in *storegatev1.AuthorizeRequest) *gateway.AuthorizeRequest {
	return &gateway.AuthorizeRequest{
		Lane:     in.GetLane(),
		POSTxnID: in.GetPosTransactionId(),
		Lines:    LinesFromProto(in.GetLines()),
		Total:    in.GetTotal(),
		Currency: in.GetCurrency(),
		Token:    in.GetToken(),
		ScanID:   in.GetScanId(),
	}
}

// AuthorizeResultToProto converts a decision for the POS that asked: the
// account only as a masked hint, the token only as its fingerprint.
func AuthorizeResultToProto(res *gateway.AuthorizeResult) *storegatev1.AuthorizeResponse {
	return &storegatev1.AuthorizeResponse{Decision: DecisionToProto(&res.Decision), Replayed: res.Replayed}
}

// DecisionToProto converts a decision for a POS, the account masked.
func DecisionToProto(d *gateway.Decision) *storegatev1.Decision {
	out := &storegatev1.Decision{
		Outcome:          storegatev1.Outcome_OUTCOME_DECLINED,
		Reason:           ReasonToProto(d.Reason),
		Rule:             d.Rule,
		Mode:             ModeToProto(d.Mode),
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

// ReverseRequestFromProto converts a Reverse request. The domain validates
// it.
func ReverseRequestFromProto(in *storegatev1.ReverseRequest) *gateway.ReverseRequest {
	return &gateway.ReverseRequest{Lane: in.GetLane(), POSTxnID: in.GetPosTransactionId(), Reason: in.GetReason()}
}

// ReverseResultToProto converts a reversal's answer.
func ReverseResultToProto(res *gateway.ReverseResult) *storegatev1.ReverseResponse {
	return &storegatev1.ReverseResponse{
		ReversalId:      res.Reversal.ID,
		Amount:          res.Reversal.Amount,
		Currency:        res.Reversal.Currency,
		AlreadyReversed: res.AlreadyReversed,
	}
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

// ScanToProto converts a scan for the lane's POS. The event already holds
// a payment credential only as a scan id and a masked fingerprint.
func ScanToProto(ev gateway.ScanEvent) *storegatev1.Scan {
	out := &storegatev1.Scan{
		Lane:        ev.Lane,
		Kind:        ScanKindToProto(ev.Kind),
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

// ScannerToProto converts a lane scanner's state.
func ScannerToProto(s gateway.ScannerStatus) *storegatev1.ScannerStatus {
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

// GatewayStatusToProto converts the gateway's state as of now (the outbox's
// oldest age is measured against it). The daemon's own facts (version,
// start time, scanners) are the caller's to add.
func GatewayStatusToProto(st *gateway.Status, now time.Time) *storegatev1.GetStatusResponse {
	docs := st.Documents
	out := &storegatev1.GetStatusResponse{
		StoreId:             st.StoreID,
		CentralCalled:       st.CentralCalled,
		CentralReachable:    st.CentralReachable,
		OutboxDepth:         st.Outbox.Depth,
		OfflineExposure:     st.Outbox.OfflineExposure,
		KeysetVersion:       st.KeysetVersion,
		PolicyVersion:       docs.Policy,
		StorePolicyVersion:  docs.StorePolicy,
		FreezeVersion:       docs.Freeze,
		AuditRecords:        st.AuditRecords,
		DisputedSettlements: st.Outbox.Disputed,
		CentralState:        CentralStateToProto(st.Breaker.State),
		BreakerOpened:       st.Breaker.Opened,

		OfflineMaxAmountPerTransaction: st.OfflineCaps.MaxAmountPerTransaction,
		OfflineMaxAmountPerAccount:     st.OfflineCaps.MaxAmountPerAccount,
		OfflineMaxStoreExposure:        st.OfflineCaps.MaxStoreExposure,
	}
	if !st.Breaker.Since.IsZero() {
		out.CentralStateSince = timestamppb.New(st.Breaker.Since)
	}
	if !st.LastCentralContact.IsZero() {
		out.LastCentralContact = timestamppb.New(st.LastCentralContact)
	}
	if !st.Outbox.Oldest.IsZero() {
		out.OutboxOldestAge = durationpb.New(now.Sub(st.Outbox.Oldest))
	}
	return out
}
