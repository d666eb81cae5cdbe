// Package lazyfs is a FUSE file system for power-cut tests, after Jepsen's
// LazyFS: it passes every operation through to a backing folder, keeps an
// image of what a real disk would have made durable, and on a power cut lays
// the backing folder back to that image, so that whatever was never synced is
// gone.
//
// What is durable, and when:
//
//	a file's data and size (write, truncate,   fsync or fdatasync of that file
//	fallocate)
//	a name in a folder (create, mkdir, link,   fsync of that folder
//	symlink, unlink, rmdir, rename)
//	a new folder's own entries                 fsync of the new folder (its
//	                                           parent's fsync makes it exist,
//	                                           empty)
//
// This is the strict reading of POSIX and of fsync(2) ("calling fsync() does
// not necessarily ensure that the entry in the directory containing the file
// has also reached disk"): a file created and synced, in a folder never synced,
// is lost; a rename onto a file is undone unless the folder is synced after it.
// A rename between two folders is durable per folder: a cut after syncing only
// the target leaves the file under both names, as a file system without a
// journal may. Permission bits survive a cut; owners, times and extended
// attributes are not modelled (after a cut every file belongs to the user
// that runs the file system).
//
// A process that is killed without a power cut loses nothing: the kernel keeps
// its writes. So does this file system: every write reaches the backing folder
// at once (there is no write-back cache), and the kernel's page cache for the
// mount stays coherent with it, so a file read through mmap (bbolt maps its
// file and writes it with pwrite) sees every write, synced or not, while the
// file system is mounted. Only Cut loses anything. FUSE passthrough is turned
// off, since it would send reads and writes to the backing file behind the
// file system's back.
//
// A power cut is Cut, then Restart. Cut is the instant the power goes: from then
// on no change reaches the disk; every later write, sync or folder change
// waits, and fails with EIO once Restart begins. The processes that used the
// mount must then be killed (SIGKILL) before Restart: a process that was
// waiting on the file system in the kernel cannot die until Restart answers it,
// and Restart cannot unmount until they are gone. Restart unmounts, so that the
// kernel forgets every cached page, lays the backing folder back to the
// durable image and mounts again. A torn cut (Cut with a random source) keeps a
// random subset of the unsynced pages, as a disk that had written some of them
// back; the draws come from the caller's source, in a fixed order (by file,
// then by page), so a seed replays the same choice for the same unsynced pages.
//
// It is test tooling: it must never be imported by a binary that ships, and it
// never touches anything but its backing folder, its image folder and its
// mount point. Mounting needs /dev/fuse and either root (it mounts directly)
// or fusermount3 from Debian's fuse3 package; Probe says whether this machine
// can.
package lazyfs
