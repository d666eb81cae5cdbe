package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
	storegatev1 "storegate/proto/storegate/v1"
)

const kindPolicy = storegatev1.DocumentKind_DOCUMENT_KIND_POLICY

func runPolicyPublish(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "policy publish", "--root-key root.key [--hq ADDR] [--out SIGNED] [--check] FILE",
		"Reads a readable policy (YAML or JSON; systemd/policy.example.yaml documents the format),\n"+
			"checks it, signs it with HQ's root key and publishes it through HQ, which sends it to\n"+
			"every store it concerns (one store with store_id, else the whole chain). Without a\n"+
			"version the next one for its scope is taken. --check only checks the file.")
	hq := addHQFlags(fs)
	check := fs.Bool("check", false, "check the file; sign and publish nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one policy file")
	}
	b, err := readInput(e, fs.Arg(0))
	if err != nil {
		return err
	}
	m, err := parsePolicyFile(b)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	probe := proto.Clone(m).(*documentv1.Policy)
	probe.Version = max(probe.GetVersion(), 1)
	if err := gateway.ValidatePolicy(probe); err != nil {
		// One fault a line.
		return fmt.Errorf("%s:\n  %s", fs.Arg(0), strings.ReplaceAll(gateway.ErrorMessage(err), "; policy: ", "\n  policy: "))
	}
	if *check {
		fmt.Fprintf(e.stdout, "%s: policy OK (%s, rules: %d)\n", fs.Arg(0), scopeName(m.GetStoreId()), len(m.GetRules()))
		return nil
	}
	pub, closeConn, err := hq.open()
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(ctx, *hq.timeout)
	defer cancel()
	res, err := pub.publishNext(ctx, kindPolicy, *hq.out, func() ([]byte, error) {
		next := proto.Clone(m).(*documentv1.Policy)
		if next.GetVersion() == 0 {
			next.Version = 1
			if d := pub.latest(kindPolicy, m.GetStoreId()); d != nil {
				next.Version = d.GetVersion() + 1
			}
		}
		next.IssuedAt = time.Now().Unix()
		return gateway.SignPolicy(pub.root, next)
	})
	if err != nil {
		return err
	}
	printPublished(e.stdout, "policy", res)
	return nil
}

func scopeName(store string) string {
	if store == "" {
		return "chain-wide"
	}
	return "store " + store
}

func printPublished(w io.Writer, what string, res *storegatev1.PublishDocumentResponse) {
	d := res.GetPublished()
	verb := "published"
	if res.GetUnchanged() {
		verb = "was already published"
	}
	fmt.Fprintf(w, "%s version %d (%s) %s\n", what, d.GetVersion(), scopeName(d.GetStoreId()), verb)
}

func runPolicyShow(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "policy show", "[--admin-socket PATH] [--json]",
		"Prints what a running gateway enforces, read over its admin socket: the store mode and\n"+
			"token lifetime cap in force, the chain-wide policy and the store's own with their\n"+
			"versions (in the readable format `policy publish` reads), and the freeze list and\n"+
			"keyset versions.")
	socket := adminSocketFlag(fs)
	asJSON := fs.Bool("json", false, "print the response as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	conn, ctx, done, err := connectAdmin(ctx, *socket, callTimeout)
	if err != nil {
		return err
	}
	defer done()
	res, err := storegatev1.NewAdminServiceClient(conn).GetPolicy(ctx, &storegatev1.GetPolicyRequest{})
	if err != nil {
		return rpcError(err)
	}
	if *asJSON {
		return printJSON(e.stdout, res)
	}
	w := e.stdout
	fmt.Fprintf(w, "store %s: mode %s, token lifetime cap %s\n", res.GetStoreId(),
		gateway.StoreMode(res.GetMode()), time.Duration(res.GetMaxTokenLifetimeSeconds())*time.Second)
	fmt.Fprintf(w, "freeze list version %d (frozen accounts: %d); keyset version %d\n",
		res.GetFreezeVersion(), res.GetFrozenAccounts(), res.GetKeysetVersion())
	for _, p := range []struct {
		name string
		m    *documentv1.Policy
	}{{"chain-wide policy", res.GetChain()}, {"store policy", res.GetStore()}} {
		if p.m == nil {
			fmt.Fprintf(w, "\n%s: none\n", p.name)
			continue
		}
		fmt.Fprintf(w, "\n%s version %d, issued %s:\n", p.name, p.m.GetVersion(), time.Unix(p.m.GetIssuedAt(), 0).Local().Format(time.DateTime))
		b, err := formatPolicyFile(p.m)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func runSuspend(ctx context.Context, e *env, args []string) error {
	return setMode(ctx, e, "suspend", gateway.StoreSuspended, args,
		"Stops every payment at one store (--store) or across the chain (--chain): HQ\n"+
			"publishes the scope's policy again with mode suspended, and each store declines\n"+
			"every payment as store_suspended as soon as it arrives. The rest of the policy is\n"+
			"kept. A store is suspended while either its own policy or the chain's says so.")
}

func runResume(ctx context.Context, e *env, args []string) error {
	return setMode(ctx, e, "resume", gateway.StoreNormal, args,
		"Lifts a suspension made with `storegatectl suspend`: the scope's policy is published\n"+
			"again with mode normal. Resuming the chain does not lift a store's own suspension.")
}

// setMode publishes the latest policy of a scope again with another mode.
func setMode(ctx context.Context, e *env, name string, mode gateway.StoreMode, args []string, help string) error {
	fs := newFlags(e, name, "(--store ID | --chain) --root-key root.key [--hq ADDR]", help)
	hq := addHQFlags(fs)
	store := fs.String("store", "", "the store")
	chain := fs.Bool("chain", false, "every store of the chain")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if (*store == "") == !*chain {
		return usagef("give exactly one of --store ID and --chain")
	}
	pub, closeConn, err := hq.open()
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(ctx, *hq.timeout)
	defer cancel()
	res, err := pub.publishNext(ctx, kindPolicy, *hq.out, func() ([]byte, error) {
		next := &documentv1.Policy{Version: 1, StoreId: *store}
		if d := pub.latest(kindPolicy, *store); d != nil {
			ring, err := pub.keyring()
			if err != nil {
				return nil, err
			}
			held, err := gateway.OpenPolicy(d.GetDocument().GetCoseSign1(), pub.rootPublic(), ring)
			if err != nil {
				return nil, fmt.Errorf("HQ's %s policy version %d: %w", scopeName(*store), d.GetVersion(), err)
			}
			next = held.Proto()
			next.Version++
		}
		next.Mode = documentv1.StoreMode(mode)
		next.IssuedAt = time.Now().Unix()
		return gateway.SignPolicy(pub.root, next)
	})
	if err != nil {
		return err
	}
	printPublished(e.stdout, "policy", res)
	fmt.Fprintf(e.stdout, "%s: mode %s\n", scopeName(*store), mode)
	return nil
}
