package boltstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"storegate/central"
	"storegate/central/boltstore"
	"storegate/central/storetest"
	"storegate/gateway"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newStorage makes a ledger file in t's temporary folder. At cleanup, once
// the suite has closed its handles, it runs bbolt's consistency check over
// the file.
func newStorage(t testing.TB) func() central.Storage {
	path := filepath.Join(t.TempDir(), "central.db")
	t.Cleanup(func() {
		if _, err := os.Stat(path); err != nil {
			return
		}
		s := boltstore.New(path)
		if err := s.Open(context.Background()); err != nil {
			t.Errorf("reopen for the check: %v", err)
			return
		}
		if err := s.Check(); err != nil {
			t.Errorf("bbolt Check: %v", err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return func() central.Storage { return boltstore.New(path) }
}

func TestStorage_Contract(t *testing.T) {
	storetest.Run(t, newStorage)
}

func TestOpen_Locked(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "central.db")
	first := boltstore.New(path)
	if err := first.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer first.Close(ctx)

	second := boltstore.New(path)
	second.Timeout = 100 * time.Millisecond
	err := second.Open(ctx)
	if err == nil {
		second.Close(ctx)
		t.Fatal("second Open of a locked file: got no error")
	}
	if got := gateway.ErrorCode(err); got != gateway.EUNAVAILABLE {
		t.Errorf("code: got %q (%v), want %q", got, err, gateway.EUNAVAILABLE)
	}
	if !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q: want it to name the file and say it is locked", err)
	}
}

// Concurrent authorizations share write transactions: the group committer
// commits fewer transactions than it was given.
func TestUpdate_GroupCommit(t *testing.T) {
	s := boltstore.New(filepath.Join(t.TempDir(), "central.db"))
	f := storetest.NewFixture(t, func(testing.TB) func() central.Storage { return func() central.Storage { return s } })
	f.MustAccount(t, "acct-1", 1_000_000)
	before := s.Stats()
	done := make(chan struct{})
	const n = 64
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			f.MustApprove(t, storetest.Sale(f.Mint(t, "acct-1"), storetest.Txn(i), 1))
		}()
	}
	for range n {
		<-done
	}
	st := s.Stats()
	if got := st.Committed - before.Committed; got != n {
		t.Errorf("committed: got %d, want %d", got, n)
	}
	t.Logf("%d authorizations in %d transactions (largest batch %d)", n, st.Transactions-before.Transactions, st.LargestBatch)
}

func BenchmarkIntake(b *testing.B) {
	storetest.BenchmarkIntake(b, newStorage)
}
