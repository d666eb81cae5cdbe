package central_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/central"
	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

const (
	kindKeyset = storegatev1.DocumentKind_DOCUMENT_KIND_KEYSET
	kindPolicy = storegatev1.DocumentKind_DOCUMENT_KIND_POLICY
	kindFreeze = storegatev1.DocumentKind_DOCUMENT_KIND_FREEZE_LIST
)

// doc returns stand-in document bytes; the publisher does not read them.
func doc(kind storegatev1.DocumentKind, version uint64) []byte {
	return []byte(kind.String() + "/v" + strconv.FormatUint(version, 10))
}

func mustPublish(t testing.TB, p *central.Publisher, kind storegatev1.DocumentKind, version uint64) {
	t.Helper()
	if err := p.Publish(kind, version, doc(kind, version)); err != nil {
		t.Fatalf("Publish(%v, %d): %v", kind, version, err)
	}
}

// mustRecv receives one message and checks its kind, version and bytes.
func mustRecv(t testing.TB, stream storegatev1.CentralService_WatchPolicyClient, kind storegatev1.DocumentKind, version uint64) {
	t.Helper()
	msg, err := stream.Recv()
	if err != nil {
		t.Fatalf("Recv: %v, want %v v%d", err, kind, version)
	}
	if msg.GetKind() != kind || msg.GetVersion() != version {
		t.Fatalf("Recv: got %v v%d, want %v v%d", msg.GetKind(), msg.GetVersion(), kind, version)
	}
	if got, want := msg.GetDocument().GetCoseSign1(), doc(kind, version); !bytes.Equal(got, want) {
		t.Errorf("document bytes: got %q, want %q", got, want)
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

func TestWatchPolicy_Resume(t *testing.T) {
	f := newFixture(t)
	mustPublish(t, f.Publisher, kindKeyset, 1)
	mustPublish(t, f.Publisher, kindKeyset, 2)
	mustPublish(t, f.Publisher, kindPolicy, 4)
	mustPublish(t, f.Publisher, kindPolicy, 5)
	mustPublish(t, f.Publisher, kindFreeze, 3)

	// watch opens a stream from the given versions, once the streams of
	// earlier subtests have ended.
	watch := func(t *testing.T, keyset, policy, freeze uint64) storegatev1.CentralService_WatchPolicyClient {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		waitWatchers(t, f.Publisher, 0)
		stream, err := f.Client.WatchPolicy(ctx, &storegatev1.WatchPolicyRequest{
			StoreId: "store-1", KeysetVersion: keyset, PolicyVersion: policy, FreezeVersion: freeze,
		})
		if err != nil {
			t.Fatal(err)
		}
		waitWatchers(t, f.Publisher, 1)
		return stream
	}

	// Each stream's next message must be exactly what is listed: had a
	// document the store holds been resent, it would arrive first.
	t.Run("UpToDate", func(t *testing.T) {
		stream := watch(t, 2, 5, 3)
		mustPublish(t, f.Publisher, kindFreeze, 4)
		mustRecv(t, stream, kindFreeze, 4)
	})
	t.Run("PolicyBehind", func(t *testing.T) {
		stream := watch(t, 2, 4, 4)
		mustRecv(t, stream, kindPolicy, 5)
		mustPublish(t, f.Publisher, kindKeyset, 3)
		mustRecv(t, stream, kindKeyset, 3)
	})
	t.Run("KeysetAndFreezeBehind", func(t *testing.T) {
		stream := watch(t, 2, 5, 1)
		mustRecv(t, stream, kindKeyset, 3)
		mustRecv(t, stream, kindFreeze, 4)
		mustPublish(t, f.Publisher, kindPolicy, 6)
		mustRecv(t, stream, kindPolicy, 6)
	})
}

func TestWatchPolicy_FromNothing(t *testing.T) {
	f := newFixture(t)
	mustPublish(t, f.Publisher, kindFreeze, 1)
	mustPublish(t, f.Publisher, kindPolicy, 1)
	mustPublish(t, f.Publisher, kindKeyset, 1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := f.Client.WatchPolicy(ctx, &storegatev1.WatchPolicyRequest{StoreId: "store-1"})
	if err != nil {
		t.Fatal(err)
	}
	// The keyset comes first: it names the keys the others are signed by.
	mustRecv(t, stream, kindKeyset, 1)
	mustRecv(t, stream, kindPolicy, 1)
	mustRecv(t, stream, kindFreeze, 1)
}

func TestWatchPolicy_Live(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := f.Client.WatchPolicy(ctx, &storegatev1.WatchPolicyRequest{StoreId: "store-1"})
	if err != nil {
		t.Fatal(err)
	}
	waitWatchers(t, f.Publisher, 1)
	mustPublish(t, f.Publisher, kindPolicy, 1)
	mustRecv(t, stream, kindPolicy, 1)
	mustPublish(t, f.Publisher, kindPolicy, 2)
	mustRecv(t, stream, kindPolicy, 2)

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
	f.Publisher.Close()
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("Recv after close: got %v, want Unavailable", err)
	}
}

func TestWatchPolicy_Malformed(t *testing.T) {
	f := newFixture(t)
	stream, err := f.Client.WatchPolicy(context.Background(), &storegatev1.WatchPolicyRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Recv without store id: got %v, want InvalidArgument", err)
	}
}

func TestPublisher_Publish(t *testing.T) {
	l := MustOpenLedger(t, filepath.Join(t.TempDir(), "central.db"))
	p, err := central.NewPublisher(l)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mustPublish(t, p, kindPolicy, 2)

	t.Run("ErrLowerVersion", func(t *testing.T) {
		err := p.Publish(kindPolicy, 1, doc(kindPolicy, 1))
		if got := gateway.ErrorCode(err); got != gateway.ESTALE {
			t.Errorf("publish v1 after v2: got %q (%v), want %q", got, err, gateway.ESTALE)
		}
	})
	t.Run("ErrSameVersionOtherContent", func(t *testing.T) {
		err := p.Publish(kindPolicy, 2, []byte("something else"))
		if got := gateway.ErrorCode(err); got != gateway.ECONFLICT {
			t.Errorf("got %q (%v), want %q", got, err, gateway.ECONFLICT)
		}
	})
	t.Run("SameVersionAgain", func(t *testing.T) {
		if err := p.Publish(kindPolicy, 2, doc(kindPolicy, 2)); err != nil {
			t.Errorf("republish the same document: %v", err)
		}
	})
	t.Run("ErrUnknownKind", func(t *testing.T) {
		err := p.Publish(storegatev1.DocumentKind_DOCUMENT_KIND_UNSPECIFIED, 1, []byte("x"))
		if got := gateway.ErrorCode(err); got != gateway.EINVALID {
			t.Errorf("got %q (%v), want %q", got, err, gateway.EINVALID)
		}
	})
	d, ok := p.Latest(kindPolicy)
	if !ok || d.Version != 2 || !bytes.Equal(d.Raw, doc(kindPolicy, 2)) {
		t.Errorf("Latest: got v%d %q (%v), want v2 %q", d.Version, d.Raw, ok, doc(kindPolicy, 2))
	}
}

func TestPublisher_SlowWatcher(t *testing.T) {
	l := MustOpenLedger(t, filepath.Join(t.TempDir(), "central.db"))
	p, err := central.NewPublisher(l)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Buffer = 2

	_, slow := p.Watch(nil)
	defer slow.Close()
	_, fast := p.Watch(nil)
	defer fast.Close()

	// Nobody reads the slow watcher; Publish must still return.
	for v := uint64(1); v <= 5; v++ {
		mustPublish(t, p, kindPolicy, v)
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
	l, err := central.OpenLedger(path, central.LedgerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := central.NewPublisher(l)
	if err != nil {
		t.Fatal(err)
	}
	mustPublish(t, p, kindKeyset, 3)
	p.Close()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = MustOpenLedger(t, path)
	p, err = central.NewPublisher(l)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	d, ok := p.Latest(kindKeyset)
	if !ok || d.Version != 3 || !bytes.Equal(d.Raw, doc(kindKeyset, 3)) {
		t.Errorf("Latest after reopen: got v%d %q (%v), want v3", d.Version, d.Raw, ok)
	}
	if err := p.Publish(kindKeyset, 2, doc(kindKeyset, 2)); gateway.ErrorCode(err) != gateway.ESTALE {
		t.Errorf("publish v2 after reopen at v3: got %v, want %s", err, gateway.ESTALE)
	}
}
