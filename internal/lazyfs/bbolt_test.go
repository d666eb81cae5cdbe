package lazyfs_test

import (
	"bufio"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bboltRun is a child process committing keys to a bbolt file on the lazy
// file system (childBbolt), and the keys it acknowledged.
type bboltRun struct {
	cmd   *exec.Cmd
	acked chan uint64 // closed when the child's output ends
}

func startBbolt(t *testing.T, path string, noSync bool) *bboltRun {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=bbolt", "LAZYFS_TEST_FILE="+path)
	if noSync {
		cmd.Env = append(cmd.Env, "LAZYFS_TEST_NOSYNC=1")
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &bboltRun{cmd: cmd, acked: make(chan uint64, 1<<16)}
	go func() {
		defer close(r.acked)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			k, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				t.Errorf("child said %q", sc.Text())
				continue
			}
			r.acked <- k
		}
	}()
	return r
}

// powerCut cuts the power under the child: the file system first, then the
// process, as the power takes both at once; it returns the largest key the
// child acknowledged.
func (r *bboltRun) powerCut(t *testing.T, m *mnt, tear *rand.Rand) uint64 {
	t.Helper()
	if err := m.fs.Cut(tear); err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := m.fs.Restart(); err != nil {
		t.Fatal(err)
	}
	r.cmd.Wait()
	var last uint64
	for k := range r.acked {
		last = max(last, k)
	}
	return last
}

// checkBbolt opens the file, runs bbolt's Check and returns the keys in it,
// which must be 1 to n without a gap. It reads the backing file: a process
// must not read its own FUSE mount through mmap, since a page fault on it
// cannot be preempted and a stop of the world for the garbage collector then
// waits forever for the file system's own goroutines.
func checkBbolt(t *testing.T, path string) (n uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatalf("open after the cut: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check after the cut: %v", err)
		}
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			n++
			if got := binary.BigEndian.Uint64(k); got != n {
				t.Fatalf("key %d follows key %d", got, n-1)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBbolt_SurvivesCuts commits to bbolt on the lazy file system and cuts
// the power under it ten times, half of them torn: every acknowledged commit
// survives, and bbolt's Check passes.
func TestBbolt_SurvivesCuts(t *testing.T) {
	m := mount(t)
	path := m.path("bolt.db")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10 {
		r := startBbolt(t, path, false)
		time.Sleep(time.Duration(50+rng.IntN(150)) * time.Millisecond)
		var tear *rand.Rand
		if i%2 == 1 {
			tear = rand.New(rand.NewPCG(uint64(i), 3))
		}
		acked := r.powerCut(t, m, tear)
		if acked == 0 {
			t.Fatalf("cut %d: the child acknowledged no commit", i)
		}
		if got := checkBbolt(t, filepath.Join(m.backing, "bolt.db")); got < acked {
			t.Fatalf("cut %d: keys 1 to %d survived, but the child acknowledged %d", i, got, acked)
		}
	}
	// Whether a cut finds a commit part way (pages written, not yet
	// synced) is chance; TestBbolt_NoSyncLosesAcknowledged shows that the
	// cuts drop what bbolt did not sync.
	st := m.fs.Stats()
	if st.Cuts != 10 || st.FileSyncs == 0 {
		t.Errorf("stats %+v: want 10 cuts and syncs", st)
	}
	t.Logf("10 cuts: %+v", st)
}

// TestBbolt_NoSyncLosesAcknowledged is the same with bbolt's NoSync, which
// acknowledges a commit before it is on disk: the cuts must lose some
// acknowledged commit, or the file system is not dropping unsynced data.
func TestBbolt_NoSyncLosesAcknowledged(t *testing.T) {
	m := mount(t)
	path := m.path("bolt.db")
	for i := range 3 {
		r := startBbolt(t, path, true)
		time.Sleep(200 * time.Millisecond)
		acked := r.powerCut(t, m, nil)
		if got := checkBbolt(t, filepath.Join(m.backing, "bolt.db")); got < acked {
			t.Logf("cut %d: keys 1 to %d survived; the child acknowledged %d", i, got, acked)
			return
		}
	}
	t.Errorf("three cuts under bbolt with NoSync lost no acknowledged commit: %+v", m.fs.Stats())
}
