package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// scannerCollector exports each lane scanner's state, read at scrape time
// from Metrics.Scanners; nothing while that is unset.
type scannerCollector struct{ m *Metrics }

var (
	scannerUpDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "scanner", "up"),
		"1 while the lane's scanner port is open and reading, 0 while it is being reopened.", []string{"lane", "device"}, nil)
	scannerSinceDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "scanner", "state_since_timestamp_seconds"),
		"Unix time the scanner last went up or down.", []string{"lane"}, nil)
	scannerFramesDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "scanner", "frames_total"),
		"Frames the lane's scanner delivered.", []string{"lane"}, nil)
	scannerDroppedDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "scanner", "dropped_frames_total"),
		"Frames dropped: oversized, binary, incomplete or refused.", []string{"lane"}, nil)
)

func (c scannerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- scannerUpDesc
	ch <- scannerSinceDesc
	ch <- scannerFramesDesc
	ch <- scannerDroppedDesc
}

func (c scannerCollector) Collect(ch chan<- prometheus.Metric) {
	if c.m.Scanners == nil {
		return
	}
	for _, s := range c.m.Scanners() {
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(scannerUpDesc, prometheus.GaugeValue, up, s.Lane, s.Device)
		ch <- prometheus.MustNewConstMetric(scannerSinceDesc, prometheus.GaugeValue, float64(s.Since.UnixNano())/1e9, s.Lane)
		ch <- prometheus.MustNewConstMetric(scannerFramesDesc, prometheus.CounterValue, float64(s.Frames), s.Lane)
		ch <- prometheus.MustNewConstMetric(scannerDroppedDesc, prometheus.CounterValue, float64(s.Dropped), s.Lane)
	}
}
