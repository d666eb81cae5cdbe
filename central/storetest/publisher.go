package storetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"math"
	"testing"
	"time"

	"storegate/central"
	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
)

const (
	kindKeyset = gateway.DocumentKeyset
	kindPolicy = gateway.DocumentPolicy
	kindFreeze = gateway.DocumentFreeze
)

// openPublisher opens another publisher over the fixture's ledger.
func (f *Fixture) openPublisher(t *testing.T) *central.Publisher {
	t.Helper()
	p := central.NewPublisher(f.Ledger, f.RootKey.Public().(ed25519.PublicKey))
	if err := p.Open(context.Background()); err != nil {
		t.Fatalf("Publisher.Open: %v", err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func testPublish(t *testing.T, ns NewStorage) {
	ctx := context.Background()
	f := NewFixture(t, ns)
	p, root := f.Publisher, f.RootKey
	s := NewSigner(root)
	MustPublish(t, p, kindPolicy, s.Doc(t, kindPolicy, 2))

	t.Run("ErrStale", func(t *testing.T) {
		_, _, err := p.Publish(ctx, kindPolicy, s.Doc(t, kindPolicy, 1))
		if got := gateway.ErrorCode(err); got != gateway.ESTALE {
			t.Errorf("got %q (%v), want %q", got, err, gateway.ESTALE)
		}
	})
	t.Run("ErrConflict", func(t *testing.T) {
		other, err := gateway.SignPolicy(root, &documentv1.Policy{Version: 2, Mode: documentv1.StoreMode_STORE_MODE_SUSPENDED})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = p.Publish(ctx, kindPolicy, other)
		if got := gateway.ErrorCode(err); got != gateway.ECONFLICT {
			t.Errorf("got %q (%v), want %q", got, err, gateway.ECONFLICT)
		}
	})
	t.Run("SameAgain", func(t *testing.T) {
		d, changed, err := p.Publish(ctx, kindPolicy, s.Doc(t, kindPolicy, 2))
		if err != nil || changed || d.Version != 2 {
			t.Errorf("got v%d changed %v, %v; want v2 unchanged", d.Version, changed, err)
		}
	})
	t.Run("ErrNotVerified", func(t *testing.T) {
		_, stranger, _ := gateway.GenerateKey()
		for name, raw := range map[string][]byte{
			"Stranger":  NewSigner(stranger).Doc(t, kindPolicy, 3),
			"Garbage":   []byte("not a document"),
			"WrongKind": s.Doc(t, kindKeyset, 3),
		} {
			if _, _, err := p.Publish(ctx, kindPolicy, raw); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Errorf("%s: got %v, want %s", name, err, gateway.EINVALID)
			}
		}
	})
	t.Run("ErrUnknownKind", func(t *testing.T) {
		_, _, err := p.Publish(ctx, "", []byte("x"))
		if got := gateway.ErrorCode(err); got != gateway.EINVALID {
			t.Errorf("got %q (%v), want %q", got, err, gateway.EINVALID)
		}
	})
	docs := p.Documents()
	if len(docs) != 1 || docs[0].Version != 2 || !bytes.Equal(docs[0].Raw, s.Doc(t, kindPolicy, 2)) {
		t.Errorf("Documents: got %+v, want the policy v2", docs)
	}
}

func testPublishPolicyKey(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	p, root := f.Publisher, f.RootKey
	polPub, polKey, _ := gateway.GenerateKey()
	tokPub, _, _ := gateway.GenerateKey()
	ks := gateway.NewKeyset(1, time.Now(), tokPub)
	if err := gateway.AddKey(ks, polPub, gateway.KeyUsePolicy); err != nil {
		t.Fatal(err)
	}
	raw, _ := gateway.SignKeyset(root, ks)
	MustPublish(t, p, kindKeyset, raw)
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
	MustPublish(t, p, kindPolicy, pol(1))
	if err := gateway.RetireKey(ks, gateway.KeyID(polPub)); err != nil {
		t.Fatal(err)
	}
	ks.Version = 2
	raw, _ = gateway.SignKeyset(root, ks)
	MustPublish(t, p, kindKeyset, raw)
	if _, _, err := p.Publish(context.Background(), kindPolicy, pol(2)); gateway.ErrorCode(err) != gateway.EINVALID {
		t.Errorf("a policy signed by a retired key: got %v, want EINVALID", err)
	}
}

func testPublishFreezeLog(t *testing.T, ns NewStorage) {
	ctx := context.Background()
	f := NewFixture(t, ns)
	s := NewSigner(f.RootKey)
	freeze := func(v uint64, snapshot bool, account string, frozen bool) []byte {
		return s.Freeze(t, v, snapshot, &documentv1.FreezeEntry{Account: account, Frozen: frozen, Reason: "why " + account})
	}
	d1, d2, d3 := freeze(1, false, "acct-1", true), freeze(2, false, "acct-2", true), freeze(3, false, "acct-1", false)
	for _, d := range [][]byte{d1, d2, d3} {
		MustPublish(t, f.Publisher, kindFreeze, d)
	}
	t.Run("ErrGapAndStale", func(t *testing.T) {
		if _, _, err := f.Publisher.Publish(ctx, kindFreeze, freeze(5, false, "acct-5", true)); gateway.ErrorCode(err) != gateway.ECONFLICT {
			t.Errorf("a delta after a gap: got %v, want ECONFLICT", err)
		}
		if _, _, err := f.Publisher.Publish(ctx, kindFreeze, freeze(2, true, "acct-9", true)); gateway.ErrorCode(err) != gateway.ESTALE {
			t.Errorf("an older snapshot: got %v, want ESTALE", err)
		}
		if _, _, err := f.Publisher.Publish(ctx, kindFreeze, freeze(3, false, "acct-3", true)); gateway.ErrorCode(err) != gateway.ECONFLICT {
			t.Errorf("another delta 3: got %v, want ECONFLICT", err)
		}
	})
	t.Run("DeltasAfterTheStore", func(t *testing.T) {
		initial, w := f.Publisher.Watch("store-1", gateway.DocumentVersions{Freeze: 1})
		defer w.Close()
		if len(initial) != 2 || !bytes.Equal(initial[0].Raw, d2) || !bytes.Equal(initial[1].Raw, d3) {
			t.Errorf("catch-up from freeze 1: got %d documents, want deltas 2 and 3", len(initial))
		}
		got, err := f.Ledger.FrozenAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got["acct-2"] != (gateway.FrozenAccount{Version: 2, Reason: "why acct-2"}) {
			t.Errorf("central's frozen accounts: got %v, want acct-2 alone, frozen by version 2", got)
		}
	})
	s7 := freeze(7, true, "acct-7", true)
	d8 := freeze(8, false, "acct-8", true)
	MustPublish(t, f.Publisher, kindFreeze, s7)
	MustPublish(t, f.Publisher, kindFreeze, d8)
	t.Run("SnapshotReplaces", func(t *testing.T) {
		initial, w := f.Publisher.Watch("store-1", gateway.DocumentVersions{Freeze: 3})
		defer w.Close()
		if len(initial) != 2 || initial[0].Version != 7 || !initial[0].Snapshot || initial[1].Version != 8 {
			t.Errorf("catch-up from freeze 3: got %d documents, want the snapshot 7 and delta 8", len(initial))
		}
		got, err := f.Ledger.FrozenAccounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["acct-7"].Version != 7 || got["acct-8"].Version != 8 {
			t.Errorf("central's frozen accounts: got %v, want acct-7 and acct-8", got)
		}
	})
	t.Run("SurvivesReopen", func(t *testing.T) {
		f.Publisher.Close(ctx)
		MustClose(t, f.Ledger)
		f.Ledger = MustOpenLedger(t, f.Handle())
		p := f.openPublisher(t)
		initial, w := p.Watch("store-1", gateway.DocumentVersions{})
		defer w.Close()
		if len(initial) != 2 || initial[0].Version != 7 || !initial[0].Snapshot || initial[1].Version != 8 ||
			!bytes.Equal(initial[0].Raw, s7) || !bytes.Equal(initial[1].Raw, d8) {
			t.Errorf("catch-up after reopening: got %d documents, want the snapshot 7 and delta 8", len(initial))
		}
		got, err := f.Ledger.FrozenAccounts(ctx)
		if err != nil || len(got) != 2 {
			t.Errorf("frozen accounts after reopening: got %v, %v, want acct-7 and acct-8", got, err)
		}
	})
}

func testPublishPersistsAcrossReopen(t *testing.T, ns NewStorage) {
	ctx := context.Background()
	f := NewFixture(t, ns)
	s := NewSigner(f.RootKey)
	MustPublish(t, f.Publisher, kindKeyset, s.Doc(t, kindKeyset, 3))
	want := MustPublish(t, f.Publisher, kindPolicy, s.Policy(t, "store-1", 4))
	f.Publisher.Close(ctx)
	MustClose(t, f.Ledger)

	f.Ledger = MustOpenLedger(t, f.Handle())
	p := f.openPublisher(t)
	docs := p.Documents()
	if len(docs) != 2 || docs[0].Version != 3 || !bytes.Equal(docs[0].Raw, s.Doc(t, kindKeyset, 3)) ||
		docs[1].StoreID != "store-1" || docs[1].Version != 4 || !docs[1].PublishedAt.Equal(want.PublishedAt) {
		t.Errorf("Documents after reopen: got %+v, want keyset v3 and store-1's policy v4", docs)
	}
	if k := p.Keyring(); k == nil || k.Version != 3 {
		t.Errorf("Keyring after reopen: got %v, want v3", k)
	}
	if _, _, err := p.Publish(ctx, kindKeyset, s.Doc(t, kindKeyset, 2)); gateway.ErrorCode(err) != gateway.ESTALE {
		t.Errorf("publish v2 after reopen at v3: got %v, want %s", err, gateway.ESTALE)
	}
	t.Run("ErrOtherRoot", func(t *testing.T) {
		other, _, _ := gateway.GenerateKey()
		if err := central.NewPublisher(f.Ledger, other).Open(ctx); err == nil {
			t.Error("a publisher with another root over a keyset the first signed opened")
		}
	})
}

// Two publishers over one storage, as two HQ processes over one database:
// each checks versions against what is stored, not what it loaded, so one
// version is published once.
func testPublishTwoPublishers(t *testing.T, ns NewStorage) {
	ctx := context.Background()
	f := NewFixture(t, ns)
	other := f.openPublisher(t)
	s := NewSigner(f.RootKey)
	MustPublish(t, f.Publisher, kindFreeze, s.Freeze(t, 1, false, frozenEntry("acct-1", "")))
	if _, _, err := other.Publish(ctx, kindFreeze, s.Freeze(t, 1, false, frozenEntry("acct-2", ""))); gateway.ErrorCode(err) != gateway.ECONFLICT {
		t.Errorf("another freeze delta 1 through the second publisher: got %v, want %s", err, gateway.ECONFLICT)
	}
	MustPublish(t, other, kindFreeze, s.Freeze(t, 2, false, frozenEntry("acct-2", "")))
	MustPublish(t, f.Publisher, kindPolicy, s.Policy(t, "", 5))
	if _, _, err := other.Publish(ctx, kindPolicy, s.Policy(t, "", 4)); gateway.ErrorCode(err) != gateway.ESTALE {
		t.Errorf("policy 4 after 5 through the second publisher: got %v, want %s", err, gateway.ESTALE)
	}
	got, err := f.Ledger.FrozenAccounts(ctx)
	if err != nil || len(got) != 2 {
		t.Errorf("frozen accounts: got %v, %v, want acct-1 and acct-2", got, err)
	}
}

// A correctly signed document at version 2^64−1 is refused, so that no one
// document can lock its scope: the emergency stop still goes out after it.
func testPublishMaxVersionStep(t *testing.T, ns NewStorage) {
	ctx := context.Background()
	f := NewFixture(t, ns)
	p, root := f.openPublisher(t), f.RootKey
	s := NewSigner(root)
	doc := func(t *testing.T, kind gateway.DocumentKind, version uint64) []byte {
		if kind != kindPolicy {
			return s.Doc(t, kind, version)
		}
		// The signer's policies carry a cap that grows with the version.
		return s.once(t, fmt.Sprintf("bare-policy/%d", version), func() ([]byte, error) {
			return gateway.SignPolicy(root, &documentv1.Policy{Version: version, Mode: documentv1.StoreMode_STORE_MODE_NORMAL})
		})
	}
	for _, kind := range []gateway.DocumentKind{kindKeyset, kindPolicy, kindFreeze} {
		t.Run(string(kind)+"FromNothing", func(t *testing.T) {
			if _, _, err := p.Publish(ctx, kind, doc(t, kind, math.MaxUint64)); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Fatalf("%s at 2^64-1 as the first: err = %v, want EINVALID", kind, err)
			}
			if _, _, err := p.Publish(ctx, kind, doc(t, kind, gateway.MaxVersionStep+1)); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Fatalf("%s at %d as the first: err = %v, want EINVALID", kind, gateway.MaxVersionStep+1, err)
			}
			MustPublish(t, p, kind, doc(t, kind, 1))
		})
		t.Run(string(kind)+"AfterOne", func(t *testing.T) {
			if _, _, err := p.Publish(ctx, kind, doc(t, kind, math.MaxUint64)); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Fatalf("%s at 2^64-1: err = %v, want EINVALID", kind, err)
			}
			if _, _, err := p.Publish(ctx, kind, doc(t, kind, 2+gateway.MaxVersionStep)); gateway.ErrorCode(err) != gateway.EINVALID {
				t.Fatalf("%s %d past the published one: err = %v, want EINVALID", kind, 1+gateway.MaxVersionStep, err)
			}
			MustPublish(t, p, kind, doc(t, kind, 1+gateway.MaxVersionStep))
		})
	}
	t.Run("EmergencyStopAfter", func(t *testing.T) {
		stop, err := gateway.SignPolicy(root, &documentv1.Policy{Version: 2 + gateway.MaxVersionStep, Mode: documentv1.StoreMode_STORE_MODE_SUSPENDED})
		if err != nil {
			t.Fatal(err)
		}
		if d := MustPublish(t, p, kindPolicy, stop); d.Version != 2+gateway.MaxVersionStep {
			t.Fatalf("suspension published at v%d, want v%d", d.Version, 2+gateway.MaxVersionStep)
		}
	})
}
