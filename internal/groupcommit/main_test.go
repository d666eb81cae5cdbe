package groupcommit_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"storegate/internal/groupcommit"
	"storegate/internal/groupcommit/committertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testBucket = []byte("test")

// MustOpenDB opens a bbolt file in a temporary directory with a bucket
// "test". At cleanup it runs Check, failing the test on any problem, and
// closes the file.
func MustOpenDB(tb testing.TB, opts *bolt.Options) *bolt.DB {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "commit.db")
	db, err := bolt.Open(path, 0o600, opts)
	if err != nil {
		tb.Fatalf("bolt.Open(%s): %v", path, err)
	}
	tb.Cleanup(func() {
		err := db.View(func(tx *bolt.Tx) error {
			var errs []error
			for err := range tx.Check() {
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		})
		if err != nil {
			tb.Errorf("Check at cleanup: %v", err)
		}
		if err := db.Close(); err != nil {
			tb.Errorf("close the database: %v", err)
		}
	})
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(testBucket)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return db
}

// MustOpen opens a committer on db after setup has set its fields, and
// closes it at cleanup, before the database closes.
func MustOpen(tb testing.TB, db *bolt.DB, setup func(*groupcommit.Committer)) *groupcommit.Committer {
	tb.Helper()
	c := groupcommit.NewCommitter(db)
	if setup != nil {
		setup(c)
	}
	if err := c.Open(); err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return c
}

// MustOpenGated opens a committer on db that is held in a gate the first
// time it takes a request. The gate opens at the latest at cleanup, before
// the committer closes, so that a failing test cannot hang.
func MustOpenGated(tb testing.TB, db *bolt.DB, setup func(*groupcommit.Committer)) (*groupcommit.Committer, *committertest.Gate) {
	tb.Helper()
	g := committertest.NewGate()
	c := MustOpen(tb, db, func(c *groupcommit.Committer) {
		c.BeforeCommit = g.Hook
		if setup != nil {
			setup(c)
		}
	})
	tb.Cleanup(g.Release) // runs before the committer's cleanup
	return c, g
}

// waitQueued waits until n requests wait for the committer.
func waitQueued(tb testing.TB, c *groupcommit.Committer, n int) {
	tb.Helper()
	committertest.WaitAtLeast(tb, "queued requests", n, func() int { return c.Stats().Queued })
}

// waitWaiting waits until n callers wait for room in the queue.
func waitWaiting(tb testing.TB, c *groupcommit.Committer, n int) {
	tb.Helper()
	committertest.WaitAtLeast(tb, "callers waiting for room", n, func() int { return c.Stats().Waiting })
}

// put returns a function that stores key.
func put(key string) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error { return tx.Bucket(testBucket).Put([]byte(key), []byte("v")) }
}

// stored reports which of keys are in the database.
func stored(tb testing.TB, db *bolt.DB, keys ...string) map[string]bool {
	tb.Helper()
	got := make(map[string]bool, len(keys))
	err := db.View(func(tx *bolt.Tx) error {
		for _, k := range keys {
			got[k] = tx.Bucket(testBucket).Get([]byte(k)) != nil
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

// wantStored fails the test unless each key's presence is as want says.
func wantStored(tb testing.TB, db *bolt.DB, want map[string]bool) {
	tb.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	got := stored(tb, db, keys...)
	for k, w := range want {
		if got[k] != w {
			tb.Errorf("key %q stored: got %v, want %v", k, got[k], w)
		}
	}
}
