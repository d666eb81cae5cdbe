package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
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

// makeDev makes a development set in a fresh folder.
func makeDev(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if _, err := certs.MakeDev(dir, certs.DevOptions{Name: name}); err != nil {
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

func poolOf(t *testing.T, dir string, ca certs.CA) *x509.CertPool {
	t.Helper()
	pool, err := certs.LoadPool(filepath.Join(dir, ca.CertFile()))
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func clientFile(dir string, id certs.Identity) string {
	cert, _ := certs.CertFiles(id)
	return filepath.Join(dir, cert)
}

func TestMakeDev(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	dir := filepath.Join(t.TempDir(), "tls")
	written, err := certs.MakeDev(dir, certs.DevOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	set := certs.DevSet(certs.DevOptions{})
	if want := 2*len(certs.CAs) + 2 + 2*len(set); len(written) != want {
		t.Errorf("MakeDev wrote %d files, want %d: %q", len(written), want, written)
	}
	for _, ca := range certs.CAs {
		if c := readCert(t, filepath.Join(dir, ca.CertFile())); !c.IsCA {
			t.Errorf("%s is not a CA certificate", ca.CertFile())
		}
	}
	verify := func(c *x509.Certificate, ca certs.CA, usage x509.ExtKeyUsage) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: poolOf(t, dir, ca), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}

	t.Run("ServerChainsForEveryHost", func(t *testing.T) {
		srv := readCert(t, filepath.Join(dir, certs.ServerCertFile))
		for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
			if _, err := srv.Verify(x509.VerifyOptions{DNSName: h, Roots: poolOf(t, dir, certs.CAServer), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("server certificate for %s: %v", h, err)
			}
		}
		if _, err := srv.Verify(x509.VerifyOptions{DNSName: "hq.example.internal", Roots: poolOf(t, dir, certs.CAServer), CurrentTime: now}); err == nil {
			t.Error("server certificate verifies for a host it was not made for")
		}
		for _, ca := range []certs.CA{certs.CAPOS, certs.CAGateway, certs.CAOperator} {
			if verify(srv, ca, x509.ExtKeyUsageServerAuth) == nil {
				t.Errorf("the server certificate chains to the %s CA", ca)
			}
		}
	})
	t.Run("EachClientNamesItselfUnderItsOwnCA", func(t *testing.T) {
		for _, id := range set {
			c := readCert(t, clientFile(dir, id))
			got, err := certs.FromCertificate(c)
			if err != nil || got != id {
				t.Errorf("%s names %+v, %v; want %+v", clientFile(dir, id), got, err, id)
			}
			for _, ca := range certs.CAs {
				err := verify(c, ca, x509.ExtKeyUsageClientAuth)
				if mine := ca == certs.IssuerOf(id.Kind); mine && err != nil {
					t.Errorf("%s as a client under the %s CA: %v", id, ca, err)
				} else if !mine && err == nil {
					t.Errorf("%s chains to the %s CA too", id, ca)
				}
			}
			if verify(c, certs.IssuerOf(id.Kind), x509.ExtKeyUsageServerAuth) == nil {
				t.Errorf("%s verifies as a server certificate", id)
			}
		}
	})
	t.Run("DefaultSet", func(t *testing.T) {
		for _, name := range []string{"gateway-store-0001.crt", "pos-store-0001-lane-1.crt", "pos-store-0001-lane-2.crt",
			"supervisor-store-0001-manager.crt", "operator-ops.crt"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("default set: %v", err)
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
		if ca := readCert(t, filepath.Join(dir, certs.CAServer.CertFile())); ca.NotAfter.Before(srv.NotAfter) {
			t.Errorf("CA expires %s, before the certificates it signed (%s)", ca.NotAfter, srv.NotAfter)
		}
	})
	t.Run("PrivateKeysAre0600", func(t *testing.T) {
		for _, p := range written {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			want := os.FileMode(0o644)
			if filepath.Ext(p) == ".key" {
				want = 0o600
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), want)
			}
		}
	})
	t.Run("ErrExists", func(t *testing.T) {
		caKey := filepath.Join(dir, certs.CAPOS.KeyFile())
		before, _ := os.ReadFile(caKey)
		_, err := certs.MakeDev(dir, certs.DevOptions{})
		if err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("second MakeDev: %v, want a refusal", err)
		}
		after, _ := os.ReadFile(caKey)
		if string(before) != string(after) {
			t.Fatal("the CA key was overwritten")
		}
	})
}

func TestIssueDev(t *testing.T) {
	dir := makeDev(t, "store")
	for _, id := range []certs.Identity{
		certs.POS(certs.DevChain, "store-0001", "7"),
		certs.POS(certs.DevChain, "store-0002", "1"),
		certs.Supervisor(certs.DevChain, "store-0001", "night"),
		certs.Gateway(certs.DevChain, "store-0002"),
		certs.Operator(certs.DevChain, "hanako"),
	} {
		t.Run(id.FileBase(), func(t *testing.T) {
			certPath, keyPath, err := certs.IssueDev(dir, id, certs.DevOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
				t.Fatal(err)
			}
			c := readCert(t, certPath)
			if got, err := certs.FromCertificate(c); err != nil || got != id {
				t.Fatalf("issued certificate names %+v, %v; want %+v", got, err, id)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: poolOf(t, dir, certs.IssuerOf(id.Kind)), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Fatalf("issued certificate under its CA: %v", err)
			}
			if _, _, err := certs.IssueDev(dir, id, certs.DevOptions{}); err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Fatalf("issuing %s again: %v, want a refusal", id, err)
			}
		})
	}
	t.Run("ErrOtherChainUnderTheCA", func(t *testing.T) {
		// The client CAs are name-constrained to their trust domain.
		id := certs.POS("other.example", "store-0009", "1")
		certPath, _, err := certs.IssueDev(dir, id, certs.DevOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readCert(t, certPath).Verify(x509.VerifyOptions{Roots: poolOf(t, dir, certs.CAPOS), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			t.Fatal("a certificate naming another trust domain verifies under the development CA")
		}
	})
	t.Run("ErrInvalidIdentity", func(t *testing.T) {
		if _, _, err := certs.IssueDev(dir, certs.POS(certs.DevChain, "store-0001", "a/b"), certs.DevOptions{}); !errors.Is(err, certs.ErrInvalidIdentity) {
			t.Fatalf("err = %v, want ErrInvalidIdentity", err)
		}
	})
	t.Run("ErrNoCA", func(t *testing.T) {
		if _, _, err := certs.IssueDev(t.TempDir(), certs.POS(certs.DevChain, "store-0001", "1"), certs.DevOptions{}); err == nil || !strings.Contains(err.Error(), "pos-ca.crt") {
			t.Fatalf("err = %v, want one naming pos-ca.crt", err)
		}
	})
}

// serveHealth serves grpc.health.v1 with TLS from dir's server certificate,
// requiring client certificates from dir's POS CA.
func serveHealth(t *testing.T, dir string) string {
	t.Helper()
	cfg, err := certs.ServerConfig(filepath.Join(dir, certs.ServerCertFile), filepath.Join(dir, certs.ServerKeyFile), filepath.Join(dir, certs.CAPOS.CertFile()))
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

// check calls the health service, trusting caDir's server CA and, when id
// is set, presenting certDir's certificate for id.
func check(t *testing.T, addr, caDir, certDir string, id certs.Identity) error {
	t.Helper()
	var cert, key string
	if id != (certs.Identity{}) {
		cert, key = certs.CertFiles(id)
		cert, key = filepath.Join(certDir, cert), filepath.Join(certDir, key)
	}
	cfg, err := certs.ClientConfig(filepath.Join(caDir, certs.CAServer.CertFile()), cert, key, "")
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
	lane1 := certs.POS(certs.DevChain, certs.DefaultDevStore, "1")

	t.Run("OK", func(t *testing.T) {
		if err := check(t, addr, store, store, lane1); err != nil {
			t.Fatalf("POS with the store's POS CA's certificate: %v", err)
		}
	})
	t.Run("ErrNoClientCertificate", func(t *testing.T) {
		if err := check(t, addr, store, "", certs.Identity{}); err == nil {
			t.Fatal("a client without a certificate was served")
		}
	})
	t.Run("ErrOtherCA", func(t *testing.T) {
		if err := check(t, addr, store, other, lane1); err == nil {
			t.Fatal("a client with another CA's certificate was served")
		}
	})
	t.Run("ErrGatewayCertificateAtThePOSListener", func(t *testing.T) {
		// The gateway CA is not the POS CA: the handshake refuses it.
		if err := check(t, addr, store, store, certs.Gateway(certs.DevChain, certs.DefaultDevStore)); err == nil {
			t.Fatal("a gateway certificate was taken by a listener that trusts only the POS CA")
		}
	})
	t.Run("ErrServerFromOtherCA", func(t *testing.T) {
		// The client trusts only the other CA: the store's server
		// certificate must not satisfy it.
		if err := check(t, addr, other, other, lane1); err == nil {
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
