package central_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/central"
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

// signer makes real signed documents with a root key. A document of a
// kind, scope and version is made once, so that the same call returns the
// same bytes.
type signer struct {
	root  ed25519.PrivateKey
	token ed25519.PublicKey
	mu    sync.Mutex
	made  map[string][]byte
}

func newSigner(root ed25519.PrivateKey) *signer {
	pub, _, _ := gateway.GenerateKey()
	return &signer{root: root, token: pub, made: make(map[string][]byte)}
}

// doc returns the document of kind at version: a keyset naming one token
// key, a chain-wide policy, or a freeze-list snapshot freezing
// "acct-v<version>".
func (s *signer) doc(tb testing.TB, kind gateway.DocumentKind, version uint64) []byte {
	tb.Helper()
	switch kind {
	case kindPolicy:
		return s.policy(tb, "", version)
	case kindFreeze:
		return s.freeze(tb, version, true, &documentv1.FreezeEntry{Account: fmt.Sprintf("acct-v%d", version), Frozen: true})
	}
	return s.once(tb, fmt.Sprintf("keyset/%d", version), func() ([]byte, error) {
		return gateway.SignKeyset(s.root, gateway.NewKeyset(version, time.Unix(1794000000, 0), s.token))
	})
}

// policy returns a policy for store (empty: the chain) at version.
func (s *signer) policy(tb testing.TB, store string, version uint64) []byte {
	tb.Helper()
	return s.once(tb, fmt.Sprintf("policy/%s/%d", store, version), func() ([]byte, error) {
		return gateway.SignPolicy(s.root, &documentv1.Policy{Version: version, StoreId: store, Mode: documentv1.StoreMode_STORE_MODE_NORMAL,
			Rules: []*documentv1.Rule{{Id: "tobacco", Categories: []string{"tobacco"}, MaxQuantityPerTransaction: int64(version)}}})
	})
}

// freeze returns a freeze list; made afresh on every call.
func (s *signer) freeze(tb testing.TB, version uint64, snapshot bool, entries ...*documentv1.FreezeEntry) []byte {
	tb.Helper()
	return s.once(tb, fmt.Sprintf("freeze/%d/%v/%v", version, snapshot, entries), func() ([]byte, error) {
		return gateway.SignFreezeList(s.root, &documentv1.FreezeList{Version: version, Snapshot: snapshot, Entries: entries})
	})
}

func (s *signer) once(tb testing.TB, key string, sign func() ([]byte, error)) []byte {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if raw, ok := s.made[key]; ok {
		return raw
	}
	raw, err := sign()
	if err != nil {
		tb.Fatalf("sign %s: %v", key, err)
	}
	s.made[key] = raw
	return raw
}

func mustPublishRaw(tb testing.TB, p *central.Publisher, kind gateway.DocumentKind, raw []byte) central.Document {
	tb.Helper()
	d, changed, err := p.Publish(kind, raw)
	if err != nil || !changed {
		tb.Fatalf("Publish(%v): got changed %v, %v; want published", kind, changed, err)
	}
	return d
}

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
	s := newSigner(f.RootKey)
	publish := func(kind gateway.DocumentKind, version uint64) {
		t.Helper()
		mustPublishRaw(t, f.Publisher, kind, s.doc(t, kind, version))
	}
	publish(kindKeyset, 1)
	publish(kindKeyset, 2)
	publish(kindPolicy, 4)
	publish(kindPolicy, 5)
	publish(kindFreeze, 3)
	delta4 := s.freeze(t, 4, false, &documentv1.FreezeEntry{Account: "acct-4", Frozen: true})

	// Each stream's next message must be exactly what is listed: had a
	// document the store holds been resent, it would arrive first.
	t.Run("UpToDate", func(t *testing.T) {
		stream := f.watch(t, &storegatev1.WatchPolicyRequest{StoreId: "store-1", KeysetVersion: 2, PolicyVersion: 5, FreezeVersion: 3})
		mustPublishRaw(t, f.Publisher, kindFreeze, delta4)
		mustRecv(t, stream, kindFreeze, 4, delta4)
	})
	t.Run("PolicyBehind", func(t *testing.T) {
		stream := f.watch(t, &storegatev1.WatchPolicyRequest{StoreId: "store-1", KeysetVersion: 2, PolicyVersion: 4, FreezeVersion: 4})
		mustRecv(t, stream, kindPolicy, 5, s.doc(t, kindPolicy, 5))
		publish(kindKeyset, 3)
		mustRecv(t, stream, kindKeyset, 3, s.doc(t, kindKeyset, 3))
	})
	t.Run("BehindTheFreezeSnapshot", func(t *testing.T) {
		// Version 1 is older than the snapshot (3): the snapshot comes
		// first, then every delta after it.
		stream := f.watch(t, &storegatev1.WatchPolicyRequest{StoreId: "store-1", KeysetVersion: 2, PolicyVersion: 5, FreezeVersion: 1})
		mustRecv(t, stream, kindKeyset, 3, s.doc(t, kindKeyset, 3))
		mustRecv(t, stream, kindFreeze, 3, s.doc(t, kindFreeze, 3))
		mustRecv(t, stream, kindFreeze, 4, delta4)
		publish(kindPolicy, 6)
		mustRecv(t, stream, kindPolicy, 6, s.doc(t, kindPolicy, 6))
	})
}

func TestWatchPolicy_FromNothing(t *testing.T) {
	f := newFixture(t)
	s := newSigner(f.RootKey)
	d1 := s.freeze(t, 1, false, &documentv1.FreezeEntry{Account: "acct-1", Frozen: true})
	d2 := s.freeze(t, 2, false, &documentv1.FreezeEntry{Account: "acct-2", Frozen: true})
	mustPublishRaw(t, f.Publisher, kindFreeze, d1)
	mustPublishRaw(t, f.Publisher, kindFreeze, d2)
	mustPublishRaw(t, f.Publisher, kindPolicy, s.doc(t, kindPolicy, 1))
	mustPublishRaw(t, f.Publisher, kindKeyset, s.doc(t, kindKeyset, 1))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := f.Client.WatchPolicy(ctx, &storegatev1.WatchPolicyRequest{StoreId: "store-1"})
	if err != nil {
		t.Fatal(err)
	}
	// The keyset comes first: it names the keys the others are signed by.
	// Every freeze delta follows, in order.
	mustRecv(t, stream, kindKeyset, 1, s.doc(t, kindKeyset, 1))
	mustRecv(t, stream, kindPolicy, 1, s.doc(t, kindPolicy, 1))
	mustRecv(t, stream, kindFreeze, 1, d1)
	mustRecv(t, stream, kindFreeze, 2, d2)
}

func TestWatchPolicy_StorePolicies(t *testing.T) {
	f := newFixture(t)
	s := newSigner(f.RootKey)
	mustPublishRaw(t, f.Publisher, kindPolicy, s.policy(t, "", 3))
	mustPublishRaw(t, f.Publisher, kindPolicy, s.policy(t, "store-1", 1))
	mustPublishRaw(t, f.Publisher, kindPolicy, s.policy(t, "store-2", 8))

	t.Run("OwnPolicyOnly", func(t *testing.T) {
		stream := f.watch(t, &storegatev1.WatchPolicyRequest{StoreId: "store-1"})
		mustRecv(t, stream, kindPolicy, 3, s.policy(t, "", 3))
		mustRecv(t, stream, kindPolicy, 1, s.policy(t, "store-1", 1))
		// Another store's policy is not sent; this store's is.
		mustPublishRaw(t, f.Publisher, kindPolicy, s.policy(t, "store-2", 9))
		mustPublishRaw(t, f.Publisher, kindPolicy, s.policy(t, "store-1", 2))
		mustRecv(t, stream, kindPolicy, 2, s.policy(t, "store-1", 2))
	})
	t.Run("ResumeByScope", func(t *testing.T) {
		// The chain's version 3 and the store's version 9 are apart: the
		// store's higher version says nothing about the chain's.
		stream := f.watch(t, &storegatev1.WatchPolicyRequest{StoreId: "store-2", PolicyVersion: 2, StorePolicyVersion: 9})
		mustRecv(t, stream, kindPolicy, 3, s.policy(t, "", 3))
		mustPublishRaw(t, f.Publisher, kindPolicy, s.policy(t, "", 4))
		mustRecv(t, stream, kindPolicy, 4, s.policy(t, "", 4))
	})
	t.Run("ErrStalePerScope", func(t *testing.T) {
		_, _, err := f.Publisher.Publish(kindPolicy, s.policy(t, "store-2", 8))
		if gateway.ErrorCode(err) != gateway.ESTALE {
			t.Errorf("store-2 v8 after v9: got %v, want ESTALE", err)
		}
		// Version 2 is new for store-3, though older than other scopes'.
		mustPublishRaw(t, f.Publisher, kindPolicy, s.policy(t, "store-3", 2))
	})
}

func TestWatchPolicy_Live(t *testing.T) {
	f := newFixture(t)
	s := newSigner(f.RootKey)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := f.Client.WatchPolicy(ctx, &storegatev1.WatchPolicyRequest{StoreId: "store-1"})
	if err != nil {
		t.Fatal(err)
	}
	waitWatchers(t, f.Publisher, 1)
	mustPublishRaw(t, f.Publisher, kindPolicy, s.doc(t, kindPolicy, 1))
	mustRecv(t, stream, kindPolicy, 1, s.doc(t, kindPolicy, 1))
	mustPublishRaw(t, f.Publisher, kindPolicy, s.doc(t, kindPolicy, 2))
	mustRecv(t, stream, kindPolicy, 2, s.doc(t, kindPolicy, 2))

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
	if _, _, err := f.Publisher.Publish(kindPolicy, newSigner(f.RootKey).doc(t, kindPolicy, 1)); gateway.ErrorCode(err) != gateway.EUNAVAILABLE {
		t.Errorf("Publish after Close: got %v, want EUNAVAILABLE", err)
	}
}

func TestPublisher_Publish(t *testing.T) {
	l := MustOpenLedger(t, filepath.Join(t.TempDir(), "central.db"))
	rootPub, root, _ := gateway.GenerateKey()
	p := MustOpenPublisher(t, l, rootPub)
	s := newSigner(root)
	mustPublishRaw(t, p, kindPolicy, s.doc(t, kindPolicy, 2))

	t.Run("ErrStale", func(t *testing.T) {
		_, _, err := p.Publish(kindPolicy, s.doc(t, kindPolicy, 1))
		if got := gateway.ErrorCode(err); got != gateway.ESTALE {
			t.Errorf("got %q (%v), want %q", got, err, gateway.ESTALE)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		other, err := gateway.SignPolicy(root, &documentv1.Policy{Version: 2, Mode: documentv1.StoreMode_STORE_MODE_SUSPENDED})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = p.Publish(kindPolicy, other)
		if got := gateway.ErrorCode(err); got != gateway.ECONFLICT {
			t.Errorf("got %q (%v), want %q", got, err, gateway.ECONFLICT)
		}
	})
	t.Run("SameAgain", func(t *testing.T) {
		d, changed, err := p.Publish(kindPolicy, s.doc(t, kindPolicy, 2))
		if err != nil || changed || d.Version != 2 {
			t.Errorf("got v%d changed %v, %v; want v2 unchanged", d.Version, changed, err)
		}
	})
	t.Run("ErrNotVerified", func(t *testing.T) {
		_, stranger, _ := gateway.GenerateKey()
		for name, raw := range map[string][]byte{
			"Stranger": newSigner(stranger).doc(t, kindPolicy, 3),
			"Garbage":  []byte("not a document"),
			"WrongKind": func() []byte {
				return s.doc(t, kindKeyset, 3)
			}(),
		} {
			if _, _, err := p.Publish(kindPolicy, raw); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Errorf("%s: got %v, want %s", name, err, gateway.EINVALID)
			}
		}
	})
	t.Run("ErrUnknownKind", func(t *testing.T) {
		_, _, err := p.Publish(wire.DocumentKindFromProto(storegatev1.DocumentKind_DOCUMENT_KIND_UNSPECIFIED), []byte("x"))
		if got := gateway.ErrorCode(err); got != gateway.EINVALID {
			t.Errorf("got %q (%v), want %q", got, err, gateway.EINVALID)
		}
	})
	docs := p.Documents()
	if len(docs) != 1 || docs[0].Version != 2 || !bytes.Equal(docs[0].Raw, s.doc(t, kindPolicy, 2)) {
		t.Errorf("Documents: got %+v, want the policy v2", docs)
	}
}

func TestPublisher_PolicyKey(t *testing.T) {
	l := MustOpenLedger(t, filepath.Join(t.TempDir(), "central.db"))
	rootPub, root, _ := gateway.GenerateKey()
	p := MustOpenPublisher(t, l, rootPub)
	polPub, polKey, _ := gateway.GenerateKey()
	tokPub, _, _ := gateway.GenerateKey()
	ks := gateway.NewKeyset(1, time.Now(), tokPub)
	if err := gateway.AddKey(ks, polPub, gateway.KeyUsePolicy); err != nil {
		t.Fatal(err)
	}
	raw, _ := gateway.SignKeyset(root, ks)
	mustPublishRaw(t, p, kindKeyset, raw)
	if k := p.Keyring(); k == nil || k.Version != 1 || k.Len() != 2 {
		t.Fatalf("Keyring: got %v, want the published keyset v1", k)
	}
	pol := func(v uint64) []byte {
		raw, err := gateway.SignPolicy(polKey, &documentv1.Policy{Version: v, Mode: documentv1.StoreMode_STORE_MODE_NORMAL})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	mustPublishRaw(t, p, kindPolicy, pol(1))
	if err := gateway.RetireKey(ks, gateway.KeyID(polPub)); err != nil {
		t.Fatal(err)
	}
	ks.Version = 2
	raw, _ = gateway.SignKeyset(root, ks)
	mustPublishRaw(t, p, kindKeyset, raw)
	if _, _, err := p.Publish(kindPolicy, pol(2)); gateway.ErrorCode(err) != gateway.EINVALID {
		t.Errorf("a policy signed by a retired key: got %v, want EINVALID", err)
	}
}

func TestPublisher_FreezeLog(t *testing.T) {
	f := newFixture(t)
	s := newSigner(f.RootKey)
	freeze := func(v uint64, snapshot bool, account string, frozen bool) []byte {
		return s.freeze(t, v, snapshot, &documentv1.FreezeEntry{Account: account, Frozen: frozen})
	}
	d1, d2, d3 := freeze(1, false, "acct-1", true), freeze(2, false, "acct-2", true), freeze(3, false, "acct-1", false)
	for _, d := range [][]byte{d1, d2, d3} {
		mustPublishRaw(t, f.Publisher, kindFreeze, d)
	}
	t.Run("ErrGapAndStale", func(t *testing.T) {
		if _, _, err := f.Publisher.Publish(kindFreeze, freeze(5, false, "acct-5", true)); gateway.ErrorCode(err) != gateway.ECONFLICT {
			t.Errorf("a delta after a gap: got %v, want ECONFLICT", err)
		}
		if _, _, err := f.Publisher.Publish(kindFreeze, freeze(2, true, "acct-9", true)); gateway.ErrorCode(err) != gateway.ESTALE {
			t.Errorf("an older snapshot: got %v, want ESTALE", err)
		}
		if _, _, err := f.Publisher.Publish(kindFreeze, freeze(3, false, "acct-3", true)); gateway.ErrorCode(err) != gateway.ECONFLICT {
			t.Errorf("another delta 3: got %v, want ECONFLICT", err)
		}
	})
	t.Run("DeltasAfterTheStore", func(t *testing.T) {
		stream := f.watch(t, &storegatev1.WatchPolicyRequest{StoreId: "store-1", FreezeVersion: 1})
		mustRecv(t, stream, kindFreeze, 2, d2)
		mustRecv(t, stream, kindFreeze, 3, d3)
	})
	s7 := freeze(7, true, "acct-7", true)
	d8 := freeze(8, false, "acct-8", true)
	mustPublishRaw(t, f.Publisher, kindFreeze, s7)
	mustPublishRaw(t, f.Publisher, kindFreeze, d8)
	t.Run("SnapshotReplaces", func(t *testing.T) {
		stream := f.watch(t, &storegatev1.WatchPolicyRequest{StoreId: "store-1", FreezeVersion: 3})
		mustRecv(t, stream, kindFreeze, 7, s7)
		mustRecv(t, stream, kindFreeze, 8, d8)
		got, err := f.Ledger.FrozenAccounts()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["acct-7"].Version != 7 || got["acct-8"].Version != 8 {
			t.Errorf("central's frozen accounts: got %v, want acct-7 and acct-8", got)
		}
	})
	t.Run("SurvivesReopen", func(t *testing.T) {
		p := MustOpenPublisher(t, f.Ledger, f.RootKey.Public().(ed25519.PublicKey))
		initial, w := p.Watch("store-1", gateway.DocumentVersions{})
		defer w.Close()
		if len(initial) != 2 || initial[0].Version != 7 || !initial[0].Snapshot || initial[1].Version != 8 {
			t.Errorf("catch-up after reopening: got %d documents, want the snapshot 7 and delta 8", len(initial))
		}
	})
}

func TestPublisher_SlowWatcher(t *testing.T) {
	l := MustOpenLedger(t, filepath.Join(t.TempDir(), "central.db"))
	rootPub, root, _ := gateway.GenerateKey()
	p := MustOpenPublisher(t, l, rootPub)
	p.Buffer = 2
	s := newSigner(root)

	_, slow := p.Watch("store-1", gateway.DocumentVersions{})
	defer slow.Close()
	_, fast := p.Watch("store-2", gateway.DocumentVersions{})
	defer fast.Close()

	// Nobody reads the slow watcher; Publish must still return.
	for v := uint64(1); v <= 5; v++ {
		mustPublishRaw(t, p, kindPolicy, s.doc(t, kindPolicy, v))
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

func TestPublisher_PersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "central.db")
	l := central.NewLedger(path)
	if err := l.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	rootPub, root, _ := gateway.GenerateKey()
	p := central.NewPublisher(l, rootPub)
	if err := p.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := newSigner(root)
	mustPublishRaw(t, p, kindKeyset, s.doc(t, kindKeyset, 3))
	mustPublishRaw(t, p, kindPolicy, s.policy(t, "store-1", 4))
	p.Close(context.Background())
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	l = MustOpenLedger(t, path)
	p = MustOpenPublisher(t, l, rootPub)
	docs := p.Documents()
	if len(docs) != 2 || docs[0].Version != 3 || !bytes.Equal(docs[0].Raw, s.doc(t, kindKeyset, 3)) ||
		docs[1].StoreID != "store-1" || docs[1].Version != 4 {
		t.Errorf("Documents after reopen: got %+v, want keyset v3 and store-1's policy v4", docs)
	}
	if k := p.Keyring(); k == nil || k.Version != 3 {
		t.Errorf("Keyring after reopen: got %v, want v3", k)
	}
	if _, _, err := p.Publish(kindKeyset, s.doc(t, kindKeyset, 2)); gateway.ErrorCode(err) != gateway.ESTALE {
		t.Errorf("publish v2 after reopen at v3: got %v, want %s", err, gateway.ESTALE)
	}
	t.Run("ErrOtherRoot", func(t *testing.T) {
		other, _, _ := gateway.GenerateKey()
		if err := central.NewPublisher(l, other).Open(context.Background()); err == nil {
			t.Error("Open of a publisher with another root over a keyset the first signed: got no error")
		}
	})
}

func TestAdminService(t *testing.T) {
	f := newFixture(t)
	s := newSigner(f.RootKey)
	ctx := context.Background()
	publish := func(kind gateway.DocumentKind, raw []byte) (*storegatev1.PublishDocumentResponse, error) {
		return f.Admin.PublishDocument(ctx, &storegatev1.PublishDocumentRequest{Kind: wire.DocumentKindToProto(kind), Document: &storegatev1.SignedDocument{CoseSign1: raw}})
	}
	res, err := publish(kindPolicy, s.policy(t, "store-1", 2))
	if err != nil || res.GetUnchanged() || res.GetPublished().GetVersion() != 2 || res.GetPublished().GetStoreId() != "store-1" {
		t.Fatalf("PublishDocument: got %v, %v, want store-1's policy v2 published", res, err)
	}
	if res, err := publish(kindPolicy, s.policy(t, "store-1", 2)); err != nil || !res.GetUnchanged() {
		t.Errorf("PublishDocument again: got %v, %v, want unchanged", res, err)
	}
	if _, err := publish(kindPolicy, s.policy(t, "store-1", 1)); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("older version: got %v, want FailedPrecondition", err)
	}
	if _, err := publish(kindPolicy, []byte("garbage")); status.Code(err) != codes.InvalidArgument {
		t.Errorf("garbage: got %v, want InvalidArgument", err)
	}
	if _, err := publish(kindFreeze, s.freeze(t, 2, false, &documentv1.FreezeEntry{Account: "a", Frozen: true})); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("first freeze delta at version 2: got %v, want FailedPrecondition", err)
	}
	mustPublishRaw(t, f.Publisher, kindKeyset, s.doc(t, kindKeyset, 1))
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

// A correctly signed document at version 2^64−1 is refused, so that no one
// document can lock its scope: the emergency stop still goes out after it.
func TestPublisher_MaxVersionStep(t *testing.T) {
	l := MustOpenLedger(t, filepath.Join(t.TempDir(), "central.db"))
	rootPub, root, _ := gateway.GenerateKey()
	p := MustOpenPublisher(t, l, rootPub)
	s := newSigner(root)
	doc := func(t *testing.T, kind gateway.DocumentKind, version uint64) []byte {
		if kind != kindPolicy {
			return s.doc(t, kind, version)
		}
		// The signer's policies carry a cap that grows with the version.
		return s.once(t, fmt.Sprintf("bare-policy/%d", version), func() ([]byte, error) {
			return gateway.SignPolicy(root, &documentv1.Policy{Version: version, Mode: documentv1.StoreMode_STORE_MODE_NORMAL})
		})
	}
	for _, kind := range []gateway.DocumentKind{kindKeyset, kindPolicy, kindFreeze} {
		t.Run(string(kind)+"FromNothing", func(t *testing.T) {
			if _, _, err := p.Publish(kind, doc(t, kind, math.MaxUint64)); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Fatalf("%s at 2^64-1 as the first: err = %v, want EINVALID", kind, err)
			}
			if _, _, err := p.Publish(kind, doc(t, kind, gateway.MaxVersionStep+1)); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Fatalf("%s at %d as the first: err = %v, want EINVALID", kind, gateway.MaxVersionStep+1, err)
			}
			mustPublishRaw(t, p, kind, doc(t, kind, 1))
		})
		t.Run(string(kind)+"AfterOne", func(t *testing.T) {
			if _, _, err := p.Publish(kind, doc(t, kind, math.MaxUint64)); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Fatalf("%s at 2^64-1: err = %v, want EINVALID", kind, err)
			}
			if _, _, err := p.Publish(kind, doc(t, kind, 2+gateway.MaxVersionStep)); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Fatalf("%s %d past the published one: err = %v, want EINVALID", kind, 1+gateway.MaxVersionStep, err)
			}
			mustPublishRaw(t, p, kind, doc(t, kind, 1+gateway.MaxVersionStep))
		})
	}
	t.Run("EmergencyStopAfter", func(t *testing.T) {
		stop, err := gateway.SignPolicy(root, &documentv1.Policy{Version: 2 + gateway.MaxVersionStep, Mode: documentv1.StoreMode_STORE_MODE_SUSPENDED})
		if err != nil {
			t.Fatal(err)
		}
		if d := mustPublishRaw(t, p, kindPolicy, stop); d.Version != 2+gateway.MaxVersionStep {
			t.Fatalf("suspension published at v%d, want v%d", d.Version, 2+gateway.MaxVersionStep)
		}
	})
}
