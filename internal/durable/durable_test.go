package durable_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"storegate/internal/durable"
)

func TestSyncDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := durable.SyncDir(dir); err != nil {
		t.Fatalf("SyncDir(%s) = %v, want nil", dir, err)
	}
	missing := filepath.Join(dir, "missing")
	err := durable.SyncDir(missing)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("SyncDir(missing) = %v, want an error naming %s", err, missing)
	}
}
