package wire_test

import (
	"sort"
	"strings"
	"testing"

	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

// The domain's reasons mirror the wire enum; a reason added to one and not
// the other, or renumbered, fails here.
func TestReasonTable(t *testing.T) {
	for num, name := range storegatev1.DeclineReason_name {
		wireName := strings.ToLower(strings.TrimPrefix(name, "DECLINE_REASON_"))
		got := wire.ReasonFromProto(storegatev1.DeclineReason(num)).String()
		if wireName == "unspecified" {
			wireName = "none"
		}
		if got != wireName {
			t.Errorf("reason %d: domain %q, wire %q", num, got, wireName)
		}
	}
	for r := gateway.Reason(0); r < 64; r++ {
		if r.String() != "unknown" {
			if _, ok := storegatev1.DeclineReason_name[int32(wire.ReasonToProto(r))]; !ok {
				t.Errorf("domain reason %d (%s) has no wire value", r, r)
			}
			if back := wire.ReasonFromProto(wire.ReasonToProto(r)); back != r {
				t.Errorf("reason %s: round trip gave %s", r, back)
			}
		}
	}
	if got := wire.ReasonFromProto(storegatev1.DeclineReason(999)).String(); got != "unknown" {
		t.Errorf("wire reason 999: domain %q, want unknown", got)
	}
}

// enumCase is one enum's table as the test expects it, keyed by the wire
// enum's value names: every name the .proto declares must be listed, with
// the domain value it stands for, or none (unmapped) when the domain has no
// such value.
type enumCase struct {
	name  string
	names map[int32]string // the generated X_name map
	want  map[string]string
	// from converts a wire number, returning the domain value's name and
	// whether the table named it.
	from func(int32) (string, bool)
	// to converts a domain value, named as in want, back to a wire number.
	to func(string) int32
}

const unmapped = ""

func enumCases() []enumCase {
	return []enumCase{
		{
			name:  "DecisionMode",
			names: storegatev1.DecisionMode_name,
			want: map[string]string{
				"DECISION_MODE_UNSPECIFIED": unmapped,
				"DECISION_MODE_ONLINE":      string(gateway.ModeOnline),
				"DECISION_MODE_OFFLINE":     string(gateway.ModeOffline),
				"DECISION_MODE_LOCAL":       string(gateway.ModeLocal),
			},
			from: func(n int32) (string, bool) {
				m := wire.ModeFromProto(storegatev1.DecisionMode(n))
				return string(m), m == gateway.ModeOnline || m == gateway.ModeOffline || m == gateway.ModeLocal
			},
			to: func(d string) int32 { return int32(wire.ModeToProto(gateway.Mode(d))) },
		},
		{
			name:  "SettlementKind",
			names: storegatev1.SettlementKind_name,
			want: map[string]string{
				"SETTLEMENT_KIND_UNSPECIFIED": unmapped,
				"SETTLEMENT_KIND_CAPTURE":     string(gateway.SettlementCapture),
				"SETTLEMENT_KIND_REVERSAL":    string(gateway.SettlementReversal),
			},
			from: func(n int32) (string, bool) {
				k := wire.SettlementKindFromProto(storegatev1.SettlementKind(n))
				return string(k), k == gateway.SettlementCapture || k == gateway.SettlementReversal
			},
			to: func(d string) int32 { return int32(wire.SettlementKindToProto(gateway.SettlementKind(d))) },
		},
		{
			name:  "SettlementStatus",
			names: storegatev1.SettlementStatus_name,
			want: map[string]string{
				"SETTLEMENT_STATUS_UNSPECIFIED": unmapped,
				"SETTLEMENT_STATUS_ACCEPTED":    gateway.SettlementAccepted.String(),
				"SETTLEMENT_STATUS_DUPLICATE":   gateway.SettlementDuplicate.String(),
				"SETTLEMENT_STATUS_REFUSED":     gateway.SettlementRefused.String(),
			},
			from: func(n int32) (string, bool) {
				s, ok := wire.SettlementStatusFromProto(storegatev1.SettlementStatus(n))
				return s.String(), ok
			},
			to: func(d string) int32 {
				var s gateway.SettlementStatus
				_ = s.UnmarshalText([]byte(d))
				return int32(wire.SettlementStatusToProto(s))
			},
		},
		{
			name:  "DocumentKind",
			names: storegatev1.DocumentKind_name,
			want: map[string]string{
				"DOCUMENT_KIND_UNSPECIFIED": unmapped,
				"DOCUMENT_KIND_KEYSET":      string(gateway.DocumentKeyset),
				"DOCUMENT_KIND_POLICY":      string(gateway.DocumentPolicy),
				"DOCUMENT_KIND_FREEZE_LIST": string(gateway.DocumentFreeze),
			},
			from: func(n int32) (string, bool) {
				k := wire.DocumentKindFromProto(storegatev1.DocumentKind(n))
				return string(k), k == gateway.DocumentKeyset || k == gateway.DocumentPolicy || k == gateway.DocumentFreeze
			},
			to: func(d string) int32 { return int32(wire.DocumentKindToProto(gateway.DocumentKind(d))) },
		},
		{
			name:  "ScanKind",
			names: storegatev1.ScanKind_name,
			want: map[string]string{
				"SCAN_KIND_UNSPECIFIED":   unmapped,
				"SCAN_KIND_PAYMENT_TOKEN": scanKindName[gateway.ScanPaymentToken],
				"SCAN_KIND_PAYMENT_CODE":  scanKindName[gateway.ScanPaymentCode],
				"SCAN_KIND_PRODUCT":       scanKindName[gateway.ScanProduct],
				"SCAN_KIND_UNKNOWN":       scanKindName[gateway.ScanUnknown],
			},
			from: func(n int32) (string, bool) {
				k, ok := wire.ScanKindFromProto(storegatev1.ScanKind(n))
				return scanKindName[k], ok
			},
			to: func(d string) int32 {
				for k, n := range scanKindName {
					if n == d {
						return int32(wire.ScanKindToProto(k))
					}
				}
				return int32(wire.ScanKindToProto(gateway.ScanKind(-1)))
			},
		},
		{
			name:  "CentralState",
			names: storegatev1.CentralState_name,
			want: map[string]string{
				"CENTRAL_STATE_UNSPECIFIED": unmapped,
				"CENTRAL_STATE_ONLINE":      gateway.BreakerClosed.String(),
				"CENTRAL_STATE_OFFLINE":     gateway.BreakerOpen.String(),
				"CENTRAL_STATE_PROBING":     gateway.BreakerHalfOpen.String(),
			},
			from: func(n int32) (string, bool) {
				s, ok := wire.CentralStateFromProto(storegatev1.CentralState(n))
				return s.String(), ok
			},
			to: func(d string) int32 {
				for s := gateway.BreakerState(0); s < 16; s++ {
					if s.String() == d {
						return int32(wire.CentralStateToProto(s))
					}
				}
				return int32(wire.CentralStateToProto(gateway.BreakerState(-1)))
			},
		},
	}
}

// scanKindName names the domain's scan kinds for the test, which has no
// String method to go by.
var scanKindName = map[gateway.ScanKind]string{
	gateway.ScanUnknown:      "unknown",
	gateway.ScanPaymentToken: "payment_token",
	gateway.ScanPaymentCode:  "payment_code",
	gateway.ScanProduct:      "product",
}

// Each enum's table checked name by name against the .proto: a wire value
// added without a decision here fails, as does a table entry that does not
// come back as itself.
func TestEnumTables(t *testing.T) {
	for _, c := range enumCases() {
		t.Run(c.name, func(t *testing.T) {
			nums := make([]int32, 0, len(c.names))
			for n := range c.names {
				nums = append(nums, n)
			}
			sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
			for _, n := range nums {
				name := c.names[n]
				want, listed := c.want[name]
				if !listed {
					t.Errorf("wire value %s is new: map it to a domain value, or list it as unmapped", name)
					continue
				}
				got, ok := c.from(n)
				switch {
				case want == unmapped && ok:
					t.Errorf("%s: got domain %q, want none", name, got)
				case want == unmapped:
				case !ok || got != want:
					t.Errorf("%s: got domain %q (named %v), want %q", name, got, ok, want)
				default:
					if back := c.to(want); back != n {
						t.Errorf("%s: domain %q goes back as %s", name, want, c.names[back])
					}
				}
			}
			for name := range c.want {
				found := false
				for _, n := range c.names {
					found = found || n == name
				}
				if !found {
					t.Errorf("%s is listed but the .proto has no such value", name)
				}
			}
		})
	}
}

// Values a peer may send that this build does not know.
func TestEnums_UnknownValues(t *testing.T) {
	t.Run("WireKindsKeepTheirName", func(t *testing.T) {
		if got := wire.SettlementKindFromProto(storegatev1.SettlementKind(9)); got != "9" {
			t.Errorf("settlement kind 9: got %q, want its wire name", got)
		}
		if got := wire.SettlementKindFromProto(storegatev1.SettlementKind_SETTLEMENT_KIND_UNSPECIFIED); got != "SETTLEMENT_KIND_UNSPECIFIED" {
			t.Errorf("settlement kind UNSPECIFIED: got %q, want its wire name", got)
		}
		if got := wire.DocumentKindFromProto(storegatev1.DocumentKind(9)); got != "9" {
			t.Errorf("document kind 9: got %q, want its wire name", got)
		}
		if got := wire.ModeFromProto(storegatev1.DecisionMode(9)); got != "9" {
			t.Errorf("decision mode 9: got %q, want its wire name", got)
		}
		// An older gateway sent UNSPECIFIED for a local decline: never
		// taken for a mode, so a settlement carrying it is refused by name.
		if got := wire.ModeFromProto(storegatev1.DecisionMode_DECISION_MODE_UNSPECIFIED); got != "DECISION_MODE_UNSPECIFIED" {
			t.Errorf("decision mode UNSPECIFIED: got %q, want its wire name", got)
		}
	})
	t.Run("WireNumbersNamedByNoTable", func(t *testing.T) {
		if s, ok := wire.SettlementStatusFromProto(storegatev1.SettlementStatus(9)); ok {
			t.Errorf("settlement status 9: got %v, want none", s)
		}
		if k, ok := wire.ScanKindFromProto(storegatev1.ScanKind(9)); ok {
			t.Errorf("scan kind 9: got %v, want none", k)
		}
		if s, ok := wire.CentralStateFromProto(storegatev1.CentralState(9)); ok {
			t.Errorf("central state 9: got %v, want none", s)
		}
	})
	t.Run("DomainValuesGoAsUnspecified", func(t *testing.T) {
		if got := wire.ModeToProto("sideways"); got != storegatev1.DecisionMode_DECISION_MODE_UNSPECIFIED {
			t.Errorf("mode sideways: got %v", got)
		}
		if got := wire.SettlementKindToProto("refund"); got != storegatev1.SettlementKind_SETTLEMENT_KIND_UNSPECIFIED {
			t.Errorf("kind refund: got %v", got)
		}
		if got := wire.SettlementStatusToProto(gateway.SettlementStatus(42)); got != storegatev1.SettlementStatus_SETTLEMENT_STATUS_UNSPECIFIED {
			t.Errorf("status 42: got %v", got)
		}
		if got := wire.DocumentKindToProto("catalog"); got != storegatev1.DocumentKind_DOCUMENT_KIND_UNSPECIFIED {
			t.Errorf("document kind catalog: got %v", got)
		}
		if got := wire.ScanKindToProto(gateway.ScanKind(42)); got != storegatev1.ScanKind_SCAN_KIND_UNSPECIFIED {
			t.Errorf("scan kind 42: got %v", got)
		}
		if got := wire.CentralStateToProto(gateway.BreakerState(42)); got != storegatev1.CentralState_CENTRAL_STATE_UNSPECIFIED {
			t.Errorf("breaker state 42: got %v", got)
		}
	})
	t.Run("EveryDomainValueHasAWireValue", func(t *testing.T) {
		for s := gateway.SettlementStatus(0); s < 64; s++ {
			if s.String() != "unknown" && wire.SettlementStatusToProto(s) == storegatev1.SettlementStatus_SETTLEMENT_STATUS_UNSPECIFIED {
				t.Errorf("settlement status %s has no wire value", s)
			}
		}
		for s := gateway.BreakerState(0); s < 64; s++ {
			if s.String() != "unknown" && wire.CentralStateToProto(s) == storegatev1.CentralState_CENTRAL_STATE_UNSPECIFIED {
				t.Errorf("breaker state %s has no wire value", s)
			}
		}
	})
}
