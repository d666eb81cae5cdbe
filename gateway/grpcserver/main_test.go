package grpcserver_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"storegate/central"
	"storegate/central/boltstore"
	"storegate/central/storetest"
	"storegate/hqkeys"
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
	st := storecache.NewStore(filepath.Join(dir, "storegate.db"))
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Check(); err != nil {
			t.Errorf("bbolt check: %v", err)
		}
		st.Close(context.Background())
	})
	return st
}

// mustInitKeys makes HQ's keys in dir/keys.
func mustInitKeys(t *testing.T, dir string) *hqkeys.Keys {
	t.Helper()
	keys, err := hqkeys.Init(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// mustOpenLedger opens HQ's ledger file in dir and, at cleanup, checks that
// its books add up and closes it.
func mustOpenLedger(t *testing.T, dir string) *central.Ledger {
	t.Helper()
	return storetest.MustOpenLedger(t, boltstore.New(filepath.Join(dir, "central.db")))
}

// mustOpenPublisher opens HQ's publisher over ledger, trusting root, and
// closes it at cleanup.
func mustOpenPublisher(t *testing.T, ledger *central.Ledger, root ed25519.PublicKey) *central.Publisher {
	t.Helper()
	pub := central.NewPublisher(ledger, root)
	if err := pub.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close(context.Background()) })
	return pub
}
