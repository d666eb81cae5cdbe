package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"storegate/gateway"
)

// scriptedSource is HQ's policy stream as a test scripts it: each
// WatchPolicy call records the versions it was given, then fails or hands
// out the next stream the test opens.
type scriptedSource struct {
	mu      sync.Mutex
	fail    int // fail this many calls first
	calls   []gateway.DocumentVersions
	streams chan *scriptedStream
}

func newScriptedSource() *scriptedSource {
	return &scriptedSource{streams: make(chan *scriptedStream, 4)}
}

func (s *scriptedSource) WatchPolicy(ctx context.Context, storeID string, have gateway.DocumentVersions) (gateway.PolicyStream, error) {
	s.mu.Lock()
	s.calls = append(s.calls, have)
	fail := s.fail > 0
	if fail {
		s.fail--
	}
	s.mu.Unlock()
	if fail {
		return nil, errors.New("connection refused")
	}
	select {
	case st := <-s.streams:
		st.ctx = ctx
		return st, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *scriptedSource) callsSoFar() []gateway.DocumentVersions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]gateway.DocumentVersions(nil), s.calls...)
}

// open makes the stream the next WatchPolicy call returns.
func (s *scriptedSource) open() *scriptedStream {
	st := &scriptedStream{docs: make(chan *gateway.PublishedDocument), end: make(chan error, 1)}
	s.streams <- st
	return st
}

type scriptedStream struct {
	ctx  context.Context
	docs chan *gateway.PublishedDocument
	end  chan error
}

func (st *scriptedStream) Recv() (*gateway.PublishedDocument, error) {
	select {
	case d := <-st.docs:
		return d, nil
	case err := <-st.end:
		return nil, err
	case <-st.ctx.Done():
		return nil, st.ctx.Err()
	}
}

// send delivers a document, failing the test if the watcher never reads it.
func (st *scriptedStream) send(tb testing.TB, kind gateway.DocumentKind, version uint64, raw []byte) {
	tb.Helper()
	select {
	case st.docs <- &gateway.PublishedDocument{Kind: kind, Version: version, Raw: raw}:
	case <-time.After(10 * time.Second):
		tb.Fatalf("the watcher did not read %s v%d", kind, version)
	}
}

// applied collects what the watcher applied.
type applied chan string

func (a applied) wait(tb testing.TB, want string) {
	tb.Helper()
	select {
	case got := <-a:
		if got != want {
			tb.Fatalf("applied %s, want %s", got, want)
		}
	case <-time.After(10 * time.Second):
		tb.Fatalf("%s was not applied", want)
	}
}

// The policy stream counts as contact with HQ: a stream HQ would not open
// marks central unreachable, one it took marks it reachable and closes an
// open breaker before any sale probes.
func TestPolicyWatcher_Contact(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	src := newScriptedSource()
	src.fail = 1
	w := &gateway.PolicyWatcher{Gateway: h.gw, Source: src, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(wctx) }()
	defer func() { cancel(); <-done }()

	status := func(what string, ok func(*gateway.Status) bool) *gateway.Status {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := h.gw.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("waited 10s for %s: %+v", what, st)
			}
			time.Sleep(time.Millisecond)
		}
	}
	st := status("the failed connect", func(st *gateway.Status) bool { return st.CentralCalled })
	if st.CentralReachable || !st.LastCentralContact.IsZero() {
		t.Fatalf("after a failed connect: %+v, want unreachable, no contact", st)
	}

	h.central.set(func(c *fakeCentral) { c.down = true })
	for i := range gateway.DefaultBreakerFailures {
		h.authorize(t, cart("1", fmt.Sprint("down-", i), h.mint(t, "acct-1"), onigiri(1)))
	}
	if st, _ := h.gw.Status(ctx); st.Breaker.State != gateway.BreakerOpen {
		t.Fatalf("breaker %s after %d failed sales, want open", st.Breaker.State, gateway.DefaultBreakerFailures)
	}
	calls := h.central.calls.Load()
	src.open()
	status("the stream HQ took", func(st *gateway.Status) bool {
		return st.CentralReachable && !st.LastCentralContact.IsZero() && st.Breaker.State == gateway.BreakerClosed
	})
	if got := h.central.calls.Load(); got != calls {
		t.Errorf("central Authorize calls %d, want %d: no sale probed", got, calls)
	}
}

func TestPolicyWatcher(t *testing.T) {
	h := newHarness(t)
	// Everything the watcher starts must be gone once Run returns; the
	// harness's store stays open until cleanup.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	src := newScriptedSource()
	src.fail = 2
	got := make(applied, 8)
	w := gateway.NewPolicyWatcher(h.gw, src)
	w.MinBackoff, w.MaxBackoff = time.Millisecond, 5*time.Millisecond
	w.Applied = func(kind gateway.DocumentKind, v uint64) { got <- fmt.Sprintf("%s@%d", kind, v) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()

	// The first two connects fail; the third opens a stream that delivers
	// a policy and a freeze delta, then a bad document, which is skipped.
	st := src.open()
	st.send(t, gateway.DocumentPolicy, 1, mustSign(t, h.rootKey, policyDoc(1)))
	got.wait(t, "policy@1")
	st.send(t, gateway.DocumentFreeze, 1, mustSignFreeze(t, h.rootKey, freezeDoc(1, false, freezeOf("acct-1", ""))))
	got.wait(t, "freeze@1")
	st.send(t, gateway.DocumentPolicy, 9, []byte("not a document"))
	own := policyDoc(1)
	own.StoreId = "store-0001"
	st.send(t, gateway.DocumentPolicy, 1, mustSign(t, h.rootKey, own))
	got.wait(t, "policy@1")
	if h.gw.Policy().Store == nil {
		t.Fatal("the store's own policy is not in force")
	}
	wantDeclineRule(t, h.authorize(t, cart("1", "t1", h.mint(t, "acct-1"), onigiri(1))), gateway.ReasonAccountFrozen, "freeze.account")

	// HQ ends the stream: the watcher resumes from what it holds.
	st.end <- io.EOF
	st = src.open()
	// A delta after a gap ends that stream too, so HQ resends what is
	// missing from the held version.
	st.send(t, gateway.DocumentFreeze, 3, mustSignFreeze(t, h.rootKey, freezeDoc(3, false, freezeOf("acct-3", ""))))
	st = src.open()
	st.send(t, gateway.DocumentFreeze, 2, mustSignFreeze(t, h.rootKey, freezeDoc(2, false, unfreezeOf("acct-1"))))
	got.wait(t, "freeze@2")
	// An older document is ignored, and the stream goes on.
	st.send(t, gateway.DocumentFreeze, 1, mustSignFreeze(t, h.rootKey, freezeDoc(1, false, freezeOf("acct-1", ""))))
	st.send(t, gateway.DocumentFreeze, 3, mustSignFreeze(t, h.rootKey, freezeDoc(3, false, freezeOf("acct-3", ""))))
	got.wait(t, "freeze@3")

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}

	calls := src.callsSoFar()
	want := []gateway.DocumentVersions{
		{Keyset: 1}, {Keyset: 1}, {Keyset: 1},
		{Keyset: 1, Policy: 1, StorePolicy: 1, Freeze: 1},
		{Keyset: 1, Policy: 1, StorePolicy: 1, Freeze: 1},
	}
	if len(calls) != len(want) {
		t.Fatalf("WatchPolicy calls: got %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("WatchPolicy call %d resumed from %+v, want %+v", i, calls[i], want[i])
		}
	}
}

func TestGateway_ApplyDocument(t *testing.T) {
	h := newHarness(t)
	if _, _, err := h.gw.ApplyDocument(context.Background(), "receipt", []byte("x")); gateway.ErrorCode(err) != gateway.EINVALID {
		t.Errorf("unknown kind: got %v, want EINVALID", err)
	}
	ks, _ := gateway.SignKeyset(h.rootKey, gateway.NewKeyset(2, h.now, h.tokenKeys...))
	if v, changed, err := h.gw.ApplyDocument(context.Background(), gateway.DocumentKeyset, ks); err != nil || !changed || v != 2 {
		t.Errorf("keyset: got v%d changed %v, %v, want v2 applied", v, changed, err)
	}
}
