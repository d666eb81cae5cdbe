package lazyfs_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// runChild is the test binary started as a child process: it does what, on
// the lazy file system, until it is killed.
func runChild(what string) int {
	var err error
	switch what {
	case "write":
		err = childWrite(os.Getenv("LAZYFS_TEST_FILE"))
	case "bbolt":
		err = childBbolt(os.Getenv("LAZYFS_TEST_FILE"), os.Getenv("LAZYFS_TEST_NOSYNC") != "")
	default:
		err = fmt.Errorf("unknown child %q", what)
	}
	fmt.Fprintln(os.Stderr, "child:", err)
	return 1
}

// childWrite overwrites the start of the file without syncing it, says so,
// and waits to be killed.
func childWrite(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte("UNSYNCED"), 0); err != nil {
		return err
	}
	fmt.Println("written")
	time.Sleep(time.Hour)
	return nil
}

var bucket = []byte("keys")

// childBbolt commits keys 1, 2, 3, … to a bbolt file, one transaction each,
// continuing after the largest key already there, and prints each key once
// its commit has returned: the acknowledgement a caller would hear. After
// each commit it reads the key back through bbolt's mmap of the file.
func childBbolt(path string, noSync bool) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: noSync})
	if err != nil {
		return err
	}
	// bbolt syncs the file it creates, not its name: sync the folder, as
	// storecache does.
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	var next uint64
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		if k, _ := b.Cursor().Last(); k != nil {
			next = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	value := make([]byte, 700) // several keys a page, and page splits
	for {
		next++
		key := binary.BigEndian.AppendUint64(nil, next)
		binary.BigEndian.PutUint64(value, next)
		if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, value) }); err != nil {
			return err
		}
		err := db.View(func(tx *bolt.Tx) error {
			if v := tx.Bucket(bucket).Get(key); len(v) != len(value) || binary.BigEndian.Uint64(v) != next {
				return fmt.Errorf("key %d read back through mmap as %x", next, v)
			}
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Println(next)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
