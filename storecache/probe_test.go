package storecache_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"storegate/storecache"
)

func TestStore_Probe(t *testing.T) {
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		s := MustOpenStore(t)
		for range 3 {
			if err := s.Probe(ctx); err != nil {
				t.Fatalf("Probe: %v", err)
			}
		}
	})
	t.Run("ErrClosed", func(t *testing.T) {
		s, err := openStore(filepath.Join(t.TempDir(), "store.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Probe(ctx); !errors.Is(err, storecache.ErrClosed) {
			t.Fatalf("Probe on a closed store: %v, want ErrClosed", err)
		}
	})
	t.Run("ErrReadOnly", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "store.db")
		s, err := openStore(path)
		if err != nil {
			t.Fatal(err)
		}
		s.Close(context.Background())
		ro, err := openReadOnly(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close(context.Background())
		if err := ro.Probe(ctx); !errors.Is(err, storecache.ErrReadOnly) {
			t.Fatalf("Probe on a read-only store: %v, want ErrReadOnly", err)
		}
	})
	t.Run("ErrCancelled", func(t *testing.T) {
		s := MustOpenStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.Probe(cctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Probe with a cancelled context: %v, want context.Canceled", err)
		}
	})
}
