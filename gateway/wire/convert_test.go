package wire_test

import (
	"crypto/sha256"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

var lines = []gateway.Line{
	{SKU: "4901234567894", Category: "food", Quantity: 2, UnitPrice: 290},
	{SKU: "gift-5000", Category: "giftcard", Quantity: 1, UnitPrice: 5000},
}

// Both sides of the link to central convert through the same functions:
// what the gateway sends is what central reads.
func TestCentralRequest_RoundTrip(t *testing.T) {
	req := &gateway.CentralRequest{StoreID: "store-0001", Lane: "3", POSTxnID: "pos-1001", Credential: "SGP1:AB", Amount: 5580, Currency: "JPY", Lines: lines}
	if got := wire.CentralRequestFromProto(wire.CentralRequestToProto(req)); !reflect.DeepEqual(got, req) {
		t.Errorf("got %+v, want %+v", got, req)
	}
}

func TestCentralResult_RoundTrip(t *testing.T) {
	for r := gateway.Reason(0); r < 64; r++ {
		if r.String() == "unknown" {
			continue
		}
		res := &gateway.CentralResult{Approved: r == gateway.ReasonNone, Reason: r, AuthorizationID: "auth-1", Account: "acct-0001", Message: "m"}
		if got := wire.CentralResultFromProto(wire.CentralResultToProto(res)); !reflect.DeepEqual(got, res) {
			t.Errorf("%s: got %+v, want %+v", r, got, res)
		}
	}
}

func TestSettlement_RoundTrip(t *testing.T) {
	batch := []gateway.Settlement{
		{ID: "stl-1", Seq: 7, Kind: gateway.SettlementCapture, StoreID: "store-0001", Lane: "1", POSTxnID: "pos-1", Account: "acct-0001",
			TokenID: []byte("0123456789abcdef"), Amount: 1200, Currency: "JPY", Mode: gateway.ModeOffline, CreatedAt: t0},
		{ID: "stl-2", Seq: 8, Kind: gateway.SettlementCapture, StoreID: "store-0001", Lane: "2", POSTxnID: "pos-2", AuthorizationID: "auth-9",
			Account: "acct-0002", Amount: 800, Currency: "JPY", Mode: gateway.ModeOnline, CreatedAt: t0.Add(time.Second)},
		{ID: "stl-3", Seq: 9, Kind: gateway.SettlementReversal, StoreID: "store-0001", Lane: "2", POSTxnID: "pos-2", AuthorizationID: "auth-9",
			Account: "acct-0002", Amount: 800, Currency: "JPY", Mode: gateway.ModeOnline, CreatedAt: t0.Add(2 * time.Second), ReversesID: "stl-2"},
	}
	in := wire.SubmitSettlementsToProto("store-0001", batch)
	if in.GetStoreId() != "store-0001" {
		t.Errorf("store id %q", in.GetStoreId())
	}
	if got := wire.SubmitSettlementsFromProto(in); !reflect.DeepEqual(got, batch) {
		t.Errorf("got %+v\nwant %+v", got, batch)
	}
	t.Run("NoCreatedAt", func(t *testing.T) {
		if got := wire.SettlementFromProto(&storegatev1.Settlement{Id: "stl-4"}); !got.CreatedAt.IsZero() {
			t.Errorf("created at %v, want zero", got.CreatedAt)
		}
	})
	t.Run("UnknownKindKeepsItsName", func(t *testing.T) {
		got := wire.SettlementFromProto(&storegatev1.Settlement{Id: "stl-5", Kind: storegatev1.SettlementKind_SETTLEMENT_KIND_UNSPECIFIED})
		if got.Kind != "SETTLEMENT_KIND_UNSPECIFIED" {
			t.Errorf("kind %q, want the wire name for central to refuse", got.Kind)
		}
	})
}

func TestAcks_RoundTrip(t *testing.T) {
	acks := []gateway.SettlementAck{
		{ID: "stl-1", Status: gateway.SettlementAccepted},
		{ID: "stl-2", Status: gateway.SettlementDuplicate},
		{ID: "stl-3", Status: gateway.SettlementRefused, Message: "insufficient funds"},
	}
	if got := wire.AcksFromProto(wire.AcksToProto(acks)); !reflect.DeepEqual(got, acks) {
		t.Errorf("got %+v, want %+v", got, acks)
	}
	t.Run("UnknownStatusStaysQueued", func(t *testing.T) {
		res := &storegatev1.SubmitSettlementsResponse{Acks: []*storegatev1.SettlementAck{
			{SettlementId: "stl-1", Status: storegatev1.SettlementStatus_SETTLEMENT_STATUS_ACCEPTED},
			{SettlementId: "stl-2", Status: storegatev1.SettlementStatus_SETTLEMENT_STATUS_UNSPECIFIED},
			{SettlementId: "stl-3", Status: storegatev1.SettlementStatus(9)},
		}}
		got := wire.AcksFromProto(res)
		if len(got) != 1 || got[0].ID != "stl-1" {
			t.Errorf("got %+v, want only stl-1 acknowledged", got)
		}
	})
}

func TestWatchPolicy_RoundTrip(t *testing.T) {
	have := gateway.DocumentVersions{Keyset: 4, Policy: 9, StorePolicy: 2, Freeze: 31}
	store, got := wire.WatchPolicyFromProto(wire.WatchPolicyToProto("store-0001", have))
	if store != "store-0001" || got != have {
		t.Errorf("got %q %+v, want store-0001 %+v", store, got, have)
	}
}

func TestPublishedDocument_RoundTrip(t *testing.T) {
	for _, kind := range []gateway.DocumentKind{gateway.DocumentKeyset, gateway.DocumentPolicy, gateway.DocumentFreeze} {
		d := &gateway.PublishedDocument{Kind: kind, Version: 3, Raw: []byte{0xd2, 0x84}}
		m := wire.PublishedDocumentToProto(d, t0)
		if !m.GetPublishedAt().AsTime().Equal(t0) {
			t.Errorf("%s: published at %v, want %v", kind, m.GetPublishedAt().AsTime(), t0)
		}
		if got := wire.PublishedDocumentFromProto(m); !reflect.DeepEqual(got, d) {
			t.Errorf("%s: got %+v, want %+v", kind, got, d)
		}
	}
	got := wire.PublishedDocumentFromProto(&storegatev1.WatchPolicyResponse{Kind: storegatev1.DocumentKind(7), Version: 1})
	if got.Kind != "7" {
		t.Errorf("unknown kind: got %q, want its wire name for the gateway to refuse", got.Kind)
	}
}

func TestLines_RoundTrip(t *testing.T) {
	if got := wire.LinesFromProto(wire.LinesToProto(lines)); !reflect.DeepEqual(got, lines) {
		t.Errorf("got %+v, want %+v", got, lines)
	}
}

func TestAuthorizeRequestFromProto(t *testing.T) {
	in := &storegatev1.AuthorizeRequest{Lane: "1", PosTransactionId: "pos-1", Lines: wire.LinesToProto(lines), Total: 5580, Currency: "JPY",
		Credential: &storegatev1.AuthorizeRequest_ScanId{ScanId: "4fb9918c33d5bc47"}}
	want := &gateway.AuthorizeRequest{Lane: "1", POSTxnID: "pos-1", Lines: lines, Total: 5580, Currency: "JPY", ScanID: "4fb9918c33d5bc47"}
	if got := wire.AuthorizeRequestFromProto(in); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	in.Credential = &storegatev1.AuthorizeRequest_Token{Token: "SGP1:AB"}
	want.ScanID, want.Token = "", "SGP1:AB"
	if got := wire.AuthorizeRequestFromProto(in); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestDecisionToProto(t *testing.T) {
	t.Run("Approved", func(t *testing.T) {
		d := &gateway.Decision{Approved: true, Mode: gateway.ModeOffline, SettlementID: "stl-1", Amount: 1200, Currency: "JPY",
			TokenFingerprint: "fp-ab12", Account: "acct-0001", DecidedAt: t0}
		res := wire.AuthorizeResultToProto(&gateway.AuthorizeResult{Decision: *d, Replayed: true})
		got := res.GetDecision()
		if got.GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED || got.GetMode() != storegatev1.DecisionMode_DECISION_MODE_OFFLINE ||
			got.GetReason() != storegatev1.DeclineReason_DECLINE_REASON_UNSPECIFIED || !res.GetReplayed() {
			t.Errorf("got %v", res)
		}
		if got.GetAccountHint() != "*****0001" || strings.Contains(res.String(), "acct-0001") {
			t.Errorf("the account is not masked: %v", res)
		}
		if !got.GetDecidedAt().AsTime().Equal(t0) {
			t.Errorf("decided at %v, want %v", got.GetDecidedAt().AsTime(), t0)
		}
	})
	t.Run("DeclinedLocally", func(t *testing.T) {
		got := wire.DecisionToProto(&gateway.Decision{Reason: gateway.ReasonReplayed, Rule: "token.spent", Mode: gateway.ModeLocal, Message: "m"})
		if got.GetOutcome() != storegatev1.Outcome_OUTCOME_DECLINED || got.GetReason() != storegatev1.DeclineReason_DECLINE_REASON_REPLAYED ||
			got.GetMode() != storegatev1.DecisionMode_DECISION_MODE_LOCAL || got.GetRule() != "token.spent" || got.GetAccountHint() != "" {
			t.Errorf("got %v", got)
		}
	})
}

func TestMaskAccount(t *testing.T) {
	for in, want := range map[string]string{
		"":              "",
		"a":             "a",
		"acct-1":        "*****1",
		"acct-0001":     "*****0001",
		"0123456789abc": "*********9abc",
	} {
		if got := wire.MaskAccount(in); got != want {
			t.Errorf("MaskAccount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReverse_Convert(t *testing.T) {
	req := wire.ReverseRequestFromProto(&storegatev1.ReverseRequest{Lane: "1", PosTransactionId: "pos-1", Reason: "returned"})
	if want := (&gateway.ReverseRequest{Lane: "1", POSTxnID: "pos-1", Reason: "returned"}); !reflect.DeepEqual(req, want) {
		t.Errorf("got %+v, want %+v", req, want)
	}
	res := wire.ReverseResultToProto(&gateway.ReverseResult{Reversal: gateway.Reversal{ID: "stl-9", Amount: 1200, Currency: "JPY"}, AlreadyReversed: true})
	if want := (&storegatev1.ReverseResponse{ReversalId: "stl-9", Amount: 1200, Currency: "JPY", AlreadyReversed: true}); !proto.Equal(res, want) {
		t.Errorf("got %v, want %v", res, want)
	}
}

func TestOutboxToProto(t *testing.T) {
	l := &gateway.OutboxListing{
		Stats: gateway.OutboxStats{Depth: 5, Disputed: 3},
		Pending: []gateway.Settlement{{Seq: 1, ID: "stl-1", Kind: gateway.SettlementCapture, Mode: gateway.ModeOffline, Lane: "1", POSTxnID: "pos-1",
			Amount: 1200, Currency: "JPY", Account: "acct-0001", CreatedAt: t0}},
		Disputed: []gateway.DisputedSettlement{{Settlement: gateway.Settlement{Seq: 2, ID: "stl-2", Kind: gateway.SettlementReversal, Mode: gateway.ModeOnline,
			Account: "acct-0002", ReversesID: "stl-0", CreatedAt: t0}, Message: "no such capture", RefusedAt: t0.Add(time.Minute)}},
	}
	got := wire.OutboxToProto(l)
	if got.GetPendingTotal() != 5 || got.GetDisputedTotal() != 3 || len(got.GetPending()) != 1 || len(got.GetDisputed()) != 1 {
		t.Fatalf("got %v", got)
	}
	p := got.GetPending()[0]
	if p.GetSettlementId() != "stl-1" || p.GetKind() != storegatev1.SettlementKind_SETTLEMENT_KIND_CAPTURE ||
		p.GetMode() != storegatev1.DecisionMode_DECISION_MODE_OFFLINE || p.GetAccountHint() != "*****0001" {
		t.Errorf("pending: got %v", p)
	}
	d := got.GetDisputed()[0]
	if d.GetSettlement().GetReversesId() != "stl-0" || d.GetSettlement().GetKind() != storegatev1.SettlementKind_SETTLEMENT_KIND_REVERSAL ||
		d.GetMessage() != "no such capture" || !d.GetRefusedAt().AsTime().Equal(t0.Add(time.Minute)) {
		t.Errorf("disputed: got %v", d)
	}
	if s := got.String(); strings.Contains(s, "acct-0001") || strings.Contains(s, "acct-0002") {
		t.Errorf("an account is not masked: %s", s)
	}
}

func TestGatewayStatusToProto(t *testing.T) {
	st := &gateway.Status{
		StoreID:            "store-0001",
		CentralReachable:   true,
		LastCentralContact: t0.Add(-3 * time.Second),
		Breaker:            gateway.BreakerStatus{State: gateway.BreakerHalfOpen, Since: t0.Add(-time.Second), Opened: 2},
		OfflineCaps:        gateway.OfflineCaps{MaxAmountPerTransaction: 3000, MaxAmountPerAccount: 6000, MaxStoreExposure: 30000},
		Outbox:             gateway.OutboxStats{Depth: 7, Oldest: t0.Add(-90 * time.Second), OfflineExposure: 5800, Disputed: 1},
		KeysetVersion:      4,
		AuditRecords:       12,
		Documents:          gateway.DocumentVersions{Keyset: 4, Policy: 9, StorePolicy: 2, Freeze: 31},
	}
	got := wire.GatewayStatusToProto(st, t0)
	if got.GetStoreId() != "store-0001" || !got.GetCentralReachable() || got.GetOutboxDepth() != 7 || got.GetOfflineExposure() != 5800 ||
		got.GetDisputedSettlements() != 1 || got.GetKeysetVersion() != 4 || got.GetAuditRecords() != 12 ||
		got.GetPolicyVersion() != 9 || got.GetStorePolicyVersion() != 2 || got.GetFreezeVersion() != 31 ||
		got.GetCentralState() != storegatev1.CentralState_CENTRAL_STATE_PROBING || got.GetBreakerOpened() != 2 ||
		got.GetOfflineMaxAmountPerTransaction() != 3000 || got.GetOfflineMaxAmountPerAccount() != 6000 || got.GetOfflineMaxStoreExposure() != 30000 {
		t.Errorf("got %v", got)
	}
	if age := got.GetOutboxOldestAge().AsDuration(); age != 90*time.Second {
		t.Errorf("outbox oldest age %v, want 90s", age)
	}
	if !got.GetLastCentralContact().AsTime().Equal(st.LastCentralContact) || !got.GetCentralStateSince().AsTime().Equal(st.Breaker.Since) {
		t.Errorf("times: got %v", got)
	}
	t.Run("NothingYet", func(t *testing.T) {
		got := wire.GatewayStatusToProto(&gateway.Status{}, t0)
		if got.GetOutboxOldestAge() != nil || got.GetLastCentralContact() != nil || got.GetCentralStateSince() != nil {
			t.Errorf("zero times should be left out: %v", got)
		}
	})
}

func TestScanToProto(t *testing.T) {
	got := wire.ScanToProto(gateway.ScanEvent{Lane: "1", Kind: gateway.ScanPaymentToken, ScanID: "4fb9", Fingerprint: "SGP1:…ab12", Symbology: "]Q1", ScannedAt: t0, ExpiresAt: t0.Add(2 * time.Minute)})
	if got.GetKind() != storegatev1.ScanKind_SCAN_KIND_PAYMENT_TOKEN || got.GetScanId() != "4fb9" || got.GetCode() != "" ||
		!got.GetExpiresAt().AsTime().Equal(t0.Add(2*time.Minute)) {
		t.Errorf("got %v", got)
	}
	if got := wire.ScanToProto(gateway.ScanEvent{Lane: "1", Kind: gateway.ScanProduct, Code: "4901234567894", ScannedAt: t0}); got.GetExpiresAt() != nil {
		t.Errorf("a product scan has no expiry: %v", got)
	}
	up := wire.ScannerToProto(gateway.ScannerStatus{Lane: "1", Up: true, Frames: 3})
	down := wire.ScannerToProto(gateway.ScannerStatus{Lane: "2", LastError: "gone"})
	if up.GetState() != storegatev1.ScannerState_SCANNER_STATE_UP || down.GetState() != storegatev1.ScannerState_SCANNER_STATE_DOWN || down.GetLastError() != "gone" {
		t.Errorf("got %v and %v", up, down)
	}
}

func TestAuditRecordToProto(t *testing.T) {
	raw := []byte(`{"time":"2026-03-01T10:00:00Z","kind":"decision"}`)
	got := wire.AuditRecordToProto(5, raw)
	sum := sha256.Sum256(raw)
	if got.GetSeq() != 5 || string(got.GetHash()) != string(sum[:]) || !got.GetTime().AsTime().Equal(t0) {
		t.Errorf("got %v", got)
	}
	raw[0] = 'X'
	if got.GetRecord()[0] != '{' {
		t.Error("the record shares the caller's bytes: the store's buffer is valid only during the scan")
	}
	if got := wire.AuditRecordToProto(6, []byte("not json")); got.GetTime() != nil {
		t.Errorf("a record without a time: got %v", got.GetTime())
	}
}

func TestAppliedToProto(t *testing.T) {
	got := wire.AppliedToProto(gateway.DocumentFreeze, 4, false)
	if got.GetKind() != storegatev1.DocumentKind_DOCUMENT_KIND_FREEZE_LIST || got.GetVersion() != 4 || !got.GetUnchanged() {
		t.Errorf("got %v", got)
	}
}

func TestNewAuthorizeObservation(t *testing.T) {
	for name, c := range map[string]struct {
		res  *storegatev1.AuthorizeResponse
		err  error
		want wire.AuthorizeObservation
	}{
		"Approved": {
			res:  &storegatev1.AuthorizeResponse{Decision: &storegatev1.Decision{Outcome: storegatev1.Outcome_OUTCOME_APPROVED, Mode: storegatev1.DecisionMode_DECISION_MODE_ONLINE}},
			want: wire.AuthorizeObservation{Code: codes.OK, Outcome: "approved", Reason: "none", Mode: "online", Took: time.Millisecond},
		},
		"ReplayedDecline": {
			res: &storegatev1.AuthorizeResponse{Replayed: true, Decision: &storegatev1.Decision{
				Outcome: storegatev1.Outcome_OUTCOME_DECLINED, Reason: storegatev1.DeclineReason_DECLINE_REASON_REPLAYED, Mode: storegatev1.DecisionMode_DECISION_MODE_LOCAL}},
			want: wire.AuthorizeObservation{Code: codes.OK, Outcome: "declined", Reason: "replayed", Mode: "local", Replayed: true, Took: time.Millisecond},
		},
		"Failed": {
			err:  status.Error(codes.InvalidArgument, "bad basket"),
			want: wire.AuthorizeObservation{Code: codes.InvalidArgument, Took: time.Millisecond},
		},
	} {
		t.Run(name, func(t *testing.T) {
			if got := wire.NewAuthorizeObservation(c.res, c.err, time.Millisecond); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
