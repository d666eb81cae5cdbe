package metrics_test

import (
	"testing"
	"time"

	"storegate/metrics"
)

// Each certificate file is one series, by role and path, whose value is
// its expiry as Unix time; the certificates are read once, at start.
func TestMetrics_RegisterCertificates(t *testing.T) {
	m := metrics.NewMetrics("test")
	files := []metrics.CertificateFile{
		{Role: metrics.RoleListener, File: "/etc/storegate/tls/server.crt", NotAfter: t0},
		{Role: metrics.RoleCentralCA, File: "/etc/storegate/tls/server-ca.crt", NotAfter: t0.Add(1000 * 24 * time.Hour)},
	}
	if err := m.RegisterCertificates(files); err != nil {
		t.Fatal(err)
	}
	text := scrape(t, m)
	wantLine(t, text, `storegate_certificate_expiry_timestamp_seconds{file="/etc/storegate/tls/server.crt",role="listener"} 1.7723592e+09`)
	wantLine(t, text, `storegate_certificate_expiry_timestamp_seconds{file="/etc/storegate/tls/server-ca.crt",role="central_ca"} 1.8587592e+09`)
	if err := m.RegisterCertificates(files); err == nil {
		t.Error("a second RegisterCertificates was taken; want an error")
	}
}
