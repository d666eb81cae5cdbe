//go:build linux

package groupcommit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"

	"storegate/internal/diskfault"
	"storegate/internal/groupcommit"
)

// The disk stops taking writes under a batch: its transaction fails, every
// request of the batch hears a *TxError, nothing is written, and once the
// disk takes writes again the same committer works and the file is sound.
func TestCommitter_DiskRefusesWrites(t *testing.T) {
	if !diskfault.InChild(t) {
		return
	}
	db := MustOpenDB(t, nil)
	if err := db.Update(put("before")); err != nil {
		t.Fatal(err)
	}
	c, g := MustOpenGated(t, db, nil)

	const n = 8
	var (
		wg    sync.WaitGroup
		first error
		errs  = make([]error, n-1)
		fns   []func(*bolt.Tx) error
		want  = map[string]bool{"before": true, "held": false}
	)
	hold(t, c, g, &wg, &first, put("held"))
	for i := range n - 1 {
		k := fmt.Sprintf("key-%d", i)
		fns, want[k] = append(fns, put(k)), false
	}
	queue(t, c, &wg, errs, fns...)
	// Only the two meta pages lie below the limit: every data page the
	// transaction writes fails.
	restore := diskfault.LimitFileSize(t, uint64(2*os.Getpagesize()))
	g.Release()
	wg.Wait()
	restore()

	for i, err := range append([]error{first}, errs...) {
		var te *groupcommit.TxError
		if !errors.As(err, &te) || te.Requests != n || !errors.Is(err, syscall.EFBIG) {
			t.Errorf("commit %d: got %v, want a *TxError of %d requests wrapping EFBIG", i, err, n)
		}
	}
	wantStored(t, db, want)
	if st := c.Stats(); st.FailedTransactions != 1 || st.Committed != 0 {
		t.Errorf("Stats: got %+v, want 1 failed transaction and nothing committed", st)
	}

	if err := c.Commit(context.Background(), put("after")); err != nil {
		t.Fatalf("Commit after the disk recovered: %v", err)
	}
	wantStored(t, db, map[string]bool{"after": true})
}
