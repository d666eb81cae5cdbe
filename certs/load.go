package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// MinVersion is the lowest TLS version storegate speaks. Every peer is
// storegate's own code, so there is no old client to wait for.
const MinVersion = tls.VersionTLS13

// ServerConfig returns the TLS configuration of a gRPC server presenting the
// certificate in certFile with the key in keyFile. When clientCAFile is set,
// every client must present a certificate that chains to a CA in it
// (mutual TLS); a client without one, or with one from another CA, fails the
// handshake. Errors name the file at fault.
func ServerConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("a server needs both a certificate and a key file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load %s and %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{MinVersion: MinVersion, Certificates: []tls.Certificate{cert}}
	if clientCAFile != "" {
		pool, err := LoadPool(clientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientConfig returns the TLS configuration of a gRPC client that trusts
// the CAs in caFile and, when certFile and keyFile are set, presents that
// certificate (mutual TLS). serverName, when set, is the name the server's
// certificate must carry instead of the host of the address dialled.
//
// The certificate is presented whichever CAs the server says it takes
// (crypto/tls would otherwise send none to a server that names other CAs),
// so that a server that does not take it says why, an unknown authority,
// in its alert and its log, rather than seeing no certificate at all.
func ClientConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	if caFile == "" {
		return nil, errors.New("a client needs the CA file that the server's certificate chains to")
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	pool, err := LoadPool(caFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: MinVersion, RootCAs: pool, ServerName: serverName}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load %s and %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return cfg, nil
}

// LoadPool reads PEM certificates from path into a pool. A file holding no
// certificate is an error, so that a wrong path never means "trust nothing"
// or, worse, "trust the system's CAs".
func LoadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// ReadCertificates returns the certificates of the PEM file at path, in
// file order (a chain, or a CA bundle). A file holding none is an error;
// blocks of other types (a private key beside the certificate) are skipped.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}

// EarliestExpiry returns the soonest NotAfter of cs: when the first of them
// stops being valid.
func EarliestExpiry(cs []*x509.Certificate) time.Time {
	var t time.Time
	for _, c := range cs {
		if t.IsZero() || c.NotAfter.Before(t) {
			t = c.NotAfter
		}
	}
	return t
}
