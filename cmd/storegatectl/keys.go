package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	"storegate/gateway"
	"storegate/hqkeys"
	documentv1 "storegate/proto/storegate/document/v1"
	storegatev1 "storegate/proto/storegate/v1"
)

func runKeysInit(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keys init", "--dir DIR",
		"Makes HQ's keys in DIR: root.key/root.pub (the HQ root, which signs keysets and\npolicies), token.key/token.pub (token signing), and keyset.cose (the signed keyset a\ngateway loads). Keys are Ed25519 PEM (PKCS#8 / PKIX); private keys are written 0600.\nExisting keys are never overwritten. For development and tests: production keys\nbelong in HQ's key management.")
	dir := fs.String("dir", "", "directory for the keys")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return usagef("--dir is required")
	}
	keys, err := hqkeys.Init(*dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "keys in %s: root kid %s, token kid %s, keyset version %d\n", *dir, gateway.KeyIDString(keys.RootPublic), gateway.KeyIDString(keys.TokenPublic), keys.Keyring.Version)
	return nil
}

func runKeysetApply(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keyset apply", "[--admin-socket PATH] FILE",
		"Pushes a keyset signed by HQ's root key to a running gateway over its admin socket\n(AdminService.ApplyKeyset). An older version than the one the gateway holds is refused.")
	socket := adminSocketFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one keyset file")
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	conn, ctx, done, err := connectAdmin(ctx, *socket, callTimeout)
	if err != nil {
		return err
	}
	defer done()
	res, err := storegatev1.NewAdminServiceClient(conn).ApplyKeyset(ctx, &storegatev1.ApplyKeysetRequest{Document: &storegatev1.SignedDocument{CoseSign1: raw}})
	if err != nil {
		return rpcError(err)
	}
	if res.GetApplied().GetUnchanged() {
		fmt.Fprintf(e.stdout, "keyset version %d already held\n", res.GetApplied().GetVersion())
	} else {
		fmt.Fprintf(e.stdout, "keyset version %d applied\n", res.GetApplied().GetVersion())
	}
	return nil
}

func runKeysetAdd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keyset add", "--pub FILE [--use token|policy] --root-key root.key [--hq ADDR]",
		"Adds a public key to HQ's keyset: a new token-signing key (use token), or a key that may\n"+
			"sign policies and freeze lists in the root key's place (use policy). The next keyset\n"+
			"version is signed with the root key and published through HQ to every store.")
	hq := addHQFlags(fs)
	pubPath := fs.String("pub", "", "the public key to add (PEM, PKIX)")
	use := fs.String("use", "token", "what the key may sign: token or policy")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pubPath == "" || fs.NArg() > 0 {
		return usagef("--pub is required, and nothing else")
	}
	keyUse, ok := map[string]gateway.KeyUse{"token": gateway.KeyUseToken, "policy": gateway.KeyUsePolicy}[*use]
	if !ok {
		return usagef("--use: %q is not token or policy", *use)
	}
	pem, err := os.ReadFile(*pubPath)
	if err != nil {
		return err
	}
	key, err := gateway.ParsePublicKeyPEM(pem)
	if err != nil {
		return fmt.Errorf("%s: %w", *pubPath, err)
	}
	return changeKeyset(ctx, e, hq, func(ks *documentv1.Keyset) error { return gateway.AddKey(ks, key, keyUse) },
		fmt.Sprintf("added %s key %s", *use, gateway.KeyIDString(key)))
}

func runKeysetRetire(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keyset retire", "--kid HEX --root-key root.key [--hq ADDR]",
		"Retires a key of HQ's keyset: stores then decline its tokens as key_retired and refuse\n"+
			"policies and freeze lists it signs. The key stays listed, so that its tokens are named\n"+
			"as retired rather than unknown.")
	hq := addHQFlags(fs)
	kidHex := fs.String("kid", "", "the key's id, as `keys init` and the logs print it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	kid, err := hex.DecodeString(*kidHex)
	if err != nil || len(kid) != gateway.KeyIDSize || fs.NArg() > 0 {
		return usagef("--kid: want %d bytes in hex, and nothing else", gateway.KeyIDSize)
	}
	return changeKeyset(ctx, e, hq, func(ks *documentv1.Keyset) error { return gateway.RetireKey(ks, kid) },
		"retired key "+*kidHex)
}

// changeKeyset publishes the next version of HQ's keyset, changed by edit.
func changeKeyset(ctx context.Context, e *env, hq *hqOptions, edit func(*documentv1.Keyset) error, done string) error {
	pub, closeConn, err := hq.open()
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(ctx, *hq.timeout)
	defer cancel()
	res, err := pub.publishNext(ctx, storegatev1.DocumentKind_DOCUMENT_KIND_KEYSET, *hq.out, func() ([]byte, error) {
		ring, err := pub.keyring()
		if err != nil {
			return nil, err
		}
		if ring == nil {
			return nil, fmt.Errorf("HQ has published no keyset to change")
		}
		ks := ring.KeysetProto(ring.Version+1, time.Now())
		if err := edit(ks); err != nil {
			return nil, err
		}
		return gateway.SignKeyset(pub.root, ks)
	})
	if err != nil {
		return err
	}
	printPublished(e.stdout, "keyset", res)
	fmt.Fprintln(e.stdout, done)
	return nil
}
