package storecache_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
	"storegate/storecache"
)

func auditKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

func TestStore_VerifyAudit(t *testing.T) {
	ctx := context.Background()

	t.Run("Empty", func(t *testing.T) {
		s := MustOpenStore(t)
		if n, err := s.VerifyAudit(ctx); err != nil || n != 0 {
			t.Errorf("VerifyAudit of an empty log: got %d, %v, want 0, nil", n, err)
		}
	})

	// tampered writes three records (amounts 1001, 1002, 1003), closes the
	// store, changes its file with fn, and reopens it without the cleanup
	// Check (the file is damaged on purpose).
	tampered := func(t *testing.T, fn func(audit *bolt.Bucket) error) *storecache.Store {
		t.Helper()
		path := filepath.Join(t.TempDir(), "store.db")
		s, err := openStore(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 3; i++ {
			mustCommit(t, s, newCommit("lane-1", fmt.Sprintf("txn-%d", i), tokenID(i), gateway.ModeOnline, int64(1000+i)))
		}
		if n, err := s.VerifyAudit(ctx); err != nil || n != 3 {
			t.Fatalf("VerifyAudit before tampering: got %d, %v, want 3, nil", n, err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		rawUpdate(t, path, func(tx *bolt.Tx) error { return fn(tx.Bucket([]byte("audit"))) })
		s, err = openStore(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(context.Background()) })
		return s
	}
	// replace swaps one byte string for another of the same length in the
	// record stored under seq.
	replace := func(seq uint64, old, new string) func(*bolt.Bucket) error {
		return func(audit *bolt.Bucket) error {
			v := audit.Get(auditKey(seq))
			if !bytes.Contains(v, []byte(old)) {
				return fmt.Errorf("record %d does not hold %q: %s", seq, old, v)
			}
			return audit.Put(auditKey(seq), bytes.Replace(v, []byte(old), []byte(new), 1))
		}
	}
	wantBroken := func(t *testing.T, s *storecache.Store, subs ...string) {
		t.Helper()
		_, err := s.VerifyAudit(ctx)
		wantCode(t, err, gateway.EINVALID)
		wantContains(t, err, subs...)
	}

	t.Run("OK", func(t *testing.T) {
		s := tampered(t, func(*bolt.Bucket) error { return nil })
		if n, err := s.VerifyAudit(ctx); err != nil || n != 3 {
			t.Errorf("VerifyAudit: got %d, %v, want 3, nil", n, err)
		}
	})
	t.Run("ChangedByte", func(t *testing.T) {
		s := tampered(t, replace(2, `"amount":1002`, `"amount":9002`))
		wantBroken(t, s, "audit record 3", "chain broken")
	})
	t.Run("ChangedLastRecord", func(t *testing.T) {
		s := tampered(t, replace(3, `"amount":1003`, `"amount":9003`))
		wantBroken(t, s, "head is record 3")
	})
	t.Run("TruncatedLastRecord", func(t *testing.T) {
		s := tampered(t, func(audit *bolt.Bucket) error {
			v := audit.Get(auditKey(3))
			return audit.Put(auditKey(3), bytes.Clone(v[:len(v)/2]))
		})
		wantBroken(t, s, "audit record 3", "undecodable")
	})
	t.Run("RemovedLastRecord", func(t *testing.T) {
		s := tampered(t, func(audit *bolt.Bucket) error { return audit.Delete(auditKey(3)) })
		wantBroken(t, s, "chain ends at record 2", "head is record 3")
	})
	t.Run("Swapped", func(t *testing.T) {
		s := tampered(t, func(audit *bolt.Bucket) error {
			one, two := bytes.Clone(audit.Get(auditKey(1))), bytes.Clone(audit.Get(auditKey(2)))
			if err := audit.Put(auditKey(1), two); err != nil {
				return err
			}
			return audit.Put(auditKey(2), one)
		})
		wantBroken(t, s, "audit record 1", "sequence number is 2")
	})
}

func TestStore_ScanAudit(t *testing.T) {
	ctx := context.Background()
	s := MustOpenStore(t)
	const n = 700 // more than one read chunk
	commitMany(t, s, n)

	t.Run("From", func(t *testing.T) {
		want := uint64(250)
		err := s.ScanAudit(ctx, 250, func(seq uint64, raw []byte) error {
			if seq != want {
				return fmt.Errorf("got seq %d, want %d", seq, want)
			}
			var rec struct{ Seq uint64 }
			if err := json.Unmarshal(raw, &rec); err != nil || rec.Seq != seq {
				return fmt.Errorf("record under %d: seq %d (%v)", seq, rec.Seq, err)
			}
			want++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if want != n+1 {
			t.Errorf("last seq scanned: got %d, want %d", want-1, n)
		}
		if got, err := s.VerifyAudit(ctx); err != nil || got != n {
			t.Errorf("VerifyAudit: got %d, %v, want %d, nil", got, err, n)
		}
	})

	t.Run("StopsOnError", func(t *testing.T) {
		errStop := errors.New("stop")
		calls := 0
		err := s.ScanAudit(ctx, 1, func(seq uint64, raw []byte) error {
			calls++
			if seq == 3 {
				return errStop
			}
			return nil
		})
		if !errors.Is(err, errStop) || calls != 3 {
			t.Errorf("ScanAudit stopped by fn: got %v after %d calls, want errStop after 3", err, calls)
		}
	})

	t.Run("ContextDone", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		calls := 0
		err := s.ScanAudit(cctx, 1, func(uint64, []byte) error {
			calls++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) || calls != 1 {
			t.Errorf("ScanAudit with a cancelled context: got %v after %d calls, want context.Canceled after 1", err, calls)
		}
	})
}

func TestStore_Check(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		s := MustOpenStore(t)
		mustCommit(t, s, newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOffline, 100))
		if err := s.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
	})
	t.Run("Inconsistent", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "store.db")
		s, err := openStore(path)
		if err != nil {
			t.Fatal(err)
		}
		mustCommit(t, s, newCommit("lane-1", "txn-1", tokenID(1), gateway.ModeOffline, 100))
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		rawUpdate(t, path, func(tx *bolt.Tx) error {
			if err := tx.Bucket([]byte("meta")).Put([]byte("outbox_depth"), binary.BigEndian.AppendUint64(nil, 5)); err != nil {
				return err
			}
			return tx.Bucket([]byte("spent_by_exp")).Delete(append(binary.BigEndian.AppendUint64(nil, uint64(t0.Unix()+300)), tokenID(1)...))
		})
		s, err = openStore(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		err = s.Check()
		wantContains(t, err, "outbox_depth is 5, the outbox holds 1", "missing from the expiry index")
	})
}
