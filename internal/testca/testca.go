package testca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority that signs whatever a test asks of it.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// serial numbers the certificates of a test run.
var serial atomic.Int64

// New returns a self-signed CA valid for an hour around now.
func New(tb testing.TB, name string) *CA {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &CA{Cert: cert, Key: key}
}

// Load reads a CA's PEM certificate and PKCS#8 key, for example one of
// storegate's development CAs, so that a test signs as its holder could.
func Load(tb testing.TB, certFile, keyFile string) *CA {
	tb.Helper()
	read := func(path string) []byte {
		b, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			tb.Fatalf("%s: no PEM block", path)
		}
		return block.Bytes
	}
	cert, err := x509.ParseCertificate(read(certFile))
	if err != nil {
		tb.Fatal(err)
	}
	k, err := x509.ParsePKCS8PrivateKey(read(keyFile))
	if err != nil {
		tb.Fatal(err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		tb.Fatalf("%s: not an ECDSA key", keyFile)
	}
	return &CA{Cert: cert, Key: key}
}

// PEM returns the CA's certificate as a PEM block, for a CA file.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Pool returns a pool holding the CA alone.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Issue signs a leaf for "localhost" with the given extended key usage and
// URI SANs (none, one, several, any text url.Parse reads).
func (ca *CA) Issue(tb testing.TB, usage x509.ExtKeyUsage, uris ...string) tls.Certificate {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: "test leaf"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		DNSNames: []string{"localhost"},
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			tb.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Client is Issue for a client certificate (clientAuth).
func (ca *CA) Client(tb testing.TB, uris ...string) tls.Certificate {
	tb.Helper()
	return ca.Issue(tb, x509.ExtKeyUsageClientAuth, uris...)
}
