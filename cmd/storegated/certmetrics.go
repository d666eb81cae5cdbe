package main

import (
	"fmt"
	"time"

	"storegate/certs"
	"storegate/metrics"
)

// CertificateFiles reads the certificate files the configuration names, as
// the certificate-expiry gauge exports them: the POS listener's certificate
// and the CAs its clients must chain to, the gateway's certificate toward
// HQ and the CAs HQ's must chain to. Errors name the field.
func (c *Config) CertificateFiles() ([]metrics.CertificateFile, error) {
	var out []metrics.CertificateFile
	for _, f := range []struct{ field, role, path string }{
		{"tls.cert_file", metrics.RoleListener, c.TLS.CertFile},
		{"tls.client_ca_file", metrics.RoleListenerClientCA, c.TLS.ClientCAFile},
		{"central.tls.cert_file", metrics.RoleCentralClient, c.Central.TLS.CertFile},
		{"central.tls.ca_file", metrics.RoleCentralCA, c.Central.TLS.CAFile},
	} {
		if f.path == "" {
			continue
		}
		cs, err := certs.ReadCertificates(f.path)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", f.field, err)
		}
		out = append(out, metrics.CertificateFile{Role: f.role, File: f.path, NotAfter: certs.EarliestExpiry(cs)})
	}
	return out, nil
}

// registerCertificates exports when each certificate storegated read
// expires, and warns of any that has expired already.
func (m *Main) registerCertificates() error {
	files, err := m.Config.CertificateFiles()
	if err != nil {
		return err
	}
	now := time.Now()
	for _, f := range files {
		if !f.NotAfter.After(now) {
			m.logger.Warn("a certificate has expired", "role", f.Role, "file", f.File, "not_after", f.NotAfter)
		}
	}
	return m.metrics.RegisterCertificates(files)
}
