package lazyfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// The durable image. Invariant: a file's backing content equals its content
// file in the image (f.image/<id>; none is empty) but for the pages in its
// inode's pages set and its size when resized is set. So a sync copies only
// those pages into the image, and a cut copies only those back.

// imagePath is the content file of the durable id.
func (f *FS) imagePath(id uint64) string {
	return filepath.Join(f.image, strconv.FormatUint(id, 10))
}

// durableFile opens in's content file in the image, creating it; f.mu is
// held.
func (f *FS) durableFile(in *inode) (*os.File, error) {
	if in.durable == nil {
		d, err := os.OpenFile(f.imagePath(in.id), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		in.durable = d
	}
	return in.durable, nil
}

// index takes the backing folder as it is as durable: every folder's entries,
// every file's content; f.mu is held.
func (f *FS) index() error {
	var st syscall.Stat_t
	if err := syscall.Stat(f.backing, &st); err != nil {
		return err
	}
	root := &inode{id: rootID, dir: true}
	f.inodes[st.Ino] = root
	var walk func(p string, dir *inode) error
	walk = func(p string, dir *inode) error {
		ents, err := f.persistEntries(p, dir)
		if err != nil {
			return err
		}
		for name, d := range ents {
			child := filepath.Join(p, name)
			switch d.mode & syscall.S_IFMT {
			case syscall.S_IFDIR:
				in, err := f.inodeAt(child, nil)
				if err != nil {
					return err
				}
				if err := walk(child, in); err != nil {
					return err
				}
			case syscall.S_IFREG:
				in, err := f.inodeAt(child, nil)
				if err != nil {
					return err
				}
				if err := f.syncFile(in); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(f.backing, root)
}

// syncFile makes in's content durable: its unsynced pages and its size;
// f.mu is held.
func (f *FS) syncFile(in *inode) error {
	if _, ok := f.dirty[in]; !ok {
		return nil
	}
	size, d, err := f.files(in)
	if err != nil {
		return err
	}
	if err := d.Truncate(size); err != nil {
		return err
	}
	buf := make([]byte, pageSize)
	for p := range in.pages {
		if err := copyPage(d, in.src, p, size, buf); err != nil {
			return err
		}
	}
	in.pages, in.resized = nil, false
	delete(f.dirty, in)
	return nil
}

// files returns the size of in's backing file and its content file in the
// image; f.mu is held and in is dirty.
func (f *FS) files(in *inode) (int64, *os.File, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(in.src.Fd()), &st); err != nil {
		return 0, nil, err
	}
	d, err := f.durableFile(in)
	return st.Size, d, err
}

// copyPage copies page p, up to size and up to the end of src, from src to
// dst.
func copyPage(dst, src *os.File, p, size int64, buf []byte) error {
	off := p * pageSize
	if off >= size {
		return nil
	}
	n, err := src.ReadAt(buf[:min(pageSize, size-off)], off)
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	_, err = dst.WriteAt(buf[:n], off)
	return err
}

// persistEntries makes the entries of the backing folder p, whose inode is
// dir, its durable entries, and returns them; f.mu is held. A new sub-folder
// becomes durable empty: its own entries become durable when it is synced.
func (f *FS) persistEntries(p string, dir *inode) (map[string]dentry, error) {
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	m := make(map[string]dentry, len(ents))
	for _, e := range ents {
		child := filepath.Join(p, e.Name())
		var st syscall.Stat_t
		if err := syscall.Lstat(child, &st); err != nil {
			return nil, err
		}
		in, err := f.inodeAt(child, &st)
		if err != nil {
			return nil, err
		}
		d := dentry{id: in.id, mode: st.Mode}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFLNK:
			if d.target, err = os.Readlink(child); err != nil {
				return nil, err
			}
		case syscall.S_IFDIR:
			if f.dirs[in.id] == nil {
				f.dirs[in.id] = make(map[string]dentry)
			}
		}
		m[e.Name()] = d
	}
	f.dirs[dir.id] = m
	return m, nil
}

// tear applies a cut to the image: with tear set, each unsynced page inside
// its file is kept, copied into the image, or lost by a draw from tear; f.mu
// is held.
func (f *FS) tear(tear *rand.Rand) error {
	dirty := make([]*inode, 0, len(f.dirty))
	for in := range f.dirty {
		dirty = append(dirty, in)
	}
	slices.SortFunc(dirty, func(a, b *inode) int { return compareUint(a.id, b.id) })
	buf := make([]byte, pageSize)
	for _, in := range dirty {
		pages := make([]int64, 0, len(in.pages))
		for p := range in.pages {
			pages = append(pages, p)
		}
		slices.Sort(pages)
		if tear == nil || len(pages) == 0 {
			f.stats.PagesLost += len(pages)
			continue
		}
		live, d, err := f.files(in)
		if err != nil {
			return err
		}
		dst, err := d.Stat()
		if err != nil {
			return err
		}
		size := dst.Size()
		for _, p := range pages {
			if p*pageSize >= live || tear.IntN(2) == 0 {
				f.stats.PagesLost++
				continue
			}
			if end := min((p+1)*pageSize, live); end > size {
				size = end
				if err := d.Truncate(size); err != nil {
					return err
				}
			}
			if err := copyPage(d, in.src, p, size, buf); err != nil {
				return err
			}
			f.stats.PagesKept++
		}
	}
	return nil
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rebuild lays the backing folder back to the durable image after a cut,
// with the file system unmounted; f.mu is held. A file still in the backing
// folder is linked into the new tree and has its unsynced pages copied back
// from the image; a durable file no folder names any more (unlinked since its
// folder's last sync) is copied whole from the image.
func (f *FS) rebuild() error {
	old := filepath.Join(filepath.Dir(f.backing), "."+filepath.Base(f.backing)+".cut")
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	fi, err := os.Stat(f.backing)
	if err != nil {
		return err
	}
	if err := os.Rename(f.backing, old); err != nil {
		return err
	}
	if err := os.Mkdir(f.backing, fi.Mode().Perm()); err != nil {
		return err
	}

	// Where each durable file is in the old tree, and which names the cut
	// undoes.
	oldPath := make(map[uint64]string)
	var undone func(p string, id uint64) error
	undone = func(p string, id uint64) error {
		ents, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		dur := f.dirs[id]
		seen := make(map[string]bool, len(ents))
		for _, e := range ents {
			child := filepath.Join(p, e.Name())
			var st syscall.Stat_t
			if err := syscall.Lstat(child, &st); err != nil {
				return err
			}
			in := f.inodes[st.Ino]
			if in != nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
				if _, ok := oldPath[in.id]; !ok {
					oldPath[in.id] = child
				}
			}
			seen[e.Name()] = true
			d, ok := dur[e.Name()]
			if !ok || in == nil || d.id != in.id {
				f.stats.EntriesUndone++
			}
			if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
				sub := uint64(0)
				if ok && in != nil && d.id == in.id {
					sub = in.id
				}
				if err := undone(child, sub); err != nil {
					return err
				}
			}
		}
		for name := range dur {
			if !seen[name] {
				f.stats.EntriesUndone++
			}
		}
		return nil
	}
	if err := undone(old, rootID); err != nil {
		return err
	}
	// The old inodes, by durable id, for their unsynced pages.
	byID := make(map[uint64]*inode, len(f.inodes))
	for _, in := range f.inodes {
		byID[in.id] = in
	}

	inodes := make(map[uint64]*inode)
	placed := make(map[uint64]string)
	registerAt := func(p string, id uint64, dir bool) error {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		if inodes[st.Ino] == nil {
			inodes[st.Ino] = &inode{id: id, dir: dir}
		}
		return nil
	}
	if err := registerAt(f.backing, rootID, true); err != nil {
		return err
	}
	visited := map[uint64]bool{rootID: true}
	var place func(p string, id uint64) error
	place = func(p string, id uint64) error {
		dur := f.dirs[id]
		names := make([]string, 0, len(dur))
		for name := range dur {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			d := dur[name]
			child := filepath.Join(p, name)
			perm := os.FileMode(d.mode & 0o7777)
			switch d.mode & syscall.S_IFMT {
			case syscall.S_IFDIR:
				if visited[d.id] {
					continue // a folder renamed between two folders, each synced
				}
				visited[d.id] = true
				if err := os.Mkdir(child, perm); err != nil {
					return err
				}
				if err := registerAt(child, d.id, true); err != nil {
					return err
				}
				if err := place(child, d.id); err != nil {
					return err
				}
			case syscall.S_IFLNK:
				if err := os.Symlink(d.target, child); err != nil {
					return err
				}
			case syscall.S_IFREG:
				if err := f.placeFile(child, d.id, perm, placed, oldPath, byID); err != nil {
					return err
				}
				placed[d.id] = child
				if err := registerAt(child, d.id, false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := place(f.backing, rootID); err != nil {
		return err
	}
	if err := os.RemoveAll(old); err != nil {
		return err
	}

	f.closeFiles()
	f.inodes = inodes
	f.dirty = make(map[*inode]struct{})
	for id := range f.dirs {
		if !visited[id] {
			delete(f.dirs, id)
		}
	}
	// Content files of ids no folder names any more.
	ents, err := os.ReadDir(f.image)
	if err != nil {
		return err
	}
	for _, e := range ents {
		id, err := strconv.ParseUint(e.Name(), 10, 64)
		if _, ok := placed[id]; err == nil && !ok {
			if err := os.Remove(filepath.Join(f.image, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// placeFile puts the durable file id at p in the new tree: a hard link to
// where it already is in the new tree or in the old one (then its unsynced
// pages are copied back from the image), or a copy of the image.
func (f *FS) placeFile(p string, id uint64, perm os.FileMode, placed, oldPath map[uint64]string, byID map[uint64]*inode) error {
	if q, ok := placed[id]; ok {
		return os.Link(q, p)
	}
	if q, ok := oldPath[id]; ok {
		if err := os.Link(q, p); err != nil {
			return err
		}
		in := byID[id]
		if _, dirty := f.dirty[in]; !dirty {
			return nil
		}
		return f.restore(in, p)
	}
	dst, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	src, err := os.Open(f.imagePath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return dst.Close()
	}
	if err != nil {
		dst.Close()
		return err
	}
	defer src.Close()
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// restore copies in's unsynced pages and size back from the image into the
// backing file p.
func (f *FS) restore(in *inode, p string) error {
	dst, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	d, err := f.durableFile(in)
	if err != nil {
		dst.Close()
		return err
	}
	fi, err := d.Stat()
	if err != nil {
		dst.Close()
		return err
	}
	if err := dst.Truncate(fi.Size()); err != nil {
		dst.Close()
		return err
	}
	buf := make([]byte, pageSize)
	for pg := range in.pages {
		if err := copyPage(dst, d, pg, fi.Size(), buf); err != nil {
			dst.Close()
			return fmt.Errorf("restore %s: %w", p, err)
		}
	}
	return dst.Close()
}
