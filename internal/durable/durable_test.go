package durable_test

import (
	"os"
	"path/filepath"
	"testing"

	"storegate/internal/durable"
)

func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := durable.SyncDir(dir); err != nil {
		t.Errorf("SyncDir of a directory: got %v, want nil", err)
	}
	t.Run("ErrMissing", func(t *testing.T) {
		missing := filepath.Join(dir, "missing")
		if err := durable.SyncDir(missing); err == nil {
			t.Errorf("SyncDir(%s): got nil, want an error", missing)
		}
	})
}
