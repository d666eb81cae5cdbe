package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"storegate/central"
	"storegate/gateway"
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
	keys, err := central.InitHQKeys(*dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "keys in %s: root kid %s, token kid %s, keyset version %d\n", *dir, gateway.KeyIDString(keys.RootPublic), gateway.KeyIDString(keys.TokenPublic), keys.Keyring.Version)
	return nil
}

func runKeysetApply(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "keyset apply", "[--addr ADDR] FILE",
		"Pushes a keyset signed by HQ's root key to a running gateway (AdminService.ApplyKeyset).\nAn older version than the one the gateway holds is refused.")
	addr := addrFlag(fs)
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
	conn, err := dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
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
