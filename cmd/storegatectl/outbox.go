package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
	"storegate/storecache"
)

func runOutbox(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "outbox", "[--admin-socket PATH | --db FILE] [--limit N] [--json]",
		"Lists the settlements waiting for the central service, oldest first, and the ones it\nrefused (disputed): those stay in the store for a person to resolve, never dropped.\nReads a running gateway over its admin socket, or a store file with the daemon stopped (--db).")
	socket := adminSocketFlag(fs)
	db := fs.String("db", "", "read this store file (storegate.db) instead of a running gateway")
	limit := fs.Int("limit", 100, "list at most this many of each (1 to 1000)")
	asJSON := fs.Bool("json", false, "print the listing as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *limit < 1 || *limit > 1000 {
		return usagef("--limit %d outside 1 to 1000", *limit)
	}
	var (
		res *storegatev1.ListOutboxResponse
		err error
	)
	if *db != "" {
		res, err = outboxFromFile(ctx, *db, *limit)
	} else {
		res, err = outboxFromGateway(ctx, *socket, *limit)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, res)
	}
	printOutbox(e.stdout, res, time.Now())
	return nil
}

func outboxFromGateway(ctx context.Context, socket string, limit int) (*storegatev1.ListOutboxResponse, error) {
	conn, ctx, done, err := connectAdmin(ctx, socket, callTimeout)
	if err != nil {
		return nil, err
	}
	defer done()
	res, err := storegatev1.NewAdminServiceClient(conn).ListOutbox(ctx, &storegatev1.ListOutboxRequest{Limit: int32(limit)})
	if err != nil {
		return nil, rpcError(err)
	}
	return res, nil
}

// outboxFromFile reads the listing from a stopped gateway's store, read
// and converted as a running gateway answers it.
func outboxFromFile(ctx context.Context, path string, limit int) (*storegatev1.ListOutboxResponse, error) {
	st := storecache.NewStore(path)
	st.ReadOnly, st.Timeout = true, 2*time.Second
	if err := st.Open(ctx); err != nil {
		return nil, err
	}
	defer st.Close(context.Background())
	l, err := gateway.ListOutbox(ctx, st, limit)
	if err != nil {
		return nil, err
	}
	return wire.OutboxToProto(l), nil
}

func printOutbox(w io.Writer, res *storegatev1.ListOutboxResponse, now time.Time) {
	fmt.Fprintf(w, "waiting for central: %d\n", res.GetPendingTotal())
	for _, p := range res.GetPending() {
		fmt.Fprintf(w, "  %s\n", outboxLine(p, now))
	}
	if n := int64(len(res.GetPending())); n < res.GetPendingTotal() {
		fmt.Fprintf(w, "  ... and %d more\n", res.GetPendingTotal()-n)
	}
	fmt.Fprintf(w, "disputed (refused by central, kept for a person to resolve): %d\n", res.GetDisputedTotal())
	for _, d := range res.GetDisputed() {
		fmt.Fprintf(w, "  %s\n      refused %s: %s\n", outboxLine(d.GetSettlement(), now),
			d.GetRefusedAt().AsTime().Local().Format(time.DateTime), d.GetMessage())
	}
	if n := int64(len(res.GetDisputed())); n < res.GetDisputedTotal() {
		fmt.Fprintf(w, "  ... and %d more\n", res.GetDisputedTotal()-n)
	}
}

func outboxLine(p *storegatev1.OutboxEntry, now time.Time) string {
	kind := strings.ToLower(strings.TrimPrefix(p.GetKind().String(), "SETTLEMENT_KIND_"))
	mode := strings.ToLower(strings.TrimPrefix(p.GetMode().String(), "DECISION_MODE_"))
	line := fmt.Sprintf("#%-6d %-8s %-7s %8d %s  %s  lane %s txn %s  account %s  age %s",
		p.GetSeq(), kind, mode, p.GetAmount(), p.GetCurrency(), p.GetSettlementId(), p.GetLane(), p.GetPosTransactionId(),
		p.GetAccountHint(), now.Sub(p.GetCreatedAt().AsTime()).Round(time.Second))
	if p.GetReversesId() != "" {
		line += "  reverses " + p.GetReversesId()
	}
	return line
}
