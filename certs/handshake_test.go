package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"

	"storegate/certs"
	"storegate/internal/testca"
)

func TestExplainHandshake(t *testing.T) {
	remote := func(alert string) error { return &net.OpError{Op: "remote error", Err: errors.New("tls: " + alert)} }
	for _, tt := range []struct {
		name    string
		err     error
		problem certs.Problem
		peer    bool
		// sentence is what a client of the gateway is told.
		sentence string
	}{
		{"AlertCertificateRequired", remote("certificate required"), certs.ProblemNoCertificate, false,
			"the gateway requires a client certificate and none was presented"},
		{"AlertUnknownCA", remote("unknown certificate authority"), certs.ProblemUnknownAuthority, false,
			"the gateway does not trust the CA that signed the client certificate"},
		{"AlertExpired", remote("expired certificate"), certs.ProblemExpired, false,
			"the gateway refused the client certificate as expired (or not valid yet)"},
		{"AlertBad", remote("bad certificate"), certs.ProblemRefused, false,
			"the gateway refused the client certificate (bad certificate)"},
		{"UnknownAuthority", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, certs.ProblemUnknownAuthority, true,
			"the gateway's certificate is not signed by a CA this client trusts"},
		{"WrongUsage", x509.CertificateInvalidError{Reason: x509.IncompatibleUsage}, certs.ProblemWrongUsage, true,
			"the gateway's certificate is not a server certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			he := certs.ExplainHandshake(tt.err)
			if he == nil || he.Problem != tt.problem || he.Peer != tt.peer {
				t.Fatalf("got %+v, want problem %s, peer %v", he, tt.problem, tt.peer)
			}
			if got := he.Sentence("gateway"); !strings.HasPrefix(got, tt.sentence) {
				t.Errorf("sentence %q, want it to start %q", got, tt.sentence)
			}
		})
	}
	for _, err := range []error{nil, errors.New("connection refused"), remote("protocol version not supported")} {
		if he := certs.ExplainHandshake(err); he != nil {
			t.Errorf("%v: got %+v, want no certificate problem", err, he)
		}
	}
}

// ProbeTLS reads the alert with which a TLS 1.3 server refuses a client's
// certificate after the client's side of the handshake is done, and
// returns nil for a server that takes the connection.
func TestProbeTLS(t *testing.T) {
	ca, other := testca.New(t, "test CA"), testca.New(t, "other CA")
	serve := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{ca.Issue(t, x509.ExtKeyUsageServerAuth)},
			ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert, NextProtos: []string{"h2"}}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					tc := tls.Server(c, cfg)
					if tc.Handshake() == nil {
						tc.Write([]byte("hello"))
					}
				}()
			}
		}()
		return ln.Addr().String()
	}
	addr := serve(t)
	client := func(cs ...tls.Certificate) *tls.Config {
		cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.Pool(), ServerName: "localhost"}
		if len(cs) > 0 {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cs[0], nil }
		}
		return cfg
	}
	ctx := context.Background()
	if err := certs.ProbeTLS(ctx, addr, client(ca.Client(t, "spiffe://x/store/s"))); err != nil {
		t.Errorf("a certificate the server takes: %v, want nil", err)
	}
	for name, c := range map[string]struct {
		cfg  *tls.Config
		want certs.Problem
	}{
		"NoCertificate":    {client(), certs.ProblemNoCertificate},
		"UnknownAuthority": {client(other.Client(t, "spiffe://x/store/s")), certs.ProblemUnknownAuthority},
	} {
		var he *certs.HandshakeError
		if err := certs.ProbeTLS(ctx, addr, c.cfg); !errors.As(err, &he) || he.Problem != c.want || he.Peer {
			t.Errorf("%s: %v, want the server's refusal of our certificate: %s", name, err, c.want)
		}
	}
}
