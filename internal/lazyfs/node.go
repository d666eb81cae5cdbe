package lazyfs

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is a file or folder of the mount: go-fuse's loopback node, with every
// change recorded for the durable image.
type node struct {
	*fs.LoopbackNode
	fs *FS
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeTmpfiler       = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
	_ fs.NodeSetxattrer     = (*node)(nil)
	_ fs.NodeRemovexattrer  = (*node)(nil)
)

// WrapChild makes every node of the tree a lazyfs node.
func (n *node) WrapChild(ctx context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), fs: n.fs}
}

// backingPath is the node's path in the backing folder.
func (n *node) backingPath() string {
	return filepath.Join(n.fs.backing, n.Path(nil))
}

// Open opens the file and wraps its handle, so that its writes and syncs are
// seen.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.Open(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	n.fs.mu.Lock()
	defer n.fs.mu.Unlock()
	h, err := n.fs.wrap(fh, nil)
	if err != nil {
		fh.(fs.FileReleaser).Release(ctx)
		return nil, 0, fs.ToErrno(err)
	}
	return h, fuseFlags, 0
}

// Create creates (or opens, when it exists) a file: a new inode, whose name
// is durable once the folder is synced.
func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if !n.fs.lock() {
		return nil, nil, 0, syscall.EIO
	}
	defer n.fs.mu.Unlock()
	var before syscall.Stat_t
	existed := syscall.Lstat(filepath.Join(n.backingPath(), name), &before) == nil
	ch, fh, fuseFlags, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	var st syscall.Stat_t
	fd := fdOf(fh)
	if err := syscall.Fstat(fd, &st); err != nil {
		fh.(fs.FileReleaser).Release(ctx)
		return nil, nil, 0, fs.ToErrno(err)
	}
	var in *inode
	if !existed || before.Ino != st.Ino {
		in = n.fs.register(st.Ino, false)
	}
	h, err := n.fs.wrap(fh, in)
	if err == nil && existed && before.Ino == st.Ino && flags&syscall.O_TRUNC != 0 {
		err = n.fs.resized(h.in, procFd(fd), before.Size, 0)
	}
	if err != nil {
		fh.(fs.FileReleaser).Release(ctx)
		return nil, nil, 0, fs.ToErrno(err)
	}
	return ch, h, fuseFlags, 0
}

// OpendirHandle opens a folder with a handle whose fsync makes its entries
// durable.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ds, fuseFlags, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{ds: ds, n: n}, fuseFlags, 0
}

// Setattr records a size change (truncate) as a change to the file's data.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if !n.fs.lock() {
		return syscall.EIO
	}
	defer n.fs.mu.Unlock()
	size, sized := in.GetSize()
	if !sized {
		return n.LoopbackNode.Setattr(ctx, f, in, out)
	}
	var (
		ino *inode
		src string
		st  syscall.Stat_t
		err error
	)
	if h, ok := f.(*fileHandle); ok {
		ino, src = h.in, procFd(h.fd)
		err = syscall.Fstat(h.fd, &st)
	} else {
		src = n.backingPath()
		if err = syscall.Lstat(src, &st); err == nil {
			ino, err = n.fs.inodeAt(src, &st)
		}
	}
	if err != nil {
		return fs.ToErrno(err)
	}
	errno := n.LoopbackNode.Setattr(ctx, f, in, out)
	if errno == 0 {
		errno = fs.ToErrno(n.fs.resized(ino, src, st.Size, int64(size)))
	}
	return errno
}

// Mkdir makes a folder, durable once its parent is synced.
func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.created(name, true, func() (*fs.Inode, syscall.Errno) { return n.LoopbackNode.Mkdir(ctx, name, mode, out) })
}

// Mknod makes a special file, durable once its folder is synced.
func (n *node) Mknod(ctx context.Context, name string, mode, rdev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.created(name, false, func() (*fs.Inode, syscall.Errno) { return n.LoopbackNode.Mknod(ctx, name, mode, rdev, out) })
}

// Symlink makes a symbolic link, durable once its folder is synced.
func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return n.created(name, false, func() (*fs.Inode, syscall.Errno) { return n.LoopbackNode.Symlink(ctx, target, name, out) })
}

// created runs op, which makes the new inode name in the folder, and registers
// it.
func (n *node) created(name string, dir bool, op func() (*fs.Inode, syscall.Errno)) (*fs.Inode, syscall.Errno) {
	if !n.fs.lock() {
		return nil, syscall.EIO
	}
	defer n.fs.mu.Unlock()
	ch, errno := op()
	if errno != 0 {
		return nil, errno
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(n.backingPath(), name), &st); err != nil {
		return nil, fs.ToErrno(err)
	}
	n.fs.register(st.Ino, dir)
	return ch, 0
}

// Link adds a name for a file, durable once the folder is synced.
func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if !n.fs.lock() {
		return nil, syscall.EIO
	}
	defer n.fs.mu.Unlock()
	return n.LoopbackNode.Link(ctx, target, name, out)
}

// Unlink removes a name, for good once the folder is synced.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.removed(name, func() syscall.Errno { return n.LoopbackNode.Unlink(ctx, name) })
}

// Rmdir removes a folder, for good once its parent is synced.
func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.removed(name, func() syscall.Errno { return n.LoopbackNode.Rmdir(ctx, name) })
}

func (n *node) removed(name string, op func() syscall.Errno) syscall.Errno {
	if !n.fs.lock() {
		return syscall.EIO
	}
	defer n.fs.mu.Unlock()
	var st syscall.Stat_t
	known := syscall.Lstat(filepath.Join(n.backingPath(), name), &st) == nil
	errno := op()
	if errno == 0 && known {
		n.fs.forget(&st)
	}
	return errno
}

// Rename renames, for good once both folders are synced.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if !n.fs.lock() {
		return syscall.EIO
	}
	defer n.fs.mu.Unlock()
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	var src, dst syscall.Stat_t
	srcErr := syscall.Lstat(filepath.Join(n.backingPath(), name), &src)
	replaced := syscall.Lstat(filepath.Join(np.backingPath(), newName), &dst) == nil &&
		srcErr == nil && src.Ino != dst.Ino && flags&unixRenameExchange == 0
	errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	if errno == 0 && replaced {
		n.fs.forget(&dst)
	}
	return errno
}

// unixRenameExchange is renameat2's RENAME_EXCHANGE: both names survive.
const unixRenameExchange = 1 << 1

// Tmpfile is not supported: an O_TMPFILE file has no name to make durable.
func (n *node) Tmpfile(ctx context.Context, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EOPNOTSUPP
}

// CopyFileRange is left to the kernel, which then copies with reads and
// writes that this file system sees.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut, length, flags uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOSYS
}

// Setxattr waits after a cut like every change.
func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if !n.fs.lock() {
		return syscall.EIO
	}
	defer n.fs.mu.Unlock()
	return n.LoopbackNode.Setxattr(ctx, attr, data, flags)
}

// Removexattr waits after a cut like every change.
func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if !n.fs.lock() {
		return syscall.EIO
	}
	defer n.fs.mu.Unlock()
	return n.LoopbackNode.Removexattr(ctx, attr)
}

// fdOf returns the backing descriptor of a loopback file handle.
func fdOf(fh fs.FileHandle) int {
	fd, _ := fh.(fs.FilePassthroughFder).PassthroughFd()
	return fd
}

// wrap wraps a loopback file handle; in is its inode, or nil to look it up
// by the descriptor's inode number; f.mu is held.
func (f *FS) wrap(fh fs.FileHandle, in *inode) (*fileHandle, error) {
	lf, ok := fh.(*fs.LoopbackFile)
	if !ok {
		return nil, fmt.Errorf("lazyfs: unexpected file handle %T", fh)
	}
	fd := fdOf(fh)
	if in == nil {
		var st syscall.Stat_t
		if err := syscall.Fstat(fd, &st); err != nil {
			return nil, err
		}
		var err error
		if in, err = f.inodeAt(procFd(fd), &st); err != nil {
			return nil, err
		}
	}
	return &fileHandle{lf: lf, fd: fd, in: in, fs: f}, nil
}

// procFd names an open descriptor of this process, which opens the same file
// even once it has no name.
func procFd(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

// fileHandle is an open file: go-fuse's loopback file, with its writes and
// syncs recorded. It deliberately does not offer PassthroughFd.
type fileHandle struct {
	lf *fs.LoopbackFile
	fd int
	in *inode
	fs *FS
}

var (
	_ fs.FileReader    = (*fileHandle)(nil)
	_ fs.FileWriter    = (*fileHandle)(nil)
	_ fs.FileWritever  = (*fileHandle)(nil)
	_ fs.FileFsyncer   = (*fileHandle)(nil)
	_ fs.FileFlusher   = (*fileHandle)(nil)
	_ fs.FileReleaser  = (*fileHandle)(nil)
	_ fs.FileGetattrer = (*fileHandle)(nil)
	_ fs.FileSetattrer = (*fileHandle)(nil)
	_ fs.FileLseeker   = (*fileHandle)(nil)
	_ fs.FileAllocater = (*fileHandle)(nil)
	_ fs.FileStatxer   = (*fileHandle)(nil)
)

// Read reads through to the backing file: what was written, synced or not.
func (h *fileHandle) Read(ctx context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	return h.lf.Read(ctx, buf, off)
}

// Write writes through to the backing file and marks the pages unsynced.
func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if !h.fs.lock() {
		return 0, syscall.EIO
	}
	defer h.fs.mu.Unlock()
	n, errno := h.lf.Write(ctx, data, off)
	if err := h.fs.changed(h.in, procFd(h.fd), off, int64(n)); err != nil && errno == 0 {
		errno = fs.ToErrno(err)
	}
	return n, errno
}

// Writev writes the slices one after another, as Write.
func (h *fileHandle) Writev(ctx context.Context, data [][]byte, off int64) (uint32, syscall.Errno) {
	var total uint32
	for _, d := range data {
		n, errno := h.Write(ctx, d, off)
		total += n
		off += int64(n)
		if errno != 0 || int(n) < len(d) {
			return total, errno
		}
	}
	return total, 0
}

// Fsync makes the file's data and size durable (fsync and fdatasync alike).
// It does not make the file's name durable: that takes a sync of its folder.
func (h *fileHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if !h.fs.lock() {
		return syscall.EIO
	}
	defer h.fs.mu.Unlock()
	h.fs.stats.FileSyncs++
	return fs.ToErrno(h.fs.syncFile(h.in))
}

// Allocate allocates through to the backing file and marks the range
// unsynced.
func (h *fileHandle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if !h.fs.lock() {
		return syscall.EIO
	}
	defer h.fs.mu.Unlock()
	var before, after syscall.Stat_t
	if err := syscall.Fstat(h.fd, &before); err != nil {
		return fs.ToErrno(err)
	}
	if errno := h.lf.Allocate(ctx, off, size, mode); errno != 0 {
		return errno
	}
	src := procFd(h.fd)
	err := syscall.Fstat(h.fd, &after)
	if err == nil {
		err = h.fs.resized(h.in, src, before.Size, after.Size)
	}
	if err == nil {
		err = h.fs.changed(h.in, src, int64(off), int64(size))
	}
	return fs.ToErrno(err)
}

// Flush passes close(2) through.
func (h *fileHandle) Flush(ctx context.Context) syscall.Errno { return h.lf.Flush(ctx) }

// Release closes the backing descriptor.
func (h *fileHandle) Release(ctx context.Context) syscall.Errno { return h.lf.Release(ctx) }

// Getattr reads the backing file's attributes.
func (h *fileHandle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return h.lf.Getattr(ctx, out)
}

// Setattr passes through; node.Setattr, which calls it, records a size
// change.
func (h *fileHandle) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return h.lf.Setattr(ctx, in, out)
}

// Statx reads the backing file's attributes.
func (h *fileHandle) Statx(ctx context.Context, flags, mask uint32, out *fuse.StatxOut) syscall.Errno {
	return h.lf.Statx(ctx, flags, mask, out)
}

// Lseek passes SEEK_DATA and SEEK_HOLE through.
func (h *fileHandle) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return h.lf.Lseek(ctx, off, whence)
}

// dirHandle is an open folder: go-fuse's loopback folder stream, whose fsync
// makes the folder's entries durable.
type dirHandle struct {
	ds fs.FileHandle
	n  *node
}

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
	_ fs.FileFsyncdirer   = (*dirHandle)(nil)
)

// Readdirent reads the backing folder.
func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	return d.ds.(fs.FileReaddirenter).Readdirent(ctx)
}

// Seekdir seeks in the backing folder.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	return d.ds.(fs.FileSeekdirer).Seekdir(ctx, off)
}

// Releasedir closes the backing folder.
func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {
	d.ds.(fs.FileReleasedirer).Releasedir(ctx, flags)
}

// Fsyncdir makes the folder's entries durable, as they are now.
func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	f := d.n.fs
	if !f.lock() {
		return syscall.EIO
	}
	defer f.mu.Unlock()
	f.stats.DirSyncs++
	p := d.n.backingPath()
	in, err := f.inodeAt(p, nil)
	if err != nil {
		return fs.ToErrno(err)
	}
	_, err = f.persistEntries(p, in)
	return fs.ToErrno(err)
}
