package lazyfs_test

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"storegate/internal/lazyfs"
)

// childEnv names what a child process of the test binary is started to do
// (see child_test.go).
const childEnv = "LAZYFS_TEST_CHILD"

func TestMain(m *testing.M) {
	if what := os.Getenv(childEnv); what != "" {
		os.Exit(runChild(what))
	}
	goleak.VerifyTestMain(m)
}

var (
	probeOnce sync.Once
	probeErr  error
)

// mnt is a mounted lazy file system for one test.
type mnt struct {
	fs      *lazyfs.FS
	dir     string
	backing string
}

// mount mounts a lazy file system over an empty backing folder, or skips the
// test where FUSE cannot be mounted. It is closed at cleanup.
func mount(t *testing.T) *mnt {
	t.Helper()
	probeOnce.Do(func() { probeErr = lazyfs.Probe() })
	if probeErr != nil {
		t.Skipf("FUSE cannot be mounted here (%v): the lazy file system needs /dev/fuse and root, or fusermount3 (Debian's fuse3)", probeErr)
	}
	base := t.TempDir()
	backing, dir := filepath.Join(base, "backing"), filepath.Join(base, "mnt")
	for _, d := range []string{backing, dir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	f, err := lazyfs.New(backing, filepath.Join(base, "image"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Mount(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return &mnt{fs: f, dir: dir, backing: backing}
}

func (m *mnt) path(name string) string { return filepath.Join(m.dir, name) }

// cut cuts the power and brings it back; nothing may use the mount.
func (m *mnt) cut(t *testing.T, tear *rand.Rand) {
	t.Helper()
	if err := m.fs.Cut(tear); err != nil {
		t.Fatal(err)
	}
	if err := m.fs.Restart(); err != nil {
		t.Fatal(err)
	}
}

// write writes data at offset 0 of the file name, creating it, and syncs it
// when sync is set.
func (m *mnt) write(t *testing.T, name string, data []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(m.path(name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

// syncDir fsyncs the folder name ("" for the root).
func (m *mnt) syncDir(t *testing.T, name string) {
	t.Helper()
	d, err := os.Open(m.path(name))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

// durable writes a file, syncs it and its folder.
func (m *mnt) durable(t *testing.T, name string, data []byte) {
	t.Helper()
	m.write(t, name, data, true)
	m.syncDir(t, filepath.Dir(name))
}

// read returns the file's content, or nil when it does not exist.
func (m *mnt) read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(m.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCut_SyncedDataSurvives(t *testing.T) {
	m := mount(t)
	m.durable(t, "a", []byte("synced"))
	m.cut(t, nil)
	if got := m.read(t, "a"); string(got) != "synced" {
		t.Errorf("after the cut: got %q, want %q", got, "synced")
	}
}

func TestCut_UnsyncedWriteIsLost(t *testing.T) {
	m := mount(t)
	m.durable(t, "a", []byte("version 1"))
	m.write(t, "a", []byte("VERSION 2, longer"), false)
	if got := m.read(t, "a"); string(got) != "VERSION 2, longer" {
		t.Fatalf("before the cut: got %q, want the unsynced write", got)
	}
	m.cut(t, nil)
	if got := m.read(t, "a"); string(got) != "version 1" {
		t.Errorf("after the cut: got %q, want %q", got, "version 1")
	}
	if st := m.fs.Stats(); st.PagesLost != 1 || st.PagesKept != 0 {
		t.Errorf("stats: %d pages lost, %d kept; want 1 and 0", st.PagesLost, st.PagesKept)
	}
}

func TestCut_UnsyncedTruncateIsUndone(t *testing.T) {
	m := mount(t)
	data := bytes.Repeat([]byte("d"), 3*4096+10)
	m.durable(t, "a", data)
	if err := os.Truncate(m.path("a"), 100); err != nil {
		t.Fatal(err)
	}
	m.cut(t, nil)
	if got := m.read(t, "a"); !bytes.Equal(got, data) {
		t.Errorf("after the cut: %d bytes, want the %d synced", len(got), len(data))
	}

	// Grown and synced, as bbolt grows its file: the size is durable.
	f, err := os.OpenFile(m.path("a"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 << 20); err != nil { // and grown again, unsynced
		t.Fatal(err)
	}
	f.Close()
	m.cut(t, nil)
	fi, err := os.Stat(m.path("a"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 1<<20 {
		t.Errorf("after the cut: size %d, want the synced %d", fi.Size(), 1<<20)
	}
}

func TestCut_UnsyncedCreateIsUndone(t *testing.T) {
	t.Run("FolderNotSynced", func(t *testing.T) {
		m := mount(t)
		m.write(t, "a", []byte("data synced, name not"), true)
		m.cut(t, nil)
		if got := m.read(t, "a"); got != nil {
			t.Errorf("after the cut: the file holds %q, want no file", got)
		}
		if st := m.fs.Stats(); st.EntriesUndone != 1 {
			t.Errorf("%d entries undone, want 1", st.EntriesUndone)
		}
	})
	t.Run("FolderSynced", func(t *testing.T) {
		m := mount(t)
		m.write(t, "a", []byte("both synced"), true)
		m.syncDir(t, "")
		m.cut(t, nil)
		if got := m.read(t, "a"); string(got) != "both synced" {
			t.Errorf("after the cut: got %q, want %q", got, "both synced")
		}
	})
	t.Run("NameSyncedDataNot", func(t *testing.T) {
		m := mount(t)
		m.write(t, "a", []byte("name synced, data not"), false)
		m.syncDir(t, "")
		m.cut(t, nil)
		got, err := os.ReadFile(m.path("a"))
		if err != nil || len(got) != 0 {
			t.Errorf("after the cut: got %q, %v; want an empty file", got, err)
		}
	})
}

func TestCut_UnsyncedRenameIsUndone(t *testing.T) {
	// The atomic replace: write a temporary file, sync it, rename it over
	// the target. Without a sync of the folder the rename is not durable.
	replace := func(t *testing.T, m *mnt) {
		m.durable(t, "target", []byte("old"))
		m.write(t, "tmp", []byte("new"), true)
		if err := os.Rename(m.path("tmp"), m.path("target")); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("FolderNotSynced", func(t *testing.T) {
		m := mount(t)
		replace(t, m)
		m.cut(t, nil)
		if got := m.read(t, "target"); string(got) != "old" {
			t.Errorf("target after the cut: got %q, want %q", got, "old")
		}
		if got := m.read(t, "tmp"); got != nil {
			t.Errorf("tmp after the cut: got %q, want no file (its creation was not synced either)", got)
		}
	})
	t.Run("FolderSynced", func(t *testing.T) {
		m := mount(t)
		replace(t, m)
		m.syncDir(t, "")
		m.cut(t, nil)
		if got := m.read(t, "target"); string(got) != "new" {
			t.Errorf("target after the cut: got %q, want %q", got, "new")
		}
	})
}

func TestCut_UnsyncedUnlinkAndLinkAreUndone(t *testing.T) {
	m := mount(t)
	m.durable(t, "a", []byte("keep me"))
	if err := os.Link(m.path("a"), m.path("b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(m.path("a")); err != nil {
		t.Fatal(err)
	}
	m.cut(t, nil)
	if got := m.read(t, "a"); string(got) != "keep me" {
		t.Errorf("a after the cut: got %q, want %q", got, "keep me")
	}
	if got := m.read(t, "b"); got != nil {
		t.Errorf("b after the cut: got %q, want no file", got)
	}
}

func TestCut_UnsyncedMkdirIsUndone(t *testing.T) {
	m := mount(t)
	if err := os.Mkdir(m.path("sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	m.durable(t, "sub/a", []byte("in sub")) // syncs sub, not the root
	m.cut(t, nil)
	if _, err := os.Stat(m.path("sub")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("sub after the cut: %v, want it gone", err)
	}

	if err := os.Mkdir(m.path("sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	m.durable(t, "sub/a", []byte("in sub"))
	m.syncDir(t, "")
	m.cut(t, nil)
	if got := m.read(t, "sub/a"); string(got) != "in sub" {
		t.Errorf("sub/a after the cut: got %q, want %q", got, "in sub")
	}
}

// TestCut_TornKeepsASubset writes 64 pages without syncing them and cuts with
// a seeded source: some pages survive, not all, the same ones for the same
// seed.
func TestCut_TornKeepsASubset(t *testing.T) {
	const pages = 64
	run := func(seed uint64) []bool {
		m := mount(t)
		m.durable(t, "a", make([]byte, pages*4096))
		m.write(t, "a", bytes.Repeat([]byte("x"), pages*4096), false)
		m.cut(t, rand.New(rand.NewPCG(seed, 0)))
		got := m.read(t, "a")
		if len(got) != pages*4096 {
			t.Fatalf("after the cut: %d bytes, want %d", len(got), pages*4096)
		}
		kept := make([]bool, pages)
		n := 0
		for p := range pages {
			page := got[p*4096 : (p+1)*4096]
			switch {
			case bytes.Equal(page, bytes.Repeat([]byte("x"), 4096)):
				kept[p] = true
				n++
			case !bytes.Equal(page, make([]byte, 4096)):
				t.Fatalf("page %d is neither the synced nor the unsynced content", p)
			}
		}
		st := m.fs.Stats()
		if n == 0 || n == pages || st.PagesKept != n || st.PagesLost != pages-n {
			t.Errorf("seed %d: %d of %d pages kept (stats: %d kept, %d lost); want some, not all, as counted", seed, n, pages, st.PagesKept, st.PagesLost)
		}
		return kept
	}
	first, again := run(7), run(7)
	for p := range pages {
		if first[p] != again[p] {
			t.Fatalf("seed 7 kept page %d in one run and not in the other", p)
		}
	}
}

// TestKill_KeepsUnsyncedWrites: a process killed without a power cut loses
// nothing it wrote, as with the kernel's page cache; a cut afterwards loses
// what it never synced.
func TestKill_KeepsUnsyncedWrites(t *testing.T) {
	m := mount(t)
	m.durable(t, "a", []byte("synced....."))
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=write", "LAZYFS_TEST_FILE="+m.path("a"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "written\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if got := m.read(t, "a"); string(got) != "UNSYNCED..." {
		t.Fatalf("after the kill: got %q, want the killed process's unsynced write", got)
	}
	m.cut(t, nil)
	if got := m.read(t, "a"); string(got) != "synced....." {
		t.Errorf("after a cut: got %q, want %q", got, "synced.....")
	}
}
