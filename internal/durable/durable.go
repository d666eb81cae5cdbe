package durable

import (
	"fmt"
	"os"
)

// SyncDir makes the entries created or renamed in dir durable, by syncing
// the directory itself: a new file's own fsync does not write its name. It
// returns the open, sync or close error, naming dir.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
