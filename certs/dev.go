package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files that MakeDev writes. Certificates are PEM "CERTIFICATE" blocks, keys
// PKCS#8 PEM "PRIVATE KEY" blocks written with mode 0600.
const (
	// CACertFile is the development CA's certificate: the trust anchor
	// both ends of every link are configured with.
	CACertFile = "ca.crt"
	// CAKeyFile is the development CA's private key; nothing at run time
	// needs it.
	CAKeyFile = "ca.key"
	// ServerCertFile and ServerKeyFile are a server certificate for the
	// development hosts (storegated's and storegate-hq's listeners).
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
	// POSCertFile and POSKeyFile are a client certificate for a lane's POS
	// (and storegatectl).
	POSCertFile = "pos.crt"
	POSKeyFile  = "pos.key"
	// GatewayCertFile and GatewayKeyFile are the gateway's client
	// certificate toward the central service.
	GatewayCertFile = "gateway.crt"
	GatewayKeyFile  = "gateway.key"
)

// Validity of the development certificates: long enough that a lab store
// does not trip over them, short enough that nobody mistakes them for
// production material.
const (
	DevCAValidity   = 3 * 365 * 24 * time.Hour
	DevLeafValidity = 397 * 24 * time.Hour
)

// DefaultDevHosts are the names and addresses the development server
// certificate is valid for.
var DefaultDevHosts = []string{"localhost", "127.0.0.1", "::1"}

var devFiles = []string{
	CACertFile, CAKeyFile, ServerCertFile, ServerKeyFile,
	POSCertFile, POSKeyFile, GatewayCertFile, GatewayKeyFile,
}

// DevOptions tunes MakeDev. The zero value is usable.
type DevOptions struct {
	// Hosts are the DNS names and IP addresses of the server certificate;
	// empty means DefaultDevHosts.
	Hosts []string
	// Now dates the certificates; zero means the current time.
	Now time.Time
	// Name prefixes the certificates' common names; empty means
	// "storegate dev".
	Name string
}

// MakeDev creates, in dir, a development CA (ECDSA P-256) and, signed by it,
// a server certificate for opts.Hosts and client certificates for a POS and
// for the gateway. It creates dir if needed. It never overwrites: when any
// of its files exists it writes nothing and returns an error naming it.
func MakeDev(dir string, opts DevOptions) error {
	if len(opts.Hosts) == 0 {
		opts.Hosts = DefaultDevHosts
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Name == "" {
		opts.Name = "storegate dev"
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dev certificates: %w", err)
	}
	for _, name := range devFiles {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("dev certificates: %s already exists; refusing to overwrite", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("dev certificates: %w", err)
		}
	}

	// Backdate a little so that a peer whose clock is slightly behind
	// accepts a certificate made a moment ago.
	notBefore := opts.Now.Add(-time.Hour)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: opts.Name + " CA", Organization: []string{"storegate development"}},
		NotBefore:             notBefore,
		NotAfter:              opts.Now.Add(DevCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, caCert, err := sign(caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return fmt.Errorf("dev CA: %w", err)
	}
	files := map[string][]byte{CACertFile: certPEM(caDER)}
	if files[CAKeyFile], err = keyPEM(caKey); err != nil {
		return err
	}

	leaf := func(cn string, usage x509.ExtKeyUsage, hosts []string, certName, keyName string) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			Subject:     pkix.Name{CommonName: cn, Organization: []string{"storegate development"}},
			NotBefore:   notBefore,
			NotAfter:    opts.Now.Add(DevLeafValidity),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage},
		}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		der, _, err := sign(tmpl, caCert, key.Public(), caKey)
		if err != nil {
			return fmt.Errorf("%s certificate: %w", cn, err)
		}
		files[certName] = certPEM(der)
		files[keyName], err = keyPEM(key)
		return err
	}
	if err := leaf(opts.Name+" server", x509.ExtKeyUsageServerAuth, opts.Hosts, ServerCertFile, ServerKeyFile); err != nil {
		return err
	}
	if err := leaf(opts.Name+" pos", x509.ExtKeyUsageClientAuth, nil, POSCertFile, POSKeyFile); err != nil {
		return err
	}
	if err := leaf(opts.Name+" gateway", x509.ExtKeyUsageClientAuth, nil, GatewayCertFile, GatewayKeyFile); err != nil {
		return err
	}

	for _, name := range devFiles {
		mode := os.FileMode(0o644)
		if filepath.Ext(name) == ".key" {
			mode = 0o600
		}
		if err := writeNew(filepath.Join(dir, name), files[name], mode); err != nil {
			return fmt.Errorf("dev certificates: %w", err)
		}
	}
	return nil
}

func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return der, cert, err
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeNew creates path exclusively, so that a file appearing since the
// check is never overwritten either.
func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
