package hqkeys

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"storegate/gateway"
	"storegate/internal/durable"
)

// The files of an HQ key directory. Private keys are PKCS#8 PEM, public
// keys PKIX PEM, the keyset a COSE_Sign1 document.
const (
	// RootKeyFile holds the HQ root private key, which signs keysets.
	RootKeyFile = "root.key"
	// RootPubFile holds the root public key, which every gateway is
	// configured with.
	RootPubFile = "root.pub"
	// TokenKeyFile holds the private key that signs payment tokens.
	TokenKeyFile = "token.key"
	// TokenPubFile holds the token-signing public key.
	TokenPubFile = "token.pub"
	// KeysetFile holds the keyset naming the token key, signed by the root
	// key.
	KeysetFile = "keyset.cose"
)

// keyFiles lists every file Init writes.
var keyFiles = []string{RootKeyFile, RootPubFile, TokenKeyFile, TokenPubFile, KeysetFile}

// Keys is HQ's key material: the root key that signs keysets, policies and
// freeze lists, the token-signing key, and the keyset naming it.
type Keys struct {
	Root        ed25519.PrivateKey
	RootPublic  ed25519.PublicKey
	Token       ed25519.PrivateKey
	TokenPublic ed25519.PublicKey
	// Keyring is the verified keyset: the keys tokens are checked against.
	Keyring *gateway.Keyring
	// Keyset is the signed keyset document, as stores receive it.
	Keyset []byte
}

// Init creates a new root key, token-signing key and keyset (version
// 1, naming the token key for use TOKEN, signed by the root key) in dir,
// creating dir if needed, and returns them loaded. Private keys are written
// with mode 0600. It never overwrites: if any of the files exists it writes
// nothing and returns ECONFLICT.
func Init(dir string) (*Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("init HQ keys: %w", err)
	}
	for _, name := range keyFiles {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return nil, gateway.Errorf(gateway.ECONFLICT, "init HQ keys: %s already exists; refusing to overwrite keys", filepath.Join(dir, name))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("init HQ keys: %w", err)
		}
	}

	rootPub, root, err := gateway.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("init HQ keys: root key: %w", err)
	}
	tokenPub, token, err := gateway.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("init HQ keys: token key: %w", err)
	}
	keyset, err := gateway.SignKeyset(root, gateway.NewKeyset(1, time.Now(), tokenPub))
	if err != nil {
		return nil, fmt.Errorf("init HQ keys: %w", err)
	}
	files := make(map[string][]byte, len(keyFiles))
	if files[RootKeyFile], err = gateway.MarshalPrivateKeyPEM(root); err != nil {
		return nil, err
	}
	if files[RootPubFile], err = gateway.MarshalPublicKeyPEM(rootPub); err != nil {
		return nil, err
	}
	if files[TokenKeyFile], err = gateway.MarshalPrivateKeyPEM(token); err != nil {
		return nil, err
	}
	if files[TokenPubFile], err = gateway.MarshalPublicKeyPEM(tokenPub); err != nil {
		return nil, err
	}
	files[KeysetFile] = keyset

	var written []string
	for _, name := range keyFiles {
		perm := fs.FileMode(0o644)
		if name == RootKeyFile || name == TokenKeyFile {
			perm = 0o600
		}
		if err := writeNewFile(dir, name, files[name], perm); err != nil {
			// Leave no partial key set behind.
			for _, w := range written {
				os.Remove(filepath.Join(dir, w))
			}
			return nil, fmt.Errorf("init HQ keys: %w", err)
		}
		written = append(written, name)
	}
	if err := durable.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("init HQ keys: %w", err)
	}
	return Load(dir)
}

// writeNewFile durably writes data to dir/name with mode perm, failing with
// ECONFLICT if that file exists. The data is written to a temporary file
// and linked into place, so the file appears whole or not at all.
func writeNewFile(dir, name string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Link(tmp, filepath.Join(dir, name)); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return gateway.Errorf(gateway.ECONFLICT, "%s already exists; refusing to overwrite keys", filepath.Join(dir, name))
		}
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// Load reads the key material Init wrote in dir and checks it:
// each public key matches its private key, private key files are not
// readable by group or others, and the keyset is signed by the root key and
// names the token key. A missing file is ENOTFOUND; bad material is
// EINVALID.
func Load(dir string) (*Keys, error) {
	var k Keys
	var err error
	if k.Root, k.RootPublic, err = loadKeyPair(dir, RootKeyFile, RootPubFile); err != nil {
		return nil, err
	}
	if k.Token, k.TokenPublic, err = loadKeyPair(dir, TokenKeyFile, TokenPubFile); err != nil {
		return nil, err
	}
	if k.Keyset, err = readKeyFile(dir, KeysetFile); err != nil {
		return nil, err
	}
	if k.Keyring, err = gateway.OpenKeyset(k.Keyset, k.RootPublic); err != nil {
		return nil, fmt.Errorf("load HQ keys: %s: %w", KeysetFile, err)
	}
	key, ok := k.Keyring.Lookup(gateway.KeyID(k.TokenPublic))
	if !ok || key.Use != gateway.KeyUseToken || key.Retired {
		return nil, gateway.Errorf(gateway.EINVALID, "load HQ keys: %s does not name %s as a current token-signing key", KeysetFile, TokenPubFile)
	}
	return &k, nil
}

// loadKeyPair reads a private key and its public key and checks they match.
func loadKeyPair(dir, privName, pubName string) (ed25519.PrivateKey, ed25519.PublicKey, error) {
	path := filepath.Join(dir, privName)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, keyFileError(path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, nil, gateway.Errorf(gateway.EINVALID, "load HQ keys: %s is readable by others (mode %#o); want 0600", path, fi.Mode().Perm())
	}
	raw, err := readKeyFile(dir, privName)
	if err != nil {
		return nil, nil, err
	}
	priv, err := gateway.ParsePrivateKeyPEM(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("load HQ keys: %s: %w", privName, err)
	}
	if raw, err = readKeyFile(dir, pubName); err != nil {
		return nil, nil, err
	}
	pub, err := gateway.ParsePublicKeyPEM(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("load HQ keys: %s: %w", pubName, err)
	}
	if !pub.Equal(priv.Public()) {
		return nil, nil, gateway.Errorf(gateway.EINVALID, "load HQ keys: %s is not the public key of %s", pubName, privName)
	}
	return priv, pub, nil
}

func readKeyFile(dir, name string) ([]byte, error) {
	path := filepath.Join(dir, name)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, keyFileError(path, err)
	}
	return raw, nil
}

func keyFileError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &gateway.Error{Code: gateway.ENOTFOUND, Message: fmt.Sprintf("load HQ keys: %s does not exist", path), Err: err}
	}
	return fmt.Errorf("load HQ keys: %w", err)
}
