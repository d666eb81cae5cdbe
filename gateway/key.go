package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// KeyIDSize is the length of a key id: the first 8 bytes of the SHA-256 of
// the raw public key.
const KeyIDSize = 8

// KeyID returns the key id of an Ed25519 public key.
func KeyID(pub ed25519.PublicKey) []byte {
	sum := sha256.Sum256(pub)
	return sum[:KeyIDSize]
}

// KeyIDString returns the key id in hex, for logs and tools.
func KeyIDString(pub ed25519.PublicKey) string { return hex.EncodeToString(KeyID(pub)) }

// GenerateKey makes a new Ed25519 key pair from crypto/rand.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

// MarshalPrivateKeyPEM encodes an Ed25519 private key as a PKCS#8 "PRIVATE
// KEY" PEM block.
func MarshalPrivateKeyPEM(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKeyPEM encodes an Ed25519 public key as a PKIX "PUBLIC KEY"
// PEM block.
func MarshalPublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKeyPEM decodes a PKCS#8 "PRIVATE KEY" PEM block holding an
// Ed25519 key. Any other key type is an error.
func ParsePrivateKeyPEM(b []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, Errorf(EINVALID, "private key: want a PEM block of type PRIVATE KEY (PKCS#8)")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, &Error{Code: EINVALID, Message: "private key: bad PKCS#8", Err: err}
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, Errorf(EINVALID, "private key: %T is not Ed25519", k)
	}
	return priv, nil
}

// ParsePublicKeyPEM decodes a PKIX "PUBLIC KEY" PEM block holding an Ed25519
// key. Any other key type is an error.
func ParsePublicKeyPEM(b []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, Errorf(EINVALID, "public key: want a PEM block of type PUBLIC KEY (PKIX)")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, &Error{Code: EINVALID, Message: "public key: bad PKIX", Err: err}
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, Errorf(EINVALID, "public key: %T is not Ed25519", k)
	}
	return pub, nil
}
