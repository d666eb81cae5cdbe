package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

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

// The central line reads the breaker, reachability and the last contact
// together, so that it never says online and unreachable, or offline and
// reachable, without saying why; before any call it says so plainly.
func TestCentralSummary(t *testing.T) {
	at := timestamppb.New(time.Date(2026, 11, 6, 9, 30, 0, 0, time.Local))
	online, offline, probing := storegatev1.CentralState_CENTRAL_STATE_ONLINE, storegatev1.CentralState_CENTRAL_STATE_OFFLINE, storegatev1.CentralState_CENTRAL_STATE_PROBING
	for _, tt := range []struct {
		name string
		st   *storegatev1.GetStatusResponse
		want string
	}{
		{"NotContactedYet", &storegatev1.GetStatusResponse{CentralState: online},
			"not contacted yet: the policy stream or the first sale will ask it"},
		{"Online", &storegatev1.GetStatusResponse{CentralCalled: true, CentralReachable: true, CentralState: online, LastCentralContact: at},
			"online: every sale asks it; last contact 2026-11-06 09:30:00; breaker opened 0 times"},
		{"OnlineLastCallFailed", &storegatev1.GetStatusResponse{CentralCalled: true, CentralState: online, LastCentralContact: at},
			"online, but the last call failed: sales still ask it; last contact 2026-11-06 09:30:00"},
		{"NeverReached", &storegatev1.GetStatusResponse{CentralCalled: true, CentralState: offline, CentralStateSince: at, BreakerOpened: 1},
			"offline since 2026-11-06 09:30:00: sales are decided at the store until a sale probes it; no call has reached it since start; breaker opened 1 times"},
		{"OfflineOtherCallsReach", &storegatev1.GetStatusResponse{CentralCalled: true, CentralReachable: true, CentralState: offline, CentralStateSince: at, LastCentralContact: at},
			"offline since 2026-11-06 09:30:00: sales went unanswered though other calls reach it"},
		{"Probing", &storegatev1.GetStatusResponse{CentralCalled: true, CentralState: probing, CentralStateSince: at},
			"probing since 2026-11-06 09:30:00: one sale is asking whether it is back"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := centralSummary(tt.st); !strings.Contains(got, tt.want) {
				t.Errorf("got  %q\nwant %q in it", got, tt.want)
			}
		})
	}
}
