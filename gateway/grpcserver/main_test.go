package grpcserver_test

import (
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"storegate/storecache"
)

// TestMain fails the package's tests if any goroutine outlives them: gRPC
// servers, client connections, streams and the store's committer each start
// goroutines that must end when the test closes them.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mustOpenStore opens a store file in dir and, at cleanup, checks the bbolt
// file and closes it.
func mustOpenStore(t *testing.T, dir string) *storecache.Store {
	t.Helper()
	st, err := storecache.Open(filepath.Join(dir, "storegate.db"), storecache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Errorf("bbolt check: %v", err)
		}
		st.Close()
	})
	return st
}
