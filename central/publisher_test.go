package central_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/central"
	"storegate/central/storetest"
	"storegate/gateway"
	"storegate/gateway/wire"
	documentv1 "storegate/proto/storegate/document/v1"
	storegatev1 "storegate/proto/storegate/v1"
)

const (
	kindKeyset = gateway.DocumentKeyset
	kindPolicy = gateway.DocumentPolicy
	kindFreeze = gateway.DocumentFreeze
)

// mustRecv receives one message and checks its kind, version and bytes.
func mustRecv(t testing.TB, stream storegatev1.CentralService_WatchPolicyClient, kind gateway.DocumentKind, version uint64, want []byte) {
	t.Helper()
	msg, err := stream.Recv()
	if err != nil {
		t.Fatalf("Recv: %v, want %v v%d", err, kind, version)
	}
	if msg.GetKind() != wire.DocumentKindToProto(kind) || msg.GetVersion() != version {
		t.Fatalf("Recv: got %v v%d, want %v v%d", msg.GetKind(), msg.GetVersion(), kind, version)
	}
	if got := msg.GetDocument().GetCoseSign1(); !bytes.Equal(got, want) {
		t.Errorf("document bytes: got %d bytes, want the %d published", len(got), len(want))
	}
	if msg.GetPublishedAt() == nil {
		t.Errorf("published_at: got none")
	}
}

// waitWatchers waits until the publisher has n watchers.
func waitWatchers(t testing.TB, p *central.Publisher, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Watchers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("watchers: got %d, want %d", p.Watchers(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watch opens a stream for store from the given versions, once the streams
// of earlier subtests have ended.
func (f *fixture) watch(t *testing.T, req *storegatev1.WatchPolicyRequest) storegatev1.CentralService_WatchPolicyClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	waitWatchers(t, f.Publisher, 0)
	stream, err := f.Client.WatchPolicy(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	waitWatchers(t, f.Publisher, 1)
	return stream
}

func TestWatchPolicy_Resume(t *testing.T) {
	f := newFixture(t)
	s := storetest.NewSigner(f.RootKey)
	publish := func(kind gateway.DocumentKind, version uint64) {
		t.Helper()
		storetest.MustPublish(t, f.Publisher, kind, s.Doc(t, kind, version))
	}
	publish(kindKeyset, 1)
	publish(kindKeyset, 2)
	publish(kindPolicy, 4)
	publish(kindPolicy, 5)
	publish(kindFreeze, 3)
	delta4 := s.Freeze(t, 4, false, &documentv1.FreezeEntry{Account: "acct-4", Frozen: true})

	// Each stream's next message must be exactly what is listed: had a
	// document the store holds been resent, it would arrive first.
	t.Run("UpToDate", func(t *testing.T) {
		stream := f.watch(t, &storegatev1.WatchPolicyRequest{StoreId: "store-1", KeysetVersion: 2, PolicyVersion: 5, FreezeVersion: 3})
		storetest.MustPublish(t, f.Publisher, kindFreeze, delta4)
		mustRecv(t, stream, kindFreeze, 4, delta4)
	})
	t.Run("PolicyBehind", func(t *testing.T) {
		stream := f.watch(t, &storegatev1.WatchPolicyRequest{StoreId: "store-1", KeysetVersion: 2, PolicyVersion: 4, FreezeVersion: 4})
		mustRecv(t, stream, kindPolicy, 5, s.Doc(t, kindPolicy, 5))
		publish(kindKeyset, 3)
		mustRecv(t, stream, kindKeyset, 3, s.Doc(t, kindKeyset, 3))
	})
	t.Run("BehindTheFreezeSnapshot", func(t *testing.T) {
		// Version 1 is older than the snapshot (3): the snapshot comes
		// first, then every delta after it.
		stream := f.watch(t, &storegatev1.WatchPolicyRequest{StoreId: "store-1", KeysetVersion: 2, PolicyVersion: 5, FreezeVersion: 1})
		mustRecv(t, stream, kindKeyset, 3, s.Doc(t, kindKeyset, 3))
		mustRecv(t, stream, kindFreeze, 3, s.Doc(t, kindFreeze, 3))
		mustRecv(t, stream, kindFreeze, 4, delta4)
		publish(kindPolicy, 6)
		mustRecv(t, stream, kindPolicy, 6, s.Doc(t, kindPolicy, 6))
	})
}

func TestWatchPolicy_FromNothing(t *testing.T) {
	f := newFixture(t)
	s := storetest.NewSigner(f.RootKey)
	d1 := s.Freeze(t, 1, false, &documentv1.FreezeEntry{Account: "acct-1", Frozen: true})
	d2 := s.Freeze(t, 2, false, &documentv1.FreezeEntry{Account: "acct-2", Frozen: true})
	storetest.MustPublish(t, f.Publisher, kindFreeze, d1)
	storetest.MustPublish(t, f.Publisher, kindFreeze, d2)
	storetest.MustPublish(t, f.Publisher, kindPolicy, s.Doc(t, kindPolicy, 1))
	storetest.MustPublish(t, f.Publisher, kindKeyset, s.Doc(t, kindKeyset, 1))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := f.Client.WatchPolicy(ctx, &storegatev1.WatchPolicyRequest{StoreId: "store-1"})
	if err != nil {
		t.Fatal(err)
	}
	// The keyset comes first: it names the keys the others are signed by.
	// Every freeze delta follows, in order.
	mustRecv(t, stream, kindKeyset, 1, s.Doc(t, kindKeyset, 1))
	mustRecv(t, stream, kindPolicy, 1, s.Doc(t, kindPolicy, 1))
	mustRecv(t, stream, kindFreeze, 1, d1)
	mustRecv(t, stream, kindFreeze, 2, d2)
}

func TestWatchPolicy_StorePolicies(t *testing.T) {
	f := newFixture(t)
	s := storetest.NewSigner(f.RootKey)
	storetest.MustPublish(t, f.Publisher, kindPolicy, s.Policy(t, "", 3))
	storetest.MustPublish(t, f.Publisher, kindPolicy, s.Policy(t, "store-1", 1))
	storetest.MustPublish(t, f.Publisher, kindPolicy, s.Policy(t, "store-2", 8))

	t.Run("OwnPolicyOnly", func(t *testing.T) {
		stream := f.watch(t, &storegatev1.WatchPolicyRequest{StoreId: "store-1"})
		mustRecv(t, stream, kindPolicy, 3, s.Policy(t, "", 3))
		mustRecv(t, stream, kindPolicy, 1, s.Policy(t, "store-1", 1))
		// Another store's policy is not sent; this store's is.
		storetest.MustPublish(t, f.Publisher, kindPolicy, s.Policy(t, "store-2", 9))
		storetest.MustPublish(t, f.Publisher, kindPolicy, s.Policy(t, "store-1", 2))
		mustRecv(t, stream, kindPolicy, 2, s.Policy(t, "store-1", 2))
	})
	t.Run("ResumeByScope", func(t *testing.T) {
		// The chain's version 3 and the store's version 9 are apart: the
		// store's higher version says nothing about the chain's.
		stream := f.watch(t, &storegatev1.WatchPolicyRequest{StoreId: "store-2", PolicyVersion: 2, StorePolicyVersion: 9})
		mustRecv(t, stream, kindPolicy, 3, s.Policy(t, "", 3))
		storetest.MustPublish(t, f.Publisher, kindPolicy, s.Policy(t, "", 4))
		mustRecv(t, stream, kindPolicy, 4, s.Policy(t, "", 4))
	})
	t.Run("ErrStalePerScope", func(t *testing.T) {
		_, _, err := f.Publisher.Publish(context.Background(), kindPolicy, s.Policy(t, "store-2", 8))
		if gateway.ErrorCode(err) != gateway.ESTALE {
			t.Errorf("store-2 v8 after v9: got %v, want ESTALE", err)
		}
		// Version 2 is new for store-3, though older than other scopes'.
		storetest.MustPublish(t, f.Publisher, kindPolicy, s.Policy(t, "store-3", 2))
	})
}

func TestWatchPolicy_Live(t *testing.T) {
	f := newFixture(t)
	s := storetest.NewSigner(f.RootKey)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := f.Client.WatchPolicy(ctx, &storegatev1.WatchPolicyRequest{StoreId: "store-1"})
	if err != nil {
		t.Fatal(err)
	}
	waitWatchers(t, f.Publisher, 1)
	storetest.MustPublish(t, f.Publisher, kindPolicy, s.Doc(t, kindPolicy, 1))
	mustRecv(t, stream, kindPolicy, 1, s.Doc(t, kindPolicy, 1))
	storetest.MustPublish(t, f.Publisher, kindPolicy, s.Doc(t, kindPolicy, 2))
	mustRecv(t, stream, kindPolicy, 2, s.Doc(t, kindPolicy, 2))

	t.Run("EndsWhenClientGoesAway", func(t *testing.T) {
		cancel()
		waitWatchers(t, f.Publisher, 0)
	})
}

func TestWatchPolicy_PublisherClosed(t *testing.T) {
	f := newFixture(t)
	stream, err := f.Client.WatchPolicy(context.Background(), &storegatev1.WatchPolicyRequest{StoreId: "store-1"})
	if err != nil {
		t.Fatal(err)
	}
	waitWatchers(t, f.Publisher, 1)
	f.Publisher.Close(context.Background())
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("Recv after Close: got %v, want Unavailable", err)
	}
	if _, _, err := f.Publisher.Publish(context.Background(), kindPolicy, storetest.NewSigner(f.RootKey).Doc(t, kindPolicy, 1)); gateway.ErrorCode(err) != gateway.EUNAVAILABLE {
		t.Errorf("Publish after Close: got %v, want EUNAVAILABLE", err)
	}
}

func TestPublisher_SlowWatcher(t *testing.T) {
	sf := storetest.NewFixture(t, newStorage)
	p := sf.Publisher
	p.Buffer = 2
	s := storetest.NewSigner(sf.RootKey)

	_, slow := p.Watch("store-1", gateway.DocumentVersions{})
	defer slow.Close()
	_, fast := p.Watch("store-2", gateway.DocumentVersions{})
	defer fast.Close()

	// Nobody reads the slow watcher; Publish must still return.
	for v := uint64(1); v <= 5; v++ {
		storetest.MustPublish(t, p, kindPolicy, s.Doc(t, kindPolicy, v))
		select {
		case d := <-fast.C():
			if d.Version != v {
				t.Fatalf("fast watcher: got v%d, want v%d", d.Version, v)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("fast watcher: no v%d", v)
		}
	}

	var got []uint64
	timeout := time.After(5 * time.Second)
drain:
	for {
		select {
		case d, ok := <-slow.C():
			if !ok {
				break drain
			}
			got = append(got, d.Version)
		case <-timeout:
			t.Fatalf("slow watcher: still open after falling behind; received %v", got)
		}
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("slow watcher received %v, want [1 2] then the end", got)
	}
	if code := gateway.ErrorCode(slow.Err()); code != gateway.EUNAVAILABLE {
		t.Errorf("slow watcher's error: got %q (%v), want %q", code, slow.Err(), gateway.EUNAVAILABLE)
	}
	if got, want := p.Watchers(), 1; got != want {
		t.Errorf("watchers: got %d, want %d", got, want)
	}
}

func TestAdminService(t *testing.T) {
	f := newFixture(t)
	s := storetest.NewSigner(f.RootKey)
	ctx := context.Background()
	publish := func(kind gateway.DocumentKind, raw []byte) (*storegatev1.PublishDocumentResponse, error) {
		return f.Admin.PublishDocument(ctx, &storegatev1.PublishDocumentRequest{Kind: wire.DocumentKindToProto(kind), Document: &storegatev1.SignedDocument{CoseSign1: raw}})
	}
	res, err := publish(kindPolicy, s.Policy(t, "store-1", 2))
	if err != nil || res.GetUnchanged() || res.GetPublished().GetVersion() != 2 || res.GetPublished().GetStoreId() != "store-1" {
		t.Fatalf("PublishDocument: got %v, %v, want store-1's policy v2 published", res, err)
	}
	if res, err := publish(kindPolicy, s.Policy(t, "store-1", 2)); err != nil || !res.GetUnchanged() {
		t.Errorf("PublishDocument again: got %v, %v, want unchanged", res, err)
	}
	if _, err := publish(kindPolicy, s.Policy(t, "store-1", 1)); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("older version: got %v, want FailedPrecondition", err)
	}
	if _, err := publish(kindPolicy, []byte("garbage")); status.Code(err) != codes.InvalidArgument {
		t.Errorf("garbage: got %v, want InvalidArgument", err)
	}
	if _, err := publish(kindFreeze, s.Freeze(t, 2, false, &documentv1.FreezeEntry{Account: "a", Frozen: true})); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("first freeze delta at version 2: got %v, want FailedPrecondition", err)
	}
	storetest.MustPublish(t, f.Publisher, kindKeyset, s.Doc(t, kindKeyset, 1))
	list, err := f.Admin.ListDocuments(ctx, &storegatev1.ListDocumentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range list.GetDocuments() {
		got = append(got, fmt.Sprintf("%v/%s/%d", d.GetKind(), d.GetStoreId(), d.GetVersion()))
	}
	if want := "[DOCUMENT_KIND_KEYSET//1 DOCUMENT_KIND_POLICY/store-1/2]"; fmt.Sprint(got) != want {
		t.Errorf("ListDocuments: got %v, want %s", got, want)
	}
}
