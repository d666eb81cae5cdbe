package main

import (
	"bytes"
	"strings"
	"testing"

	storegatev1 "storegate/proto/storegate/v1"
)

// A decline says who made it, local ones included: the wire carries
// DECISION_MODE_LOCAL, as the metrics and the audit log call it.
func TestPrintDecision_Mode(t *testing.T) {
	for _, tt := range []struct {
		name string
		d    *storegatev1.Decision
		want []string
	}{
		{"DeclinedLocal", &storegatev1.Decision{Outcome: storegatev1.Outcome_OUTCOME_DECLINED, Reason: storegatev1.DeclineReason_DECLINE_REASON_REPLAYED,
			Mode: storegatev1.DecisionMode_DECISION_MODE_LOCAL, Message: "token was already used"},
			[]string{"DECLINED replayed: token was already used", "mode           LOCAL: the store's own checks declined it"}},
		{"DeclinedOffline", &storegatev1.Decision{Outcome: storegatev1.Outcome_OUTCOME_DECLINED, Reason: storegatev1.DeclineReason_DECLINE_REASON_OFFLINE_LIMIT,
			Mode: storegatev1.DecisionMode_DECISION_MODE_OFFLINE},
			[]string{"DECLINED offline_limit", "mode           OFFLINE: the store decided alone"}},
		{"ApprovedOnline", &storegatev1.Decision{Outcome: storegatev1.Outcome_OUTCOME_APPROVED, Mode: storegatev1.DecisionMode_DECISION_MODE_ONLINE, Amount: 1200, Currency: "JPY"},
			[]string{"APPROVED ONLINE 1200 JPY", "mode           ONLINE: the central service decided"}},
		{"OlderGateway", &storegatev1.Decision{Outcome: storegatev1.Outcome_OUTCOME_DECLINED, Reason: storegatev1.DeclineReason_DECLINE_REASON_REPLAYED},
			[]string{"mode           UNSPECIFIED\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			printDecision(&b, &storegatev1.AuthorizeResponse{Decision: tt.d})
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("got:\n%s\nwant %q in it", b.String(), w)
				}
			}
		})
	}
}
