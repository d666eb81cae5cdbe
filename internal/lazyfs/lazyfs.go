package lazyfs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// pageSize is the unit in which unsynced data is tracked, kept and lost.
const pageSize = 4096

// unmountWait bounds how long Restart and Close wait for the processes that
// used the mount to let go of it.
const unmountWait = 20 * time.Second

// Stats counts what the file system did since New.
type Stats struct {
	// Cuts counts the power cuts.
	Cuts int
	// PagesLost counts the pages written since their file's last sync that a
	// cut undid; PagesKept those a torn cut kept.
	PagesLost, PagesKept int
	// EntriesUndone counts the folder entries (a name added, removed or
	// pointed at another file) that a cut undid because their folder was not
	// synced after the change.
	EntriesUndone int
	// FileSyncs and DirSyncs count fsync and fdatasync calls on files and on
	// folders.
	FileSyncs, DirSyncs int
}

// FS is a lazy file system over a backing folder. Its methods are safe for
// concurrent use; the FUSE operations take one lock, so changes are applied
// one at a time.
type FS struct {
	backing string
	image   string

	mu sync.Mutex
	// down is set from Cut until Restart: changes wait on released, which
	// Restart closes.
	down     bool
	released chan struct{}

	// inodes are the backing folder's files and folders by inode number.
	inodes map[uint64]*inode
	// dirty holds every inode with changes since its last sync, including
	// files no longer in any folder but still open.
	dirty  map[*inode]struct{}
	nextID uint64
	// dirs is the durable namespace: each folder's durable entries by the
	// folder's id. A file's durable content is the file named by its id in
	// the image folder (none: empty).
	dirs map[uint64]map[string]dentry

	server     *fuse.Server
	mountpoint string
	indexed    bool
	stats      Stats
}

// rootID is the durable id of the backing folder itself.
const rootID = 1

// inode is one file or folder of the backing folder.
type inode struct {
	// id names it in the durable image; it survives a cut, the inode number
	// does not.
	id  uint64
	dir bool
	// pages are the pages changed since the last sync of the file: written,
	// allocated, or cut off by a truncate. resized is set when its size
	// changed since then.
	pages   map[int64]struct{}
	resized bool
	// src reads the backing file while it is dirty; durable is its content
	// file in the image folder, once opened.
	src     *os.File
	durable *os.File
}

// dentry is a durable folder entry.
type dentry struct {
	id     uint64
	mode   uint32 // type and permission bits, as in stat(2)
	target string // a symbolic link's target
}

// New returns a lazy file system that serves the folder backing, whose present
// contents are taken as durable. It keeps the durable image in the folder
// image, which it creates and which must be empty: the two must not be inside
// each other. New mounts nothing; Mount does.
func New(backing, image string) (*FS, error) {
	fi, err := os.Stat(backing)
	if err != nil {
		return nil, fmt.Errorf("lazyfs: backing folder: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("lazyfs: backing folder %s is not a folder", backing)
	}
	if err := os.MkdirAll(image, 0o700); err != nil {
		return nil, fmt.Errorf("lazyfs: image folder: %w", err)
	}
	if ents, err := os.ReadDir(image); err != nil || len(ents) > 0 {
		return nil, fmt.Errorf("lazyfs: image folder %s must be empty (%d entries, %v)", image, len(ents), err)
	}
	b, err := filepath.Abs(backing)
	if err != nil {
		return nil, err
	}
	return &FS{
		backing: filepath.Clean(b),
		image:   image,
		inodes:  make(map[uint64]*inode),
		dirty:   make(map[*inode]struct{}),
		dirs:    make(map[uint64]map[string]dentry),
		nextID:  rootID + 1,
	}, nil
}

// Mount mounts the file system on the folder mountpoint and serves it until
// Close. The first mount takes the backing folder's contents as durable.
func (f *FS) Mount(mountpoint string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.server != nil {
		return errors.New("lazyfs: already mounted")
	}
	if !f.indexed {
		if err := f.index(); err != nil {
			return fmt.Errorf("lazyfs: take the backing folder as durable: %w", err)
		}
		f.indexed = true
	}
	return f.mount(mountpoint)
}

// mount serves the backing folder on mountpoint; f.mu is held.
func (f *FS) mount(mountpoint string) error {
	lb, err := fs.NewLoopbackRoot(f.backing)
	if err != nil {
		return fmt.Errorf("lazyfs: %w", err)
	}
	loop := lb.(*fs.LoopbackNode)
	root := &node{LoopbackNode: loop, fs: f}
	loop.RootData.RootNode = root
	sec := time.Second
	server, err := fs.Mount(mountpoint, root, &fs.Options{
		EntryTimeout: &sec,
		AttrTimeout:  &sec,
		MountOptions: fuse.MountOptions{
			FsName: "lazyfs:" + f.backing,
			Name:   "lazyfs",
			// As root, mount with mount(2): fusermount3 may be missing.
			DirectMount: true,
			// Passthrough would read and write the backing files without
			// asking: no write could be tracked. Every change passes through
			// the kernel, which keeps its page cache coherent by itself, so
			// invalidating it when a file's times change would only cost.
			DisabledCapabilities: fuse.CAP_PASSTHROUGH | fuse.CAP_AUTO_INVAL_DATA,
		},
	})
	if err != nil {
		return fmt.Errorf("lazyfs: mount %s: %w", mountpoint, err)
	}
	f.server, f.mountpoint = server, mountpoint
	return nil
}

// Cut cuts the power. Every change made before it that was not synced is
// lost at Restart, but for the pages a torn cut keeps: with tear set, each
// unsynced page is kept or lost by a draw from it. From Cut on, every change
// to the file system (a write, a sync, a folder change) waits until Restart and
// then fails with EIO; reads still work. The processes that use the mount must
// be sent SIGKILL after Cut and before Restart.
func (f *FS) Cut(tear *rand.Rand) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("lazyfs: the power is already cut")
	}
	f.down, f.released = true, make(chan struct{})
	f.stats.Cuts++
	return f.tear(tear)
}

// Restart brings the power back after Cut: the changes that waited fail, the
// file system is unmounted once no process holds it (every process that used
// it must have been killed), the backing folder is laid back to what was
// durable, and the file system is mounted again where it was.
func (f *FS) Restart() error {
	f.mu.Lock()
	if !f.down {
		f.mu.Unlock()
		return errors.New("lazyfs: Restart without Cut")
	}
	close(f.released)
	mountpoint := f.mountpoint
	f.mu.Unlock()

	if err := f.unmount(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.rebuild(); err != nil {
		return fmt.Errorf("lazyfs: lay the backing folder back to what was durable: %w", err)
	}
	f.down = false
	if mountpoint == "" {
		return nil
	}
	return f.mount(mountpoint)
}

// Close unmounts the file system, as a clean shutdown: the backing folder
// keeps everything written to it. After a Cut, the changes that waited fail
// first. Close waits for the processes that hold the mount to let go of it.
func (f *FS) Close() error {
	f.mu.Lock()
	if f.down {
		select {
		case <-f.released:
		default:
			close(f.released)
		}
	}
	f.mu.Unlock()
	err := f.unmount()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeFiles()
	return err
}

// Stats returns what the file system has done so far.
func (f *FS) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// unmount unmounts, retrying while the mount is busy: a process that was
// killed lets go of its files only once it has died.
func (f *FS) unmount() error {
	f.mu.Lock()
	server := f.server
	f.mu.Unlock()
	if server == nil {
		return nil
	}
	deadline := time.Now().Add(unmountWait)
	for {
		err := server.Unmount()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lazyfs: unmount %s: %w (is a process still using it?)", f.mountpoint, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	server.Wait()
	f.mu.Lock()
	f.server = nil
	f.mu.Unlock()
	return nil
}

// lock takes f.mu for a change. After a Cut it waits until Restart instead
// and reports false: the change must not be made.
func (f *FS) lock() bool {
	f.mu.Lock()
	if !f.down {
		return true
	}
	released := f.released
	f.mu.Unlock()
	<-released
	return false
}

// register records a new inode of the backing folder; f.mu is held.
func (f *FS) register(ino uint64, dir bool) *inode {
	in := &inode{id: f.nextID, dir: dir}
	f.nextID++
	f.inodes[ino] = in
	return in
}

// inodeAt returns the inode of the backing path p, registering one this file
// system has not seen, whose whole content then counts as unsynced; f.mu is
// held.
func (f *FS) inodeAt(p string, st *syscall.Stat_t) (*inode, error) {
	if st == nil {
		st = new(syscall.Stat_t)
		if err := syscall.Lstat(p, st); err != nil {
			return nil, err
		}
	}
	if in := f.inodes[st.Ino]; in != nil {
		return in, nil
	}
	in := f.register(st.Ino, st.Mode&syscall.S_IFMT == syscall.S_IFDIR)
	if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		if err := f.resized(in, p, 0, st.Size); err != nil {
			return nil, err
		}
		if err := f.changed(in, p, 0, st.Size); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// forget drops the inode number ino after its last name went: the number may
// be given to a new file. An open file keeps its inode.
func (f *FS) forget(st *syscall.Stat_t) {
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR || st.Nlink <= 1 {
		delete(f.inodes, st.Ino)
	}
}

// openSrc gives in a descriptor to read its backing file by, from path p (a
// /proc/self/fd link for an open file, which works after an unlink too).
func (f *FS) openSrc(in *inode, p string) error {
	if in.src != nil {
		return nil
	}
	src, err := os.Open(p)
	if err != nil {
		return err
	}
	in.src = src
	return nil
}

// changed marks the bytes [off, off+n) of in as unsynced, opening in's
// descriptor from src (see openSrc) if it has none; f.mu is held. Every
// inode in f.dirty has its descriptor.
func (f *FS) changed(in *inode, src string, off, n int64) error {
	if n <= 0 {
		return nil
	}
	if err := f.openSrc(in, src); err != nil {
		return err
	}
	if in.pages == nil {
		in.pages = make(map[int64]struct{})
	}
	for p := off / pageSize; p <= (off+n-1)/pageSize; p++ {
		in.pages[p] = struct{}{}
	}
	f.dirty[in] = struct{}{}
	return nil
}

// resized records a size change of in from old to size, as changed; the
// pages a shrink cuts off count as changed.
func (f *FS) resized(in *inode, src string, old, size int64) error {
	if size == old {
		return nil
	}
	if err := f.openSrc(in, src); err != nil {
		return err
	}
	in.resized = true
	f.dirty[in] = struct{}{}
	if size < old {
		return f.changed(in, src, size, old-size)
	}
	return nil
}

// closeFiles closes every descriptor the inodes hold; f.mu is held.
func (f *FS) closeFiles() {
	seen := make(map[*inode]bool)
	for _, in := range f.inodes {
		seen[in] = true
	}
	for in := range f.dirty {
		seen[in] = true
	}
	for in := range seen {
		in.close()
	}
}

func (in *inode) close() {
	if in.src != nil {
		in.src.Close()
		in.src = nil
	}
	if in.durable != nil {
		in.durable.Close()
		in.durable = nil
	}
}

// Probe mounts a lazy file system on a temporary folder and unmounts it
// again. It returns nil when this machine can run power-cut tests, and
// otherwise why not (no /dev/fuse, not root and no fusermount3, ...).
func Probe() error {
	dir, err := os.MkdirTemp("", "lazyfs-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	backing, mnt := filepath.Join(dir, "backing"), filepath.Join(dir, "mnt")
	for _, d := range []string{backing, mnt} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	f, err := New(backing, filepath.Join(dir, "image"))
	if err != nil {
		return err
	}
	if err := f.Mount(mnt); err != nil {
		return err
	}
	return f.Close()
}
