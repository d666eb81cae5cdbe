package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"storegate/gateway"
	"storegate/gateway/wire"
)

// Namespace prefixes every storegate metric.
const Namespace = "storegate"

// DefaultStatusTimeout bounds the status read of one scrape.
const DefaultStatusTimeout = 2 * time.Second

// AuthorizeBuckets are the latency histogram's upper bounds in seconds: a
// decision is a disk sync and usually a call to central under an 800ms
// deadline, and a customer is waiting at the lane.
var AuthorizeBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, .75, 1, 1.5, 2.5, 5, 10}

// Metrics holds storegated's metrics. It implements wire.Observer, which
// counts from NewMetrics on; Handler and Open serve them over HTTP. Create it
// with NewMetrics and set its exported fields before the first scrape, then
// Open serves them on Listener and Close stops serving.
type Metrics struct {
	// Status reads the gateway's state at each scrape; nil exports no
	// status gauges.
	Status func(ctx context.Context) (*gateway.Status, error)
	// Scanners reads the lanes' scanners at each scrape; nil exports no
	// scanner metrics.
	Scanners func() []gateway.ScannerStatus
	// Now is the clock for ages; NewMetrics sets time.Now.
	Now func() time.Time
	// Logger receives scrape errors; NewMetrics sets one that discards them.
	Logger *slog.Logger
	// Listener is where Open serves the metrics; Open requires it, and
	// Close closes it.
	Listener net.Listener

	reg       *prometheus.Registry
	decisions *prometheus.CounterVec
	replayed  prometheus.Counter
	latency   *prometheus.HistogramVec
	panics    *prometheus.CounterVec
	writable  prometheus.Gauge

	// http serves the metrics once Open was called; served is closed when
	// its Serve has returned.
	http   *http.Server
	served chan struct{}
}

var _ wire.Observer = (*Metrics)(nil)

// NewMetrics returns the metrics of a storegated of the given version,
// registered on a registry of their own together with the Go runtime's and
// the process's. It serves nothing until Open.
func NewMetrics(version string) *Metrics {
	m := &Metrics{
		Now:    time.Now,
		Logger: slog.New(slog.DiscardHandler),
		reg:    prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "decisions_total",
			Help: "Payment decisions made, by outcome (approved, declined), decline reason (none for an approval) and mode (online, offline, local). A POS retry answered from the idempotency record is not a new decision.",
		}, []string{"outcome", "reason", "mode"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "authorize_replayed_total",
			Help: "Authorize calls answered with the stored decision of an earlier identical request (POS retries).",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "authorize_duration_seconds",
			Help:    "Time to answer Authorize, by result: approved, declined, or the gRPC code of a failed call.",
			Buckets: AuthorizeBuckets,
		}, []string{"result"}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "grpc_panics_total",
			Help: "Handler panics recovered and answered with Internal, by gRPC method. Any increase is a bug to report.",
		}, []string{"method"}),
		writable: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "store_writable",
			Help: "1 while the last health probe could write the store file, else 0 (grpc.health.v1 is NOT_SERVING then).",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info", Help: "Always 1; the version label is storegated's.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	m.reg.MustRegister(m.decisions, m.replayed, m.latency, m.panics, m.writable, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&statusCollector{m: m, timeout: DefaultStatusTimeout}, scannerCollector{m: m})
	return m
}

// ObserveAuthorize counts a decision and records the call's latency.
func (m *Metrics) ObserveAuthorize(o wire.AuthorizeObservation) {
	result := o.Outcome
	if result == "" {
		result = o.Code.String()
	}
	m.latency.WithLabelValues(result).Observe(o.Took.Seconds())
	switch {
	case o.Outcome == "":
	case o.Replayed:
		m.replayed.Inc()
	default:
		m.decisions.WithLabelValues(o.Outcome, o.Reason, o.Mode).Inc()
	}
}

// ObservePanic counts a recovered handler panic.
func (m *Metrics) ObservePanic(method string) { m.panics.WithLabelValues(method).Inc() }

// SetStoreWritable records the health probe's verdict.
func (m *Metrics) SetStoreWritable(ok bool) {
	if ok {
		m.writable.Set(1)
	} else {
		m.writable.Set(0)
	}
}

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition format. A status
// read that fails is logged and leaves its gauges out of that scrape; the
// rest is still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      logAdapter{m.logger()},
	})
}

// logger returns Logger, or one that discards when it is unset.
func (m *Metrics) logger() *slog.Logger {
	if m.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return m.Logger
}

// logAdapter gives promhttp's error log to slog.
type logAdapter struct{ l *slog.Logger }

func (a logAdapter) Println(v ...any) { a.l.Warn("metrics scrape", "err", fmt.Sprint(v...)) }
