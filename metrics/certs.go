package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Certificate roles: what each certificate file storegated reads is for,
// the bounded values of the certificate gauge's role label.
const (
	// RoleListener is the POS listener's certificate (tls.cert_file).
	RoleListener = "listener"
	// RoleListenerClientCA is the CAs POS and supervisor certificates must
	// chain to (tls.client_ca_file).
	RoleListenerClientCA = "listener_client_ca"
	// RoleCentralClient is the gateway's certificate toward HQ
	// (central.tls.cert_file).
	RoleCentralClient = "central_client"
	// RoleCentralCA is the CAs HQ's certificate must chain to
	// (central.tls.ca_file).
	RoleCentralCA = "central_ca"
)

// CertificateFile is one certificate file storegated read at start.
type CertificateFile struct {
	// Role says what the file is for: one of the Role constants.
	Role string
	// File is the path as configured.
	File string
	// NotAfter is when the first of the file's certificates (a chain, a
	// CA bundle) expires.
	NotAfter time.Time
}

// certificateExpiry describes storegate_certificate_expiry_timestamp_seconds.
var certificateExpiry = prometheus.NewDesc(Namespace+"_certificate_expiry_timestamp_seconds",
	"Unix time when the first certificate of a file storegated read at start expires (NotAfter), by role (listener, listener_client_ca, central_client, central_ca) and file. "+
		"storegated reads its certificates at start: a renewed file counts from the next start.",
	[]string{"role", "file"}, nil)

// RegisterCertificates exports storegate_certificate_expiry_timestamp_seconds
// for files, the certificates in force: storegated reads them once, at
// start, so they are registered once; a second call is an error. Labels
// carry the role and the configured path, never a certificate's subject.
func (m *Metrics) RegisterCertificates(files []CertificateFile) error {
	return m.Registry().Register(certificateCollector(append([]CertificateFile(nil), files...)))
}

// certificateCollector exports a fixed list of certificate files.
type certificateCollector []CertificateFile

func (c certificateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- certificateExpiry }

func (c certificateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c {
		ch <- prometheus.MustNewConstMetric(certificateExpiry, prometheus.GaugeValue, float64(f.NotAfter.UnixNano())/1e9, f.Role, f.File)
	}
}
