package storecache_test

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
	"storegate/storecache"
)

func freezeDelta(version uint64, entries ...gateway.FreezeEntry) *gateway.FreezeList {
	return &gateway.FreezeList{Version: version, Entries: entries}
}

func frozen(account, reason string) gateway.FreezeEntry {
	return gateway.FreezeEntry{Account: account, Frozen: true, Reason: reason}
}

func unfrozen(account string) gateway.FreezeEntry {
	return gateway.FreezeEntry{Account: account}
}

func mustApplyFreeze(tb testing.TB, s *storecache.Store, l *gateway.FreezeList) {
	tb.Helper()
	if ok, err := s.ApplyFreezeList(context.Background(), l, []byte{'f', byte(l.Version)}); err != nil || !ok {
		tb.Fatalf("ApplyFreezeList(v%d): got %v, %v, want true, nil", l.Version, ok, err)
	}
}

func loadFreeze(tb testing.TB, s *storecache.Store) *gateway.FreezeSet {
	tb.Helper()
	set, err := s.LoadFreezeList(context.Background())
	if err != nil {
		tb.Fatalf("LoadFreezeList: %v", err)
	}
	return set
}

func TestStore_ApplyFreezeList(t *testing.T) {
	ctx := context.Background()

	t.Run("Empty", func(t *testing.T) {
		s := MustOpenStore(t)
		if set := loadFreeze(t, s); set.Version != 0 || set.Len() != 0 {
			t.Errorf("a new store: got version %d with %d accounts, want 0 and 0", set.Version, set.Len())
		}
	})

	t.Run("DeltasThenSnapshot", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "store.db")
		s := MustOpenStoreAt(t, path)
		mustApplyFreeze(t, s, freezeDelta(1, frozen("acct-1", "takeover"), frozen("acct-2", "takeover")))
		mustApplyFreeze(t, s, freezeDelta(2, unfrozen("acct-1"), frozen("acct-3", "chargebacks")))
		set := loadFreeze(t, s)
		if _, ok := set.Lookup("acct-1"); ok || set.Len() != 2 || set.Version != 2 {
			t.Fatalf("after two deltas: got v%d %v, want v2 acct-2 and acct-3", set.Version, set.Accounts())
		}
		if fa, _ := set.Lookup("acct-3"); fa.Reason != "chargebacks" || fa.Version != 2 {
			t.Errorf("acct-3: got %+v, want reason chargebacks, version 2", fa)
		}
		if raw, v, _ := s.LoadDocument(ctx, gateway.DocumentFreeze); v != 2 || string(raw) != "f\x02" {
			t.Errorf("freeze document: got %q v%d, want the v2 document", raw, v)
		}
		// A snapshot may skip versions and replaces everything.
		mustApplyFreeze(t, s, &gateway.FreezeList{Version: 9, Snapshot: true, Entries: []gateway.FreezeEntry{frozen("acct-9", "")}})
		set = loadFreeze(t, s)
		if _, ok := set.Lookup("acct-9"); !ok || set.Len() != 1 || set.Version != 9 {
			t.Errorf("after the snapshot: got v%d %v, want v9 acct-9 alone", set.Version, set.Accounts())
		}
	})

	t.Run("ErrStale", func(t *testing.T) {
		s := MustOpenStore(t)
		mustApplyFreeze(t, s, freezeDelta(1, frozen("acct-1", "")))
		mustApplyFreeze(t, s, freezeDelta(2, frozen("acct-2", "")))
		_, err := s.ApplyFreezeList(ctx, freezeDelta(1, unfrozen("acct-1")), []byte("old"))
		wantCode(t, err, gateway.ESTALE)
		_, err = s.ApplyFreezeList(ctx, &gateway.FreezeList{Version: 1, Snapshot: true}, []byte("old"))
		wantCode(t, err, gateway.ESTALE)
		if ok, err := s.ApplyFreezeList(ctx, freezeDelta(2, frozen("acct-2", "")), []byte("again")); ok || err != nil {
			t.Errorf("the held version again: got %v, %v, want false, nil", ok, err)
		}
		if set := loadFreeze(t, s); set.Len() != 2 {
			t.Errorf("frozen accounts: got %v, want both still frozen", set.Accounts())
		}
	})

	t.Run("ErrGap", func(t *testing.T) {
		s := MustOpenStore(t)
		mustApplyFreeze(t, s, freezeDelta(1, frozen("acct-1", "")))
		_, err := s.ApplyFreezeList(ctx, freezeDelta(3, frozen("acct-3", "")), []byte("gap"))
		wantCode(t, err, gateway.ECONFLICT)
		wantContains(t, err, "version 3", "version 1")
		if set := loadFreeze(t, s); set.Version != 1 || set.Len() != 1 {
			t.Errorf("after a refused delta: got v%d %v, want v1 unchanged", set.Version, set.Accounts())
		}
	})

	t.Run("SurvivesReopen", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "store.db")
		s, err := openStore(path)
		if err != nil {
			t.Fatal(err)
		}
		mustApplyFreeze(t, s, freezeDelta(1, frozen("acct-1", "takeover")))
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		s = MustOpenStoreAt(t, path)
		if fa, ok := loadFreeze(t, s).Lookup("acct-1"); !ok || fa.Reason != "takeover" {
			t.Errorf("after reopening: got %+v, %v, want acct-1 frozen for takeover", fa, ok)
		}
	})
}

func TestStore_SchemaUpgrade(t *testing.T) {
	// A store written by schema 1 lacks the counters, charges and frozen
	// buckets: read-only tools still read it, and opening it for writing
	// upgrades it in place.
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOnline, 500))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		for _, b := range []string{"counters", "charges", "frozen"} {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), binary.BigEndian.AppendUint64(nil, 1))
	})

	ro, err := openReadOnly(path, 0)
	if err != nil {
		t.Fatalf("OpenReadOnly of a schema 1 store: %v", err)
	}
	if err := ro.Check(); err != nil {
		t.Errorf("Check of a schema 1 store: %v", err)
	}
	if set := loadFreeze(t, ro); set.Len() != 0 {
		t.Errorf("freeze list of a schema 1 store: got %d accounts, want 0", set.Len())
	}
	if got := sums(t, ro, t0, giftWindow); got[0] != 0 {
		t.Errorf("counter of a schema 1 store: got %d, want 0", got[0])
	}
	if err := ro.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	s = MustOpenStoreAt(t, path)
	mustCommit(t, s, chargedCommit(2, giftCharge(1000, 100000, t0)))
	if d, _ := s.LookupDecision(context.Background(), gateway.IdempotencyKey{Lane: "lane-1", POSTxnID: "txn-1"}); d == nil {
		t.Error("the schema 1 decision is gone after the upgrade")
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte("meta")).Get([]byte("schema")); binary.BigEndian.Uint64(v) != storecache.SchemaVersion {
			t.Errorf("schema after the upgrade: got %d, want %d", binary.BigEndian.Uint64(v), storecache.SchemaVersion)
		}
		return nil
	})
}
