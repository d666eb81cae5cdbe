package hqkeys_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"storegate/gateway"
	"storegate/hqkeys"
)

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	keys, err := hqkeys.Init(dir)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}

	for name, want := range map[string]os.FileMode{
		hqkeys.RootKeyFile: 0o600, hqkeys.TokenKeyFile: 0o600,
		hqkeys.RootPubFile: 0o644, hqkeys.TokenPubFile: 0o644, hqkeys.KeysetFile: 0o644,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode: got %#o, want %#o", name, got, want)
		}
	}
	if got := keys.Keyring.Version; got != 1 {
		t.Errorf("keyset version: got %d, want 1", got)
	}
	k, ok := keys.Keyring.Lookup(gateway.KeyID(keys.TokenPublic))
	if !ok || k.Use != gateway.KeyUseToken || !k.Public.Equal(keys.TokenPublic) {
		t.Errorf("keyring: token key %s missing or not for tokens (%+v)", gateway.KeyIDString(keys.TokenPublic), k)
	}
	if _, ok := keys.Keyring.Lookup(gateway.KeyID(keys.RootPublic)); ok {
		t.Errorf("keyring: holds the root key as a token key")
	}
	if _, err := gateway.OpenKeyset(keys.Keyset, keys.RootPublic); err != nil {
		t.Errorf("keyset does not open under the root key: %v", err)
	}

	// A token signed with the token key verifies against the keyring.
	now := time.Now()
	id, err := gateway.NewTokenID()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := gateway.MintToken(keys.Token, gateway.Claims{
		Issuer: "hq", Account: "acct-1", IssuedAt: now, Expires: now.Add(time.Minute),
		TokenID: id, Device: "phone-1", Assurance: gateway.AssuranceDeviceBound,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (gateway.TokenVerifier{}).Verify(tok, keys.Keyring, now); err != nil {
		t.Errorf("token signed by the token key: %v", err)
	}

	t.Run("Load", func(t *testing.T) {
		loaded, err := hqkeys.Load(dir)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if !loaded.Root.Equal(keys.Root) || !loaded.Token.Equal(keys.Token) || !bytes.Equal(loaded.Keyset, keys.Keyset) {
			t.Errorf("Load returned other keys than Init made")
		}
	})

	t.Run("ErrRefusesOverwrite", func(t *testing.T) {
		before, err := os.ReadFile(filepath.Join(dir, hqkeys.RootKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		_, err = hqkeys.Init(dir)
		if got := gateway.ErrorCode(err); got != gateway.ECONFLICT {
			t.Errorf("second Init: got %q (%v), want %q", got, err, gateway.ECONFLICT)
		}
		after, err := os.ReadFile(filepath.Join(dir, hqkeys.RootKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Errorf("root key changed by a refused Init")
		}
	})
}

func TestInit_RefusesPartialSet(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, hqkeys.TokenPubFile), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := hqkeys.Init(dir)
	if got := gateway.ErrorCode(err); got != gateway.ECONFLICT {
		t.Errorf("got %q (%v), want %q", got, err, gateway.ECONFLICT)
	}
	if _, err := os.Stat(filepath.Join(dir, hqkeys.RootKeyFile)); !os.IsNotExist(err) {
		t.Errorf("%s: got %v, want it not written", hqkeys.RootKeyFile, err)
	}
}

func TestLoad(t *testing.T) {
	t.Run("ErrMissing", func(t *testing.T) {
		_, err := hqkeys.Load(t.TempDir())
		if got := gateway.ErrorCode(err); got != gateway.ENOTFOUND {
			t.Errorf("got %q (%v), want %q", got, err, gateway.ENOTFOUND)
		}
	})
	t.Run("ErrReadableByOthers", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := hqkeys.Init(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, hqkeys.TokenKeyFile), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := hqkeys.Load(dir)
		if got := gateway.ErrorCode(err); got != gateway.EINVALID {
			t.Errorf("got %q (%v), want %q", got, err, gateway.EINVALID)
		}
	})
	t.Run("ErrMismatchedPublicKey", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := hqkeys.Init(dir); err != nil {
			t.Fatal(err)
		}
		other, _, err := gateway.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		pem, err := gateway.MarshalPublicKeyPEM(other)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, hqkeys.RootPubFile), pem, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = hqkeys.Load(dir)
		if got := gateway.ErrorCode(err); got != gateway.EINVALID {
			t.Errorf("got %q (%v), want %q", got, err, gateway.EINVALID)
		}
	})
}
