package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"storegate/gateway"
	"storegate/gateway/wire"
	"storegate/metrics"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// scrape returns the exposition text the handler serves.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: HTTP %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// wantLine fails unless the exposition holds exactly this sample line.
func wantLine(t *testing.T, text, line string) {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return
		}
	}
	t.Errorf("no line %q in the scrape", line)
}

func TestMetrics_Decisions(t *testing.T) {
	m := metrics.NewMetrics("v1.2.3")
	m.ObserveAuthorize(wire.AuthorizeObservation{Code: codes.OK, Outcome: "approved", Reason: "none", Mode: "online", Took: 30 * time.Millisecond})
	m.ObserveAuthorize(wire.AuthorizeObservation{Code: codes.OK, Outcome: "approved", Reason: "none", Mode: "online", Took: 40 * time.Millisecond})
	m.ObserveAuthorize(wire.AuthorizeObservation{Code: codes.OK, Outcome: "declined", Reason: "replayed", Mode: "local", Took: time.Millisecond})
	m.ObserveAuthorize(wire.AuthorizeObservation{Code: codes.OK, Outcome: "approved", Reason: "none", Mode: "online", Replayed: true, Took: time.Millisecond})
	m.ObserveAuthorize(wire.AuthorizeObservation{Code: codes.InvalidArgument, Took: time.Millisecond})
	m.ObservePanic("/storegate.v1.PaymentService/GetStatus")
	m.SetStoreWritable(true)
	text := scrape(t, m)

	wantLine(t, text, `storegate_decisions_total{mode="online",outcome="approved",reason="none"} 2`)
	wantLine(t, text, `storegate_decisions_total{mode="local",outcome="declined",reason="replayed"} 1`)
	wantLine(t, text, `storegate_authorize_replayed_total 1`)
	wantLine(t, text, `storegate_authorize_duration_seconds_count{result="approved"} 3`)
	wantLine(t, text, `storegate_authorize_duration_seconds_bucket{result="approved",le="0.025"} 1`)
	wantLine(t, text, `storegate_authorize_duration_seconds_count{result="InvalidArgument"} 1`)
	wantLine(t, text, `storegate_grpc_panics_total{method="/storegate.v1.PaymentService/GetStatus"} 1`)
	wantLine(t, text, `storegate_store_writable 1`)
	wantLine(t, text, `storegate_build_info{version="v1.2.3"} 1`)
	if strings.Contains(text, "storegate_outbox_depth") {
		t.Error("status gauges exported without a status source")
	}
}

func TestMetrics_StatusGauges(t *testing.T) {
	st := &gateway.Status{
		CentralReachable:   true,
		LastCentralContact: t0.Add(-3 * time.Second),
		OfflineCaps:        gateway.OfflineCaps{MaxAmountPerTransaction: 3000, MaxAmountPerAccount: 6000, MaxStoreExposure: 30000},
		Outbox:             gateway.OutboxStats{Depth: 7, Oldest: t0.Add(-90 * time.Second), OfflineExposure: 5800, Disputed: 1},
		KeysetVersion:      4,
		AuditRecords:       12,
		Documents:          gateway.DocumentVersions{Keyset: 4, Policy: 9, StorePolicy: 2, Freeze: 31},
		PolicyIssued:       t0.Add(-time.Hour),
	}
	var fail error
	m := metrics.NewMetrics("")
	m.Now = func() time.Time { return t0 }
	m.Status = func(context.Context) (*gateway.Status, error) { return st, fail }
	text := scrape(t, m)
	for _, l := range []string{
		"storegate_outbox_depth 7",
		"storegate_outbox_oldest_age_seconds 90",
		"storegate_offline_exposure_minor_units 5800",
		"storegate_offline_exposure_cap_minor_units 30000",
		"storegate_settlements_disputed 1",
		"storegate_keyset_version 4",
		"storegate_central_reachable 1",
		"storegate_central_last_contact_timestamp_seconds 1.772359197e+09",
		"storegate_audit_records 12",
		"storegate_policy_version 9",
		"storegate_store_policy_version 2",
		"storegate_freeze_version 31",
		"storegate_policy_age_seconds 3600",
		"storegate_store_policy_age_seconds 0",
	} {
		wantLine(t, text, l)
	}

	t.Run("EmptyOutbox", func(t *testing.T) {
		st.Outbox = gateway.OutboxStats{}
		st.CentralReachable = false
		text := scrape(t, m)
		wantLine(t, text, "storegate_outbox_oldest_age_seconds 0")
		wantLine(t, text, "storegate_central_reachable 0")
	})
	t.Run("ErrStatusKeepsTheRest", func(t *testing.T) {
		fail = errors.New("store closed")
		m.ObservePanic("/x")
		text := scrape(t, m)
		if strings.Contains(text, "storegate_outbox_depth") {
			t.Error("status gauges exported although status failed")
		}
		wantLine(t, text, `storegate_grpc_panics_total{method="/x"} 1`)
	})
}

func TestMetrics_Scanners(t *testing.T) {
	m := metrics.NewMetrics("")
	m.Scanners = func() []gateway.ScannerStatus {
		return []gateway.ScannerStatus{
			{Lane: "1", Device: "/dev/storegate/lane1", Up: true, Since: t0, Frames: 12, Dropped: 2},
			{Lane: "2", Device: "/dev/storegate/lane2", Up: false, Since: t0},
		}
	}
	text := scrape(t, m)
	wantLine(t, text, `storegate_scanner_up{device="/dev/storegate/lane1",lane="1"} 1`)
	wantLine(t, text, `storegate_scanner_up{device="/dev/storegate/lane2",lane="2"} 0`)
	wantLine(t, text, `storegate_scanner_frames_total{lane="1"} 12`)
	wantLine(t, text, `storegate_scanner_dropped_frames_total{lane="1"} 2`)
}
