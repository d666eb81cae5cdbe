package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
	storegatev1 "storegate/proto/storegate/v1"
)

const kindFreeze = storegatev1.DocumentKind_DOCUMENT_KIND_FREEZE_LIST

func runFreeze(ctx context.Context, e *env, args []string) error {
	return freezeAccounts(ctx, e, "freeze", true, args,
		"Freezes accounts chain-wide: signs a freeze-list delta with HQ's root key and publishes\n"+
			"it through HQ. Central refuses the accounts at once, and every connected store declines\n"+
			"their next token as account_frozen, online and offline, within a second.")
}

func runUnfreeze(ctx context.Context, e *env, args []string) error {
	return freezeAccounts(ctx, e, "unfreeze", false, args,
		"Takes accounts off the freeze list, chain-wide, the same way `freeze` puts them on.")
}

func freezeAccounts(ctx context.Context, e *env, name string, frozen bool, args []string, help string) error {
	fs := newFlags(e, name, "--root-key root.key [--hq ADDR] [--reason TEXT] ACCOUNT...", help)
	hq := addHQFlags(fs)
	reason := fs.String("reason", "", "why, for HQ's records and the stores' logs (required to freeze)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	accounts := fs.Args()
	if len(accounts) == 0 {
		return usagef("name at least one account")
	}
	if frozen && strings.TrimSpace(*reason) == "" {
		return usagef("--reason is required to freeze")
	}
	if len(*reason) > gateway.MaxFreezeReason {
		return usagef("--reason: longer than %d characters", gateway.MaxFreezeReason)
	}
	pub, closeConn, err := hq.open()
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(ctx, *hq.timeout)
	defer cancel()
	res, err := pub.publishNext(ctx, kindFreeze, *hq.out, func() ([]byte, error) {
		var held uint64
		if d := pub.latest(kindFreeze, ""); d != nil {
			held = d.GetVersion()
		}
		delta := &documentv1.FreezeList{Version: held + 1, IssuedAt: time.Now().Unix()}
		for _, a := range accounts {
			delta.Entries = append(delta.Entries, &documentv1.FreezeEntry{Account: a, Frozen: frozen, Reason: *reason})
		}
		return gateway.SignFreezeList(pub.root, delta)
	})
	if err != nil {
		return err
	}
	printPublished(e.stdout, "freeze list", res)
	verb := "frozen"
	if !frozen {
		verb = "unfrozen"
	}
	fmt.Fprintf(e.stdout, "%s %s\n", verb, strings.Join(accounts, ", "))
	return nil
}
