package certs_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"storegate/certs"
)

// makeDev makes a development CA in a fresh folder.
func makeDev(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := certs.MakeDev(dir, certs.DevOptions{Name: name}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no CERTIFICATE block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMakeDev(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	dir := filepath.Join(t.TempDir(), "tls")
	if err := certs.MakeDev(dir, certs.DevOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, filepath.Join(dir, certs.CACertFile))
	if !ca.IsCA {
		t.Fatal("ca.crt is not a CA certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	t.Run("ServerChainsForEveryHost", func(t *testing.T) {
		srv := readCert(t, filepath.Join(dir, certs.ServerCertFile))
		for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
			if _, err := srv.Verify(x509.VerifyOptions{DNSName: h, Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("server certificate for %s: %v", h, err)
			}
		}
		if _, err := srv.Verify(x509.VerifyOptions{DNSName: "hq.example.internal", Roots: pool, CurrentTime: now}); err == nil {
			t.Error("server certificate verifies for a host it was not made for")
		}
	})
	t.Run("ClientsAreClientsOnly", func(t *testing.T) {
		for _, f := range []string{certs.POSCertFile, certs.GatewayCertFile} {
			c := readCert(t, filepath.Join(dir, f))
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("%s as a client: %v", f, err)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
				t.Errorf("%s verifies as a server certificate", f)
			}
		}
	})
	t.Run("Validity", func(t *testing.T) {
		srv := readCert(t, filepath.Join(dir, certs.ServerCertFile))
		if got := srv.NotAfter.Sub(now); got != certs.DevLeafValidity {
			t.Errorf("server certificate valid for %s after now, want %s", got, certs.DevLeafValidity)
		}
		if !srv.NotBefore.Before(now) {
			t.Errorf("server certificate not valid before %s, want backdated before %s", srv.NotBefore, now)
		}
		if ca.NotAfter.Before(srv.NotAfter) {
			t.Errorf("CA expires %s, before the certificates it signed (%s)", ca.NotAfter, srv.NotAfter)
		}
	})
	t.Run("PrivateKeysAre0600", func(t *testing.T) {
		for _, f := range []string{certs.CAKeyFile, certs.ServerKeyFile, certs.POSKeyFile, certs.GatewayKeyFile} {
			fi, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s mode %v, want 0600", f, fi.Mode().Perm())
			}
		}
	})
	t.Run("ErrExists", func(t *testing.T) {
		before, _ := os.ReadFile(filepath.Join(dir, certs.CAKeyFile))
		err := certs.MakeDev(dir, certs.DevOptions{})
		if err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("second MakeDev: %v, want a refusal", err)
		}
		after, _ := os.ReadFile(filepath.Join(dir, certs.CAKeyFile))
		if string(before) != string(after) {
			t.Fatal("the CA key was overwritten")
		}
	})
}

// serveHealth serves grpc.health.v1 with TLS from dir's server certificate,
// requiring client certificates from dir's CA.
func serveHealth(t *testing.T, dir string) string {
	t.Helper()
	cfg, err := certs.ServerConfig(filepath.Join(dir, certs.ServerCertFile), filepath.Join(dir, certs.ServerKeyFile), filepath.Join(dir, certs.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func check(t *testing.T, addr, caDir, certDir string, withCert bool) error {
	t.Helper()
	var cert, key string
	if withCert {
		cert, key = filepath.Join(certDir, certs.POSCertFile), filepath.Join(certDir, certs.POSKeyFile)
	}
	cfg, err := certs.ClientConfig(filepath.Join(caDir, certs.CACertFile), cert, key, "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestMutualTLS(t *testing.T) {
	store := makeDev(t, "store")
	other := makeDev(t, "other")
	addr := serveHealth(t, store)

	t.Run("OK", func(t *testing.T) {
		if err := check(t, addr, store, store, true); err != nil {
			t.Fatalf("POS with the store CA's certificate: %v", err)
		}
	})
	t.Run("ErrNoClientCertificate", func(t *testing.T) {
		if err := check(t, addr, store, "", false); err == nil {
			t.Fatal("a client without a certificate was served")
		}
	})
	t.Run("ErrOtherCA", func(t *testing.T) {
		if err := check(t, addr, store, other, true); err == nil {
			t.Fatal("a client with another CA's certificate was served")
		}
	})
	t.Run("ErrServerFromOtherCA", func(t *testing.T) {
		// The client trusts only the other CA: the store's server
		// certificate must not satisfy it.
		if err := check(t, addr, other, other, true); err == nil {
			t.Fatal("the client accepted a server certificate from a CA it does not trust")
		}
	})
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	os.WriteFile(empty, []byte("not a certificate\n"), 0o600)
	if _, err := certs.LoadPool(empty); err == nil || !strings.Contains(err.Error(), empty) {
		t.Errorf("LoadPool(garbage) = %v, want an error naming %s", err, empty)
	}
	missing := filepath.Join(dir, "missing.crt")
	if _, err := certs.ServerConfig(missing, missing, ""); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("ServerConfig(missing) = %v, want an error naming %s", err, missing)
	}
	if _, err := certs.ClientConfig("", "", "", ""); err == nil {
		t.Error("ClientConfig without a CA file: no error")
	}
}
