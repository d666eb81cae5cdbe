package central

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var testBucket = []byte("test")

func openTestDB(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "commit.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(testBucket)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

func put(key string) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket(testBucket).Put([]byte(key), []byte("v")) }
}

// TestGroupCommitter_FailureIsolated queues three calls while the committer
// is busy, so that they share the next transaction, and makes one of them
// fail: it gets its error and leaves nothing behind, the other two are
// committed.
func TestGroupCommitter_FailureIsolated(t *testing.T) {
	db := openTestDB(t)
	c := newGroupCommitter(db)
	defer c.close()

	busy, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = c.update(func(tx *bolt.Tx) error {
			close(busy)
			<-release
			return put("first")(tx)
		})
	})
	<-busy
	boom := errors.New("boom")
	errs := make([]error, 3)
	var txA, txB int
	fns := []func(*bolt.Tx) error{
		func(tx *bolt.Tx) error { txA = tx.ID(); return put("a")(tx) },
		func(tx *bolt.Tx) error {
			if err := put("failed")(tx); err != nil {
				return err
			}
			return boom
		},
		func(tx *bolt.Tx) error { txB = tx.ID(); return put("b")(tx) },
	}
	for i, fn := range fns {
		wg.Go(func() { errs[i] = c.update(fn) })
		// Queue them in order.
		for deadline := time.Now().Add(5 * time.Second); len(c.calls) != i+1; {
			if time.Now().After(deadline) {
				t.Fatalf("call %d was not queued", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	close(release)
	wg.Wait()

	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], boom) {
		t.Fatalf("errors: got %v, want nil, boom, nil", errs)
	}
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(testBucket)
		for key, want := range map[string]bool{"first": true, "a": true, "b": true, "failed": false} {
			if got := b.Get([]byte(key)) != nil; got != want {
				t.Errorf("key %q stored: got %v, want %v", key, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if txA != txB {
		t.Errorf("the calls queued together were committed in transactions %d and %d, want one", txA, txB)
	}
}

func TestGroupCommitter_Closed(t *testing.T) {
	db := openTestDB(t)
	c := newGroupCommitter(db)
	if err := c.update(put("a")); err != nil {
		t.Fatal(err)
	}
	c.close()
	c.close()
	if err := c.update(put("b")); !errors.Is(err, berrors.ErrDatabaseNotOpen) {
		t.Fatalf("update after close: got %v, want ErrDatabaseNotOpen", err)
	}
}
