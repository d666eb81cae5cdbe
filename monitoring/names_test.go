package monitoring_test

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	"storegate/gateway/wire"
	"storegate/metrics"
	storegatev1 "storegate/proto/storegate/v1"
)

// targetLabels are the labels Prometheus's scrape config adds to every
// series (README.md): a rule may match on them whatever the metric.
var targetLabels = map[string]bool{"__name__": true, "job": true, "instance": true, "store": true}

// checkedPrefixes are the name prefixes of the metrics storegated's registry
// serves: its own, and the Go runtime's and process's collectors. A name
// with one of them that the registry does not serve is an error.
var checkedPrefixes = []string{metrics.Namespace + "_", "go_", "process_"}

// enumerated are the labels whose every value exported() makes the metrics
// export, so that a matcher on any other value is a typo that never
// matches: outcome, reason and mode from every value of the wire's enums,
// result from those and every gRPC code.
var enumerated = map[string]bool{"outcome": true, "reason": true, "mode": true, "result": true}

// exportedSeries maps a series name to its labels and the values each was
// seen with.
type exportedSeries map[string]map[string]map[string]bool

// exported returns the series storegated's metrics serve, read from package
// metrics itself: a Metrics with a status and a scanner source, told of
// every decision the wire can describe, of failed calls with every gRPC
// code, and of a panic, then gathered. A histogram serves _bucket (with le),
// _sum and _count. It fails if the registry describes a storegate metric
// that this did not make it serve, so that a new metric cannot be missed
// here.
func exported(t *testing.T) exportedSeries {
	t.Helper()
	m := metrics.NewMetrics("test")
	m.Status = func(context.Context) (*gateway.Status, error) { return &gateway.Status{}, nil }
	m.Scanners = func() []gateway.ScannerStatus {
		return []gateway.ScannerStatus{{Lane: "1", Device: "/dev/storegate/lane-1", Up: true}}
	}
	for _, o := range storegatev1.Outcome_value {
		for _, r := range storegatev1.DeclineReason_value {
			for _, mode := range storegatev1.DecisionMode_value {
				res := &storegatev1.AuthorizeResponse{Decision: &storegatev1.Decision{
					Outcome: storegatev1.Outcome(o), Reason: storegatev1.DeclineReason(r), Mode: storegatev1.DecisionMode(mode),
				}}
				m.ObserveAuthorize(wire.NewAuthorizeObservation(res, nil, time.Millisecond))
				res.Replayed = true
				m.ObserveAuthorize(wire.NewAuthorizeObservation(res, nil, time.Millisecond))
			}
		}
	}
	for c := codes.OK + 1; c <= codes.Unauthenticated; c++ {
		m.ObserveAuthorize(wire.NewAuthorizeObservation(nil, status.Error(c, "test"), time.Millisecond))
	}
	m.ObservePanic("/storegate.v1.PaymentService/Authorize")
	var files []metrics.CertificateFile
	for _, role := range []string{metrics.RoleListener, metrics.RoleListenerClientCA, metrics.RoleCentralClient, metrics.RoleCentralCA} {
		files = append(files, metrics.CertificateFile{Role: role, File: "/etc/storegate/tls/" + role + ".crt", NotAfter: time.Now().Add(90 * 24 * time.Hour)})
	}
	if err := m.RegisterCertificates(files); err != nil {
		t.Fatal(err)
	}
	m.SetStoreWritable(true)

	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	series := exportedSeries{}
	see := func(name string, labels map[string]string) {
		if series[name] == nil {
			series[name] = map[string]map[string]bool{}
		}
		for l, v := range labels {
			if series[name][l] == nil {
				series[name][l] = map[string]bool{}
			}
			series[name][l][v] = true
		}
	}
	gathered := map[string]bool{}
	for _, mf := range families {
		name := mf.GetName()
		gathered[name] = true
		for _, sample := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range sample.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetType().String() {
			case "HISTOGRAM":
				see(name+"_sum", labels)
				see(name+"_count", labels)
				for _, b := range sample.GetHistogram().GetBucket() {
					labels["le"] = strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)
					see(name+"_bucket", labels)
				}
				labels["le"] = "+Inf"
				see(name+"_bucket", labels)
			case "SUMMARY":
				see(name+"_sum", labels)
				see(name+"_count", labels)
				for _, q := range sample.GetSummary().GetQuantile() {
					labels["quantile"] = strconv.FormatFloat(q.GetQuantile(), 'g', -1, 64)
					see(name, labels)
				}
			default:
				see(name, labels)
			}
		}
	}

	descs := make(chan *prometheus.Desc)
	go func() {
		m.Registry().Describe(descs)
		close(descs)
	}()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range descs {
		match := fqName.FindStringSubmatch(d.String())
		if match == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		if strings.HasPrefix(match[1], metrics.Namespace+"_") && !gathered[match[1]] {
			t.Errorf("the registry describes %s but exported() did not make it serve one: observe it there", match[1])
		}
	}
	return series
}

// catalogue is what a query may name: the series storegated serves and the
// recording rules' names.
type catalogue struct {
	series   exportedSeries
	recorded map[string]bool
}

// problems returns what is wrong with the query q: a name with a checked
// prefix that storegated does not serve, a recorded name (level:metric:op)
// that no recording rule records, a matcher on a label the series does not
// have, or on an enumerated label with a value it is never exported with.
func (c catalogue) problems(q string) []string {
	sels, err := selectors(q)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, s := range sels {
		switch {
		case strings.Contains(s.name, ":"):
			if !c.recorded[s.name] {
				out = append(out, fmt.Sprintf("no recording rule records %s", s.name))
			}
		case hasCheckedPrefix(s.name):
			labels, ok := c.series[s.name]
			if !ok {
				out = append(out, fmt.Sprintf("storegated serves no %s", s.name))
				continue
			}
			for _, m := range s.matchers {
				out = append(out, matcherProblems(s.name, labels, m)...)
			}
		}
	}
	return out
}

// plainAlternatives matches a regular expression that is only words joined
// by |, such as approved|declined.
var plainAlternatives = regexp.MustCompile(`^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$`)

func matcherProblems(name string, labels map[string]map[string]bool, m matcher) []string {
	if targetLabels[m.label] {
		return nil
	}
	values, ok := labels[m.label]
	if !ok {
		return []string{fmt.Sprintf("%s has no label %s (it has %s)", name, m.label, strings.Join(keys(labels), ", "))}
	}
	if !enumerated[m.label] || strings.HasPrefix(m.op, "!") || strings.Contains(m.value, "$") {
		return nil
	}
	want := []string{m.value}
	if m.op == "=~" {
		if !plainAlternatives.MatchString(m.value) {
			return nil
		}
		want = strings.Split(m.value, "|")
	}
	var out []string
	for _, v := range want {
		if !values[v] {
			out = append(out, fmt.Sprintf("%s is never served with %s=%q (it is with %s)", name, m.label, v, strings.Join(keys(values), ", ")))
		}
	}
	return out
}

func hasCheckedPrefix(name string) bool {
	for _, p := range checkedPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// newCatalogue reads what the binaries export and what rules.yml records.
func newCatalogue(t *testing.T) catalogue {
	t.Helper()
	_, records := rules(t)
	c := catalogue{series: exported(t), recorded: map[string]bool{}}
	for _, r := range records {
		c.recorded[r.Record] = true
	}
	return c
}

// Every metric the alerts, recording rules, promtool tests and dashboards
// name is one storegated serves (or a recording rule records), with the
// labels it has and, for outcome, reason, mode and result, a value it takes.
func TestMetrics_EveryNameIsExported(t *testing.T) {
	c := newCatalogue(t)
	qs := queries(t)
	named := map[string]bool{}
	for _, q := range qs {
		for _, p := range c.problems(q.text) {
			t.Errorf("%s: %s\n\t%s", q.where, p, strings.TrimSpace(q.text))
		}
		sels, _ := selectors(q.text)
		for _, s := range sels {
			if hasCheckedPrefix(s.name) || strings.Contains(s.name, ":") {
				named[s.name] = true
			}
		}
	}
	// The check must have had something to check: a tokenizer that finds
	// nothing passes every query.
	for _, want := range []string{"storegate_decisions_total", "storegate_authorize_duration_seconds_bucket", "store:storegate_decisions:rate5m"} {
		if !named[want] {
			t.Errorf("no query names %s: the tokenizer is broken", want)
		}
	}
	t.Logf("%d queries checked, naming %d distinct metrics and recordings", len(qs), len(named))
}

// The check itself finds what it is for: an unknown metric, an unknown
// recording, a label the metric lacks, and a value it never takes.
func TestMetrics_CheckFindsMistakes(t *testing.T) {
	c := newCatalogue(t)
	for _, tc := range []struct {
		name, query, want string
	}{
		{"UnknownMetric", `rate(storegate_decisionz_total[5m]) > 0`, "storegated serves no storegate_decisionz_total"},
		{"HistogramWithoutSuffix", `rate(storegate_authorize_duration_seconds[5m])`, "storegated serves no storegate_authorize_duration_seconds"},
		{"UnknownRecording", `store:storegate_decisions:rate1m`, "no recording rule records store:storegate_decisions:rate1m"},
		{"UnknownLabel", `storegate_outbox_depth{lane="1"}`, "storegate_outbox_depth has no label lane"},
		{"MisspeltReason", `storegate_decisions_total{outcome="declined", reason="limit_exceded"}`, `never served with reason="limit_exceded"`},
		{"MisspeltAlternative", `storegate_authorize_duration_seconds_count{result=~"approved|decline"}`, `never served with result="decline"`},
		{"UnknownGoMetric", `go_goroutinez`, "storegated serves no go_goroutinez"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(c.problems(tc.query), "; ")
			if !strings.Contains(got, tc.want) {
				t.Errorf("problems(%s) = %q, want one containing %q", tc.query, got, tc.want)
			}
		})
	}
	t.Run("OK", func(t *testing.T) {
		q := `sum without (reason) (rate(storegate_decisions_total{job="$job",store=~"${store}",outcome="declined",reason=~"limit_exceeded|offline_limit",mode!="x"}[$__rate_interval] offset 1h))
			/ on (store) group_left histogram_quantile(0.99, rate(storegate_authorize_duration_seconds_bucket{le="+Inf"}[5m:1m])) # a comment: storegate_nothing
			or label_replace(store:storegate_decisions:rate5m, "x", "$1", "store", "storegate_(.*)") and up{job="storegate"} > 1e-9`
		if got := c.problems(q); len(got) != 0 {
			t.Errorf("problems = %q, want none", got)
		}
	})
}
