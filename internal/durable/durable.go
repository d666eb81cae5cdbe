// Package durable holds the one file-system step the stores need beyond what
// os gives: making a directory's entries survive a power cut.
//
// bbolt and os.WriteFile sync a file's data, never the directory entry that
// names it, so a file created or renamed just before a power cut can vanish
// with everything in it (make powertest found exactly that for HQ's ledger).
// It must never be used as a substitute for syncing the file itself.
package durable

import (
	"fmt"
	"os"
)

// SyncDir fsyncs the directory dir, so that entries created, renamed or
// removed in it are durable. The error names the directory.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
