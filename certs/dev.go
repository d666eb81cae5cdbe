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
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// CA names one of the development issuing CAs. Each signs one kind of
// certificate, so that a server trusts exactly the holders it serves: a POS
// certificate never chains to the CA HQ trusts for gateways.
type CA string

// The development CAs.
const (
	// CAServer signs server certificates (storegated's POS listener,
	// storegate-hq's listeners): every client trusts it, and only it, for
	// servers.
	CAServer CA = "server"
	// CAPOS signs POS terminals' and store supervisors' client
	// certificates: the gateway's POS listener trusts only it.
	CAPOS CA = "pos"
	// CAGateway signs gateways' client certificates: HQ's CentralService
	// listener trusts only it.
	CAGateway CA = "gateway"
	// CAOperator signs operators' client certificates: HQ's admin listener
	// trusts only it.
	CAOperator CA = "operator"
)

// CAs lists the development CAs.
var CAs = []CA{CAServer, CAPOS, CAGateway, CAOperator}

// CertFile is the CA's certificate file in a development folder, for
// example "pos-ca.crt": what a server's client_ca_file, or a client's CA
// file, names.
func (ca CA) CertFile() string { return string(ca) + "-ca.crt" }

// KeyFile is the CA's private key file, for example "pos-ca.key"; nothing at
// run time needs it, only IssueDev.
func (ca CA) KeyFile() string { return string(ca) + "-ca.key" }

// IssuerOf returns the CA that signs certificates of kind k: POS terminals
// and supervisors share CAPOS (both are clients of the POS listener),
// gateways have CAGateway and operators CAOperator.
func IssuerOf(k Kind) CA {
	switch k {
	case KindPOS, KindSupervisor:
		return CAPOS
	case KindGateway:
		return CAGateway
	case KindOperator:
		return CAOperator
	}
	return ""
}

// Files of a development folder besides the CAs' (CA.CertFile, CA.KeyFile)
// and the client certificates' (CertFiles). Certificates are PEM
// "CERTIFICATE" blocks, keys PKCS#8 PEM "PRIVATE KEY" blocks written with
// mode 0600.
const (
	// ServerCertFile and ServerKeyFile are a server certificate, signed by
	// CAServer, for the development hosts: storegated's POS listener and
	// storegate-hq's listeners.
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

// CertFiles returns the names of id's development certificate and key
// files: id.FileBase() with ".crt" and ".key", for example
// "pos-store-0001-lane-1.crt".
func CertFiles(id Identity) (cert, key string) {
	return id.FileBase() + ".crt", id.FileBase() + ".key"
}

// Validity of the development certificates: long enough that a lab store
// does not trip over them, short enough that nobody mistakes them for
// production material.
const (
	DevCAValidity   = 3 * 365 * 24 * time.Hour
	DevLeafValidity = 397 * 24 * time.Hour
)

// Defaults of MakeDev's set.
const (
	// DefaultDevStore is the store the default set's gateway, POS and
	// supervisor certificates name.
	DefaultDevStore = "store-0001"
	// DefaultDevSupervisor and DefaultDevOperator name the default set's
	// supervisor and operator.
	DefaultDevSupervisor = "manager"
	DefaultDevOperator   = "ops"
)

// DefaultDevHosts are the names and addresses the development server
// certificate is valid for.
var DefaultDevHosts = []string{"localhost", "127.0.0.1", "::1"}

// DefaultDevLanes are the lanes the default set has POS certificates for.
var DefaultDevLanes = []string{"1", "2"}

// DevOptions tunes MakeDev and IssueDev. The zero value is usable.
type DevOptions struct {
	// Hosts are the DNS names and IP addresses of the server certificate;
	// empty means DefaultDevHosts.
	Hosts []string
	// Now dates the certificates; zero means the current time.
	Now time.Time
	// Name prefixes the certificates' common names; empty means
	// "storegate dev".
	Name string
	// Chain is the trust domain of the default set's identities; empty
	// means DevChain. IssueDev takes the chain from the identity.
	Chain string
	// Store is the store of the default set's gateway, POS and supervisor
	// certificates; empty means DefaultDevStore.
	Store string
}

func (o *DevOptions) fill() {
	if len(o.Hosts) == 0 {
		o.Hosts = DefaultDevHosts
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Name == "" {
		o.Name = "storegate dev"
	}
	if o.Chain == "" {
		o.Chain = DevChain
	}
	if o.Store == "" {
		o.Store = DefaultDevStore
	}
}

// DevSet returns the identities of MakeDev's default set for opts: store's
// gateway, the POS terminals of DefaultDevLanes, supervisor
// DefaultDevSupervisor and operator DefaultDevOperator.
func DevSet(opts DevOptions) []Identity {
	opts.fill()
	set := []Identity{Gateway(opts.Chain, opts.Store)}
	for _, lane := range DefaultDevLanes {
		set = append(set, POS(opts.Chain, opts.Store, lane))
	}
	return append(set,
		Supervisor(opts.Chain, opts.Store, DefaultDevSupervisor),
		Operator(opts.Chain, DefaultDevOperator))
}

// MakeDev creates, in dir, the development CAs (ECDSA P-256; see CA) and
// the default set: a server certificate for opts.Hosts, and a client
// certificate for each identity of DevSet(opts), each signed by the CA for
// its kind. It creates dir if needed and returns the files it wrote. It
// never overwrites: when any of its files exists it writes nothing and
// returns an error naming it.
func MakeDev(dir string, opts DevOptions) ([]string, error) {
	opts.fill()
	if !ValidChain(opts.Chain) || !ValidSegment(opts.Store) {
		return nil, fmt.Errorf("dev certificates: %w", Gateway(opts.Chain, opts.Store).Validate())
	}
	files := newFileSet(dir)
	cas := make(map[CA]*issuer, len(CAs))
	for _, ca := range CAs {
		iss, err := newCA(opts, ca)
		if err != nil {
			return nil, err
		}
		cas[ca] = iss
		if err := files.add(ca.CertFile(), certPEM(iss.der)); err != nil {
			return nil, err
		}
		if err := files.addKey(ca.KeyFile(), iss.key); err != nil {
			return nil, err
		}
	}
	der, key, err := cas[CAServer].serverCert(opts)
	if err != nil {
		return nil, err
	}
	if err := files.add(ServerCertFile, certPEM(der)); err != nil {
		return nil, err
	}
	if err := files.addKey(ServerKeyFile, key); err != nil {
		return nil, err
	}
	for _, id := range DevSet(opts) {
		if err := files.addClient(cas[IssuerOf(id.Kind)], id, opts); err != nil {
			return nil, err
		}
	}
	return files.write()
}

// IssueDev issues one more client certificate for id, signed by the CA for
// its kind that MakeDev left in dir, and writes it beside the others under
// the names CertFiles gives. It returns the certificate's and the key's
// paths. It never overwrites an existing file.
func IssueDev(dir string, id Identity, opts DevOptions) (certPath, keyPath string, err error) {
	opts.fill()
	if err := id.Validate(); err != nil {
		return "", "", fmt.Errorf("dev certificate: %w", err)
	}
	iss, err := loadCA(dir, IssuerOf(id.Kind))
	if err != nil {
		return "", "", fmt.Errorf("dev certificate for %s: %w", id, err)
	}
	files := newFileSet(dir)
	if err := files.addClient(iss, id, opts); err != nil {
		return "", "", err
	}
	if _, err := files.write(); err != nil {
		return "", "", err
	}
	cert, key := CertFiles(id)
	return filepath.Join(dir, cert), filepath.Join(dir, key), nil
}

// issuer is a CA that signs: its certificate and key.
type issuer struct {
	ca   CA
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

// notBefore backdates a little so that a peer whose clock is slightly
// behind accepts a certificate made a moment ago.
func notBefore(now time.Time) time.Time { return now.Add(-time.Hour) }

func newCA(opts DevOptions, ca CA) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: fmt.Sprintf("%s %s CA", opts.Name, ca), Organization: []string{"storegate development"}},
		NotBefore:             notBefore(opts.Now),
		NotAfter:              opts.Now.Add(DevCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	if ca != CAServer {
		// A client CA signs identities of its chain only; a certificate
		// naming another trust domain fails verification at the handshake.
		tmpl.PermittedURIDomains = []string{opts.Chain}
	}
	der, cert, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("dev %s CA: %w", ca, err)
	}
	return &issuer{ca: ca, cert: cert, der: der, key: key}, nil
}

// loadCA reads a CA MakeDev wrote in dir.
func loadCA(dir string, ca CA) (*issuer, error) {
	if ca == "" {
		return nil, errors.New("no CA signs that kind")
	}
	certPath, keyPath := filepath.Join(dir, ca.CertFile()), filepath.Join(dir, ca.KeyFile())
	der, err := readPEM(certPath, "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	keyDER, err := readPEM(keyPath, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s is not the key of %s", keyPath, certPath)
	}
	return &issuer{ca: ca, cert: cert, der: der, key: key}, nil
}

func readPEM(path, blockType string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != blockType {
		return nil, fmt.Errorf("%s holds no PEM %s block", path, blockType)
	}
	return block.Bytes, nil
}

// leaf signs a leaf certificate for tmpl's names with a new key.
func (iss *issuer) leaf(opts DevOptions, cn string, usage x509.ExtKeyUsage, tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.Subject = pkix.Name{CommonName: cn, Organization: []string{"storegate development"}}
	tmpl.NotBefore = notBefore(opts.Now)
	tmpl.NotAfter = opts.Now.Add(DevLeafValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	der, _, err := sign(tmpl, iss.cert, key.Public(), iss.key)
	if err != nil {
		return nil, nil, fmt.Errorf("%s certificate: %w", cn, err)
	}
	return der, key, nil
}

func (iss *issuer) serverCert(opts DevOptions) ([]byte, *ecdsa.PrivateKey, error) {
	tmpl := &x509.Certificate{}
	for _, h := range opts.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return iss.leaf(opts, opts.Name+" server", x509.ExtKeyUsageServerAuth, tmpl)
}

// clientCert signs id's client certificate: its SPIFFE ID as the one URI
// SAN, as an X.509-SVID carries it.
func (iss *issuer) clientCert(opts DevOptions, id Identity) ([]byte, *ecdsa.PrivateKey, error) {
	if want := IssuerOf(id.Kind); iss.ca != want {
		return nil, nil, fmt.Errorf("a %s certificate is signed by the %s CA, not the %s CA", id.Kind, want, iss.ca)
	}
	tmpl := &x509.Certificate{URIs: []*url.URL{id.URL()}}
	return iss.leaf(opts, opts.Name+" "+id.FileBase(), x509.ExtKeyUsageClientAuth, tmpl)
}

// fileSet collects files to write into a folder all at once, none of which
// may exist yet.
type fileSet struct {
	dir   string
	names []string
	data  map[string][]byte
}

func newFileSet(dir string) *fileSet { return &fileSet{dir: dir, data: map[string][]byte{}} }

func (f *fileSet) add(name string, b []byte) error {
	if _, dup := f.data[name]; dup {
		return fmt.Errorf("dev certificates: %s is made twice", name)
	}
	f.names = append(f.names, name)
	f.data[name] = b
	return nil
}

func (f *fileSet) addKey(name string, key *ecdsa.PrivateKey) error {
	b, err := keyPEM(key)
	if err != nil {
		return err
	}
	return f.add(name, b)
}

func (f *fileSet) addClient(iss *issuer, id Identity, opts DevOptions) error {
	der, key, err := iss.clientCert(opts, id)
	if err != nil {
		return err
	}
	cert, keyName := CertFiles(id)
	if err := f.add(cert, certPEM(der)); err != nil {
		return err
	}
	return f.addKey(keyName, key)
}

// write creates the folder if needed and writes every file, private keys
// 0600 and certificates 0644, after checking that none exists. It returns
// their paths.
func (f *fileSet) write() ([]string, error) {
	if err := os.MkdirAll(f.dir, 0o700); err != nil {
		return nil, fmt.Errorf("dev certificates: %w", err)
	}
	paths := make([]string, len(f.names))
	for i, name := range f.names {
		paths[i] = filepath.Join(f.dir, name)
		if _, err := os.Lstat(paths[i]); err == nil {
			return nil, fmt.Errorf("dev certificates: %s already exists; refusing to overwrite", paths[i])
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("dev certificates: %w", err)
		}
	}
	for i, name := range f.names {
		mode := os.FileMode(0o644)
		if filepath.Ext(name) == ".key" {
			mode = 0o600
		}
		if err := writeNew(paths[i], f.data[name], mode); err != nil {
			return nil, fmt.Errorf("dev certificates: %w", err)
		}
	}
	return paths, nil
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
