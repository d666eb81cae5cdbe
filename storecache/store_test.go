package storecache_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
	"storegate/storecache"
)

func TestOpen_Persistence(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOffline, 1200))
	mustCommit(t, s, newCommit("lane-2", "txn-2", tokenID(2), gateway.ModeOnline, 800))
	mustCommit(t, s, newDecline("lane-1", "txn-3"))
	if _, err := s.SaveDocument(ctx, gateway.DocumentPolicy, 7, []byte("policy-7")); err != nil {
		t.Fatal(err)
	}
	wantN, wantHead, err := s.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantStats := outboxStats(t, s)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	s = MustOpenStoreAt(t, path)
	d, err := s.LookupDecision(ctx, gateway.IdempotencyKey{Lane: "lane-1", POSTxnID: "txn-1"})
	if err != nil {
		t.Fatal(err)
	}
	if d == nil || d.Decision.Amount != 1200 || !d.Decision.Approved {
		t.Errorf("decision lane-1/txn-1 after reopen: got %+v, want an approval of 1200", d)
	}
	if d, _ := s.LookupDecision(ctx, gateway.IdempotencyKey{Lane: "lane-1", POSTxnID: "txn-3"}); d == nil || d.Decision.Approved {
		t.Errorf("decision lane-1/txn-3 after reopen: got %+v, want a decline", d)
	}
	for _, n := range []int{1, 2} {
		if spent, err := s.TokenSpent(ctx, tokenID(n)); err != nil || !spent {
			t.Errorf("TokenSpent(token %d) after reopen: got %v, %v, want true", n, spent, err)
		}
	}
	if got, want := settlementIDs(t, s), []string{"stl-lane-1-txn-1", "stl-lane-2-txn-2"}; !equalStrings(got, want) {
		t.Errorf("pending settlements after reopen: got %q, want %q", got, want)
	}
	n, head, err := s.AuditHead(ctx)
	if err != nil || n != wantN || head != wantHead {
		t.Errorf("audit head after reopen: got %d %x (%v), want %d %x", n, head, err, wantN, wantHead)
	}
	if got := outboxStats(t, s); got != wantStats {
		t.Errorf("outbox stats after reopen: got %+v, want %+v", got, wantStats)
	}
	if raw, v, err := s.LoadDocument(ctx, gateway.DocumentPolicy); err != nil || v != 7 || string(raw) != "policy-7" {
		t.Errorf("policy after reopen: got %q v%d (%v), want policy-7 v7", raw, v, err)
	}
	if n, err := s.VerifyAudit(ctx); err != nil || n != 3 {
		t.Errorf("VerifyAudit after reopen: got %d, %v, want 3, nil", n, err)
	}
	// The sequence goes on after the reopen.
	c := newCommit("lane-3", "txn-4", tokenID(4), gateway.ModeOnline, 100)
	mustCommit(t, s, c)
	if c.Settlement.Seq != 3 {
		t.Errorf("seq of the first settlement after reopen: got %d, want 3", c.Settlement.Seq)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestOpen_NoSync builds a store as tools do, without a sync per commit,
// and finds everything after Close, which syncs once.
func TestOpen_NoSync(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := openStore(path, func(s *storecache.Store) { s.NoSync = true })
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustCommit(t, s, newCommit("lane-1", fmt.Sprintf("txn-%d", i), tokenID(i), gateway.ModeOnline, 100))
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = MustOpenStoreAt(t, path)
	if n, _, err := s.AuditHead(ctx); err != nil || n != 20 {
		t.Fatalf("audit records after reopen: got %d, %v, want 20", n, err)
	}
	if st := outboxStats(t, s); st.Depth != 20 {
		t.Errorf("outbox depth after reopen: got %d, want 20", st.Depth)
	}
}

func TestOpen_Locked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	MustOpenStoreAt(t, path)

	t.Run("ReadWrite", func(t *testing.T) {
		start := time.Now()
		s, err := openStore(path, func(s *storecache.Store) { s.Timeout = 100 * time.Millisecond })
		if err == nil {
			s.Close(context.Background())
			t.Fatal("second Open of a held file: got no error")
		}
		if !errors.Is(err, storecache.ErrLocked) {
			t.Errorf("second Open: got %v, want ErrLocked", err)
		}
		wantContains(t, err, path, "locked by another process", "is storegated already running?")
		if d := time.Since(start); d > time.Second {
			t.Errorf("second Open took %v, want about the 100ms timeout", d)
		}
	})
	t.Run("ContextDeadline", func(t *testing.T) {
		// Timeout waits forever; the context's deadline ends the wait.
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		s := storecache.NewStore(path)
		s.Timeout = -1
		err := s.Open(ctx)
		if err == nil {
			s.Close(context.Background())
			t.Fatal("Open of a held file under a deadline: got no error")
		}
		if !errors.Is(err, storecache.ErrLocked) {
			t.Errorf("Open under a deadline: got %v, want ErrLocked", err)
		}
	})
	t.Run("ReadOnly", func(t *testing.T) {
		s, err := openReadOnly(path, 100*time.Millisecond)
		if err == nil {
			s.Close(context.Background())
			t.Fatal("OpenReadOnly of a held file: got no error")
		}
		if !errors.Is(err, storecache.ErrLocked) {
			t.Errorf("OpenReadOnly: got %v, want ErrLocked", err)
		}
	})
}

// wantKept fails unless the file at path still holds want and nothing else
// appeared in its directory.
func wantKept(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the file is gone: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the file changed: got %d bytes, want the original %d", len(got), len(want))
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only %s", names, filepath.Base(path))
	}
}

func TestOpen_Corrupt(t *testing.T) {
	garbage := bytes.Repeat([]byte("this is not a bbolt file, but a store needs its state. "), 600)

	// A real store of several pages, to truncate.
	src := filepath.Join(t.TempDir(), "src.db")
	s, err := openStore(src)
	if err != nil {
		t.Fatal(err)
	}
	commitMany(t, s, 300)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"Garbage", garbage},
		{"Short", garbage[:100]},
		{"Truncated", full[:len(full)/4]},
		{"ZeroedMeta", append(make([]byte, 8192), full[8192:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "store.db")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := openStore(path, func(s *storecache.Store) { s.Timeout = 100 * time.Millisecond })
			if err == nil {
				s.Close(context.Background())
				t.Fatal("Open: got no error")
			}
			if !errors.Is(err, storecache.ErrCorrupt) {
				t.Errorf("Open: got %v, want ErrCorrupt", err)
			}
			wantContains(t, err, path, "left as it is")
			wantKept(t, path, tc.data)

			s, err = openReadOnly(path, 100*time.Millisecond)
			if err == nil {
				s.Close(context.Background())
				t.Fatal("OpenReadOnly: got no error")
			}
			if !errors.Is(err, storecache.ErrCorrupt) {
				t.Errorf("OpenReadOnly: got %v, want ErrCorrupt", err)
			}
			wantKept(t, path, tc.data)
		})
	}
}

// commitMany commits n approvals concurrently (so in few transactions).
func commitMany(tb testing.TB, s *storecache.Store, n int) {
	tb.Helper()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- s.CommitDecision(context.Background(), newCommit("lane-m", "txn-"+strconv.Itoa(i), tokenID(100_000+i), gateway.ModeOnline, 1000))
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			tb.Fatalf("CommitDecision: %v", err)
		}
	}
}

// rawUpdate changes a closed store's file through bbolt directly.
func rawUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestOpen_SchemaNewer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, storecache.SchemaVersion+1)
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), v)
	})
	before, _ := os.ReadFile(path)

	s, err = openStore(path)
	if err == nil {
		s.Close(context.Background())
		t.Fatal("Open of a newer schema: got no error")
	}
	wantContains(t, err, path, fmt.Sprintf("schema version %d is newer", storecache.SchemaVersion+1), fmt.Sprintf("(%d)", storecache.SchemaVersion))
	wantKept(t, path, before)
}

func TestOpen_ForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("widgets"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	before, _ := os.ReadFile(path)

	s, err := openStore(path)
	if err == nil {
		s.Close(context.Background())
		t.Fatal("Open of another program's bbolt file: got no error")
	}
	if !errors.Is(err, storecache.ErrNotStore) {
		t.Errorf("Open: got %v, want ErrNotStore", err)
	}
	wantKept(t, path, before)
}

func TestOpen_ReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOffline, 1200))
	if _, err := s.SaveDocument(ctx, gateway.DocumentKeyset, 3, []byte("keyset-3")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	t.Run("Missing", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "missing.db")
		if s, err := openReadOnly(missing, time.Second); err == nil {
			s.Close(context.Background())
			t.Fatal("OpenReadOnly of a missing file: got no error")
		}
		if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("OpenReadOnly created %s (stat: %v)", missing, err)
		}
	})

	ro, err := openReadOnly(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close(context.Background())
	// Two readers may share the file.
	ro2, err := openReadOnly(path, time.Second)
	if err != nil {
		t.Fatalf("second OpenReadOnly: %v", err)
	}
	ro2.Close(context.Background())

	t.Run("Reads", func(t *testing.T) {
		if d, err := ro.LookupDecision(ctx, gateway.IdempotencyKey{Lane: "lane-1", POSTxnID: "txn-1"}); err != nil || d == nil {
			t.Errorf("LookupDecision: got %v, %v, want the decision", d, err)
		}
		if st := outboxStats(t, ro); st.Depth != 1 || st.OfflineExposure != 1200 {
			t.Errorf("OutboxStats: got %+v, want depth 1, exposure 1200", st)
		}
		if ids := settlementIDs(t, ro); len(ids) != 1 {
			t.Errorf("PendingSettlements: got %q, want one", ids)
		}
		if raw, v, err := ro.LoadDocument(ctx, gateway.DocumentKeyset); err != nil || v != 3 || string(raw) != "keyset-3" {
			t.Errorf("LoadDocument: got %q v%d (%v), want keyset-3 v3", raw, v, err)
		}
		if n, err := ro.VerifyAudit(ctx); err != nil || n != 1 {
			t.Errorf("VerifyAudit: got %d, %v, want 1, nil", n, err)
		}
		if err := ro.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
	})
	t.Run("ErrReadOnly", func(t *testing.T) {
		key := gateway.IdempotencyKey{Lane: "lane-1", POSTxnID: "txn-1"}
		rev := gateway.Reversal{ID: "stl-rev", Amount: 1200, Currency: "JPY"}
		stl := &gateway.Settlement{ID: "stl-rev", Kind: gateway.SettlementReversal}
		_, _, revErr := ro.CommitReversal(ctx, key, rev, stl, gateway.AuditEntry{})
		_, saveErr := ro.SaveDocument(ctx, gateway.DocumentKeyset, 4, []byte("keyset-4"))
		_, pruneErr := ro.PruneSpent(ctx, t0.Add(time.Hour))
		for name, err := range map[string]error{
			"CommitDecision": ro.CommitDecision(ctx, newCommit("lane-1", "txn-2", tokenID(2), gateway.ModeOnline, 1)),
			"CommitReversal": revErr,
			"AckSettlements": ro.AckSettlements(ctx, []gateway.SettlementAck{{ID: "stl-lane-1-txn-1", Status: gateway.SettlementAccepted}}),
			"SaveDocument":   saveErr,
			"PruneSpent":     pruneErr,
		} {
			if !errors.Is(err, storecache.ErrReadOnly) {
				t.Errorf("%s: got %v, want ErrReadOnly", name, err)
			}
		}
	})
}

func TestStore_Close(t *testing.T) {
	s, err := openStore(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	ctx := context.Background()
	if err := s.CommitDecision(ctx, newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOnline, 1)); !errors.Is(err, storecache.ErrClosed) {
		t.Errorf("CommitDecision after Close: got %v, want ErrClosed", err)
	}
	if _, err := s.LookupDecision(ctx, gateway.IdempotencyKey{Lane: "lane-1", POSTxnID: "txn-1"}); !errors.Is(err, storecache.ErrClosed) {
		t.Errorf("LookupDecision after Close: got %v, want ErrClosed", err)
	}
}

// A store used before Open says so, touches no file, and closes quietly.
func TestStore_NotOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := storecache.NewStore(path)
	if err := s.CommitDecision(ctx, newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOnline, 1)); !errors.Is(err, storecache.ErrNotOpen) {
		t.Errorf("CommitDecision before Open: got %v, want ErrNotOpen", err)
	}
	if _, err := s.LookupDecision(ctx, gateway.IdempotencyKey{Lane: "lane-1", POSTxnID: "txn-1"}); !errors.Is(err, storecache.ErrNotOpen) {
		t.Errorf("LookupDecision before Open: got %v, want ErrNotOpen", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close before Open: got %v, want nil", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a store never opened left a file behind (stat: %v)", err)
	}
}

// A Close whose context ends while a commit is being committed returns the
// context's error and leaves the file open; the commit lands, and a later
// Close closes the file.
func TestStore_Close_ContextEnds(t *testing.T) {
	ctx := context.Background()
	s, g := MustOpenGatedStore(t)
	c := newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOnline, 100)
	committed := make(chan error, 1)
	go func() { committed <- s.CommitDecision(ctx, c) }()
	g.WaitEntered(t)

	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Close(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a commit running and its context ended: got %v, want context.Canceled", err)
	}
	if _, err := s.LookupDecision(ctx, c.Key); err != nil {
		t.Errorf("LookupDecision after a Close that gave up: got %v, want the file still open", err)
	}
	g.Release()
	if err := <-committed; err != nil {
		t.Fatalf("the commit taken before Close: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.LookupDecision(ctx, c.Key); !errors.Is(err, storecache.ErrClosed) {
		t.Errorf("LookupDecision after Close: got %v, want ErrClosed", err)
	}
}

func TestStore_Close_WhileCommitting(t *testing.T) {
	// Every commit racing with Close either committed (and is on disk
	// after a reopen) or failed with ErrClosed (and is not).
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	commits := make([]*gateway.DecisionCommit, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		commits[i] = newCommit("lane-1", fmt.Sprintf("txn-%02d", i), tokenID(i), gateway.ModeOnline, 100)
		wg.Go(func() { errs[i] = s.CommitDecision(ctx, commits[i]) })
		if i == n/2 {
			wg.Go(func() {
				if err := s.Close(context.Background()); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
	}
	wg.Wait()

	s = MustOpenStoreAt(t, path)
	committed := 0
	for i, err := range errs {
		d, lerr := s.LookupDecision(ctx, commits[i].Key)
		if lerr != nil {
			t.Fatal(lerr)
		}
		switch {
		case err == nil && d == nil:
			t.Errorf("commit %d returned nil but is not stored", i)
		case err == nil:
			committed++
		case !errors.Is(err, storecache.ErrClosed):
			t.Errorf("commit %d: got %v, want nil or ErrClosed", i, err)
		case d != nil:
			t.Errorf("commit %d returned ErrClosed but is stored", i)
		}
	}
	if got, err := s.VerifyAudit(ctx); err != nil || got != uint64(committed) {
		t.Errorf("VerifyAudit: got %d, %v, want %d, nil", got, err, committed)
	}
	t.Logf("%d of %d commits made it before Close", committed, n)
}
