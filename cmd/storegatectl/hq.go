package main

import (
	"context"
	"os"

	"google.golang.org/grpc"

	"storegate/cmd/internal/hqbooks"
	storegatev1 "storegate/proto/storegate/v1"
)

// maxBooksMessage bounds the books' answer: the reference central service
// sends its whole ledger, which outgrows gRPC's default 4 MiB after a long
// crash test.
const maxBooksMessage = 256 << 20

func runHQBooks(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "hq books", "[--hq ADDR] [--json]",
		"Shows the reference central service's books, read from a running storegate-hq over its\n"+
			"admin address: each account's balance and totals, the holds no store has captured yet,\n"+
			"and every booked settlement. Checks the books add up (funded − debited + credited =\n"+
			"balance, and every capture, reversal and hold agrees) and exits 1 if not. With\n"+
			"storegate-hq stopped, `storegate-hq books --data DIR` reads its ledger file instead.")
	addr := fs.String("hq", hqAdminAddr(), "storegate-hq admin address (or set STOREGATE_HQ)")
	timeout := fs.Duration("timeout", callTimeout, "deadline for reading the books")
	asJSON := fs.Bool("json", false, "print the books as JSON")
	db := fs.String("db", "", "no longer read here: see `storegate-hq books --data DIR`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *db != "" {
		return usagef("--db: storegatectl no longer opens HQ's ledger; with storegate-hq stopped run `storegate-hq books --data DIR`, or read a running one with --hq")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	// HQ's admin port is loopback only and serves no TLS.
	conn, ctx, done, err := connect(ctx, &target{addr: *addr}, *timeout)
	if err != nil {
		return err
	}
	defer done()
	books, err := storegatev1.NewHQAdminServiceClient(conn).GetBooks(ctx, &storegatev1.GetBooksRequest{}, grpc.MaxCallRecvMsgSize(maxBooksMessage))
	if err != nil {
		return rpcError(err)
	}
	if *asJSON {
		err = hqbooks.WriteJSON(e.stdout, books)
	} else {
		err = hqbooks.Write(e.stdout, books)
	}
	if err != nil {
		return err
	}
	return hqbooks.Check(books)
}

// hqAdminAddr is the default of every --hq flag: STOREGATE_HQ, else
// storegate-hq's default admin address.
func hqAdminAddr() string {
	if addr := os.Getenv("STOREGATE_HQ"); addr != "" {
		return addr
	}
	return defaultHQAdminAddr
}
