package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"storegate/gateway"
)

// statusGauge is one gauge read from the gateway's status at scrape time.
type statusGauge struct {
	name  string
	help  string
	value func(s *gateway.Status, now time.Time) float64
}

// statusGauges are the gauges read from gateway.Status. A new one is one
// entry here.
var statusGauges = []statusGauge{
	{"outbox_depth", "Settlements queued for the central service and not yet acknowledged.",
		func(s *gateway.Status, _ time.Time) float64 { return float64(s.Outbox.Depth) }},
	{"outbox_oldest_age_seconds", "Age of the oldest queued settlement; 0 when the outbox is empty.",
		func(s *gateway.Status, now time.Time) float64 {
			if s.Outbox.Oldest.IsZero() {
				return 0
			}
			return now.Sub(s.Outbox.Oldest).Seconds()
		}},
	{"offline_exposure_minor_units", "Offline approvals not yet acknowledged by the central service, in minor currency units: the money at risk until central books them.",
		func(s *gateway.Status, _ time.Time) float64 { return float64(s.Outbox.OfflineExposure) }},
	{"offline_exposure_cap_minor_units", "The cap on offline exposure in force (the lower of the store's and HQ's), in minor currency units: offline_exposure_minor_units never passes it. 0 when none is set, and then nothing is approved offline.",
		func(s *gateway.Status, _ time.Time) float64 { return float64(s.OfflineCaps.MaxStoreExposure) }},
	{"settlements_disputed", "Settlements the central service refused, kept for investigation.",
		func(s *gateway.Status, _ time.Time) float64 { return float64(s.Outbox.Disputed) }},
	{"keyset_version", "Version of the token-signing keyset in force; 0 before any keyset.",
		func(s *gateway.Status, _ time.Time) float64 { return float64(s.KeysetVersion) }},
	{"central_reachable", "1 when the last call to the central service succeeded, else 0 (the gateway then decides offline).",
		func(s *gateway.Status, _ time.Time) float64 {
			if s.CentralReachable {
				return 1
			}
			return 0
		}},
	{"central_last_contact_timestamp_seconds", "Unix time of the last successful call to the central service; 0 when none since start.",
		func(s *gateway.Status, _ time.Time) float64 {
			if s.LastCentralContact.IsZero() {
				return 0
			}
			return float64(s.LastCentralContact.UnixNano()) / 1e9
		}},
	{"audit_records", "Records in the hash-chained audit log.",
		func(s *gateway.Status, _ time.Time) float64 { return float64(s.AuditRecords) }},
	{"policy_version", "Version of HQ's chain-wide policy in force; 0 before any.",
		func(s *gateway.Status, _ time.Time) float64 { return float64(s.Documents.Policy) }},
	{"store_policy_version", "Version of HQ's policy for this store in force; 0 before any.",
		func(s *gateway.Status, _ time.Time) float64 { return float64(s.Documents.StorePolicy) }},
	{"freeze_version", "Version of HQ's freeze list in force; 0 before any.",
		func(s *gateway.Status, _ time.Time) float64 { return float64(s.Documents.Freeze) }},
	{"policy_age_seconds", "Time since HQ issued the chain-wide policy in force; 0 before any. A store that stopped hearing from HQ shows it growing.",
		func(s *gateway.Status, now time.Time) float64 { return ageSeconds(s.PolicyIssued, now) }},
	{"store_policy_age_seconds", "Time since HQ issued this store's policy in force; 0 before any.",
		func(s *gateway.Status, now time.Time) float64 { return ageSeconds(s.StorePolicyIssued, now) }},
}

func ageSeconds(t, now time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return now.Sub(t).Seconds()
}

// statusCollector reads the gateway's status (Metrics.Status) once per
// scrape and exports statusGauges from it; nothing while Status is unset.
type statusCollector struct {
	m       *Metrics
	timeout time.Duration
}

var descs = func() map[string]*prometheus.Desc {
	m := make(map[string]*prometheus.Desc, len(statusGauges))
	for _, g := range statusGauges {
		m[g.name] = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", g.name), g.help, nil, nil)
	}
	return m
}()

var statusErrDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", "status"), "The gateway's status could not be read.", nil, nil)

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range statusGauges {
		ch <- descs[g.name]
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	if c.m.Status == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, err := c.m.Status(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(statusErrDesc, err)
		return
	}
	now := time.Now()
	if c.m.Now != nil {
		now = c.m.Now()
	}
	for _, g := range statusGauges {
		ch <- prometheus.MustNewConstMetric(descs[g.name], prometheus.GaugeValue, g.value(st, now))
	}
}
