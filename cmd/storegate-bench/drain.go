package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"storegate/gateway"
	"storegate/gateway/centralclient"
	"storegate/storecache"
)

// Drain is the outbox drain: a backlog of settlements forwarded to central
// on loopback until the outbox is empty.
type Drain struct {
	Settlements int     `json:"settlements"`
	Batch       int     `json:"batch"`
	Seconds     float64 `json:"seconds"`
	PerS        float64 `json:"per_s"`
	// Refused counts settlements central refused (kept as disputed).
	Refused int64 `json:"refused"`
}

// fillStore commits n approvals of mode into st from lanes goroutines,
// numbering their POS transactions from first. With as many lanes as the
// store's MaxBatch, the committer packs its transactions full.
func fillStore(ctx context.Context, st *storecache.Store, lanes, first, n int, mode gateway.Mode) error {
	now := time.Now()
	r := runLoad(ctx, min(lanes, n), 24*time.Hour, n, func(lane, i int) error {
		return st.CommitDecision(ctx, benchDecision(fmt.Sprintf("lane-%03d", lane%64), first+i, mode, now))
	})
	if r.FirstErr != nil {
		return r.FirstErr
	}
	if r.Ops != n {
		return fmt.Errorf("fill store: %d of %d committed", r.Ops, n)
	}
	return ctx.Err()
}

// measureDrain fills a store with n offline captures, the backlog an outage
// leaves, and times the forwarder, with storegated's default batch, until
// central has acknowledged them all.
func measureDrain(ctx context.Context, dir string, h *hq, n int) (*Drain, error) {
	st := storecache.NewStore(filepath.Join(dir, "drain.db"))
	if err := st.Open(ctx); err != nil {
		return nil, err
	}
	defer st.Close(context.Background())
	if err := fillStore(ctx, st, storecache.DefaultMaxBatch, 0, n, gateway.ModeOffline); err != nil {
		return nil, err
	}
	conn, err := dialLoopback(h.addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := warmConn(ctx, conn); err != nil {
		return nil, err
	}
	fwd := gateway.NewForwarder(benchStoreID, st, centralclient.New(conn))
	start := time.Now()
	sent := 0
	for {
		k, err := fwd.Flush(ctx)
		sent += k
		if err != nil {
			return nil, fmt.Errorf("drain: %w", err)
		}
		stats, err := st.OutboxStats(ctx)
		if err != nil {
			return nil, err
		}
		if stats.Depth == 0 {
			elapsed := time.Since(start)
			return &Drain{
				Settlements: sent, Batch: gateway.DefaultForwardBatch, Seconds: elapsed.Seconds(),
				PerS: rate(sent, elapsed), Refused: stats.Disputed,
			}, nil
		}
	}
}

// warmConn connects conn before a timed section.
func warmConn(ctx context.Context, conn *grpc.ClientConn) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(cctx, s) {
			return fmt.Errorf("connect %s: %w", conn.Target(), cctx.Err())
		}
	}
}
