package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"storegate/gateway"
	"storegate/gateway/wire"
	documentv1 "storegate/proto/storegate/document/v1"
	storegatev1 "storegate/proto/storegate/v1"
)

// freezeDocumentKind is the kind of document the freeze propagation
// publishes: a freeze list, the document that must reach every store within
// a second.
const freezeDocumentKind = gateway.DocumentFreeze

// Freeze is the fan-out of one HQ publication to many gateways' policy
// streams.
type Freeze struct {
	Gateways     int    `json:"gateways"`
	Publications int    `json:"publications"`
	Kind         string `json:"document_kind"`
	Bytes        int    `json:"document_bytes"`
	// Latency is from the Publish call (which first records the document
	// durably) to each stream's receipt, over every gateway and
	// publication.
	Latency Latency `json:"latency"`
	// AllReceived is, per publication, the time until the last gateway
	// had it; its p50 and max.
	AllReceivedP50 float64 `json:"all_received_p50_ms"`
	AllReceivedMax float64 `json:"all_received_max_ms"`
	SetupSeconds   float64 `json:"setup_seconds"`
}

// freezeDocument returns the version-th freeze list to publish: a delta
// that freezes one more account, signed by HQ's root key.
func freezeDocument(h *hq, version uint64) ([]byte, error) {
	return gateway.SignFreezeList(h.keys.Root, &documentv1.FreezeList{
		Version:  version,
		IssuedAt: time.Now().Unix(),
		Entries:  []*documentv1.FreezeEntry{{Account: fmt.Sprintf("acct-frozen-%d", version), Frozen: true, Reason: "benchmark"}},
	})
}

// measureFreeze opens a WatchPolicy stream per gateway, each on its own
// connection as each store's gateway has, then publishes publications
// documents one after the other and times their arrival at every stream.
func measureFreeze(ctx context.Context, h *hq, gateways, publications int) (*Freeze, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	setup := time.Now()

	var (
		published atomic.Int64 // unix nanoseconds of the current Publish
		round     sync.WaitGroup
		mu        sync.Mutex
		lat       = make([]time.Duration, 0, gateways*publications)
		last      atomic.Int64 // latest receipt of the current round
		streams   sync.WaitGroup
		conns     = make([]*grpc.ClientConn, gateways)
		recvErr   atomic.Pointer[error]
	)
	defer func() {
		cancel()
		streams.Wait()
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	open := func(i int) error {
		conn, err := dialLoopback(h.addr)
		if err != nil {
			return err
		}
		conns[i] = conn
		stream, err := storegatev1.NewCentralServiceClient(conn).WatchPolicy(ctx, &storegatev1.WatchPolicyRequest{
			StoreId: fmt.Sprintf("store-%04d", i),
		})
		if err != nil {
			return err
		}
		streams.Add(1)
		go func() {
			defer streams.Done()
			for {
				_, err := stream.Recv()
				now := time.Now()
				if err != nil {
					if ctx.Err() == nil {
						recvErr.CompareAndSwap(nil, &err)
					}
					return
				}
				d := now.Sub(time.Unix(0, published.Load()))
				for {
					l := last.Load()
					if int64(d) <= l || last.CompareAndSwap(l, int64(d)) {
						break
					}
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
				round.Done()
			}
		}()
		return nil
	}
	// Open the streams a few at a time; each WatchPolicy call waits for its
	// connection.
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, 16)
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= gateways {
					return
				}
				if err := open(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("open policy streams: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for h.pub.Watchers() < gateways {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d policy streams registered", h.pub.Watchers(), gateways)
		}
		time.Sleep(5 * time.Millisecond)
	}
	out := &Freeze{Gateways: gateways, Publications: publications, Kind: wire.DocumentKindToProto(freezeDocumentKind).String(), SetupSeconds: time.Since(setup).Seconds()}

	version := uint64(1)
	for _, d := range h.pub.Documents() {
		if d.Kind == freezeDocumentKind {
			version = max(version, d.Version+1)
		}
	}
	var all []time.Duration
	for range publications {
		doc, err := freezeDocument(h, version)
		if err != nil {
			return nil, err
		}
		out.Bytes = len(doc)
		round.Add(gateways)
		last.Store(0)
		published.Store(time.Now().UnixNano())
		if _, _, err := h.pub.Publish(context.Background(), freezeDocumentKind, doc); err != nil {
			return nil, err
		}
		done := make(chan struct{})
		go func() { round.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			return nil, errors.New("a publication did not reach every gateway within 30s")
		}
		if err := recvErr.Load(); err != nil {
			return nil, fmt.Errorf("policy stream: %w", *err)
		}
		all = append(all, time.Duration(last.Load()))
		version++
		// Let the streams settle before the next publication.
		time.Sleep(50 * time.Millisecond)
	}
	out.Latency = summarize(lat)
	s := summarize(all)
	out.AllReceivedP50, out.AllReceivedMax = s.P50, s.Max
	return out, nil
}
