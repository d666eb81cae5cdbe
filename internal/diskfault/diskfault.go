//go:build linux

package diskfault

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv names the test a child process was started to run.
const childEnv = "STOREGATE_DISKFAULT_CHILD"

// InChild runs the calling top-level test again in a child process of the
// test binary and reports whether the caller is that child. The parent gets
// false after the child has ended, and fails the test with the child's
// output if the child failed; the child gets true and runs the test's body,
// where it may call LimitFileSize. The child has no test log or other files
// of the test runner open, so a write limit cannot break them.
func InChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s in a child process: %v\n%s", t.Name(), err, out)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatalf("%s did not run in the child process:\n%s", t.Name(), out)
	}
	return false
}

// LimitFileSize makes every write at or past offset n, in any file of this
// process, fail with EFBIG (RLIMIT_FSIZE; Go ignores the SIGXFSZ that comes
// with it). Files already longer keep their bytes below n. The returned
// function lifts the limit; so does the end of the test. Call it only in a
// child process (InChild).
func LimitFileSize(tb testing.TB, n uint64) (restore func()) {
	tb.Helper()
	if os.Getenv(childEnv) == "" {
		tb.Fatal("diskfault.LimitFileSize outside a child process: use InChild")
	}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		tb.Fatalf("getrlimit: %v", err)
	}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: n, Max: old.Max}); err != nil {
		tb.Fatalf("setrlimit: %v", err)
	}
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
			tb.Errorf("restore the file size limit: %v", err)
		}
	}
	tb.Cleanup(restore)
	return restore
}

// LimitProcessFileSize is LimitFileSize for another process of the same
// user, such as a daemon a test started: its writes at or past offset n fail
// with EFBIG until the returned function lifts the limit. The test's own
// process is not affected.
func LimitProcessFileSize(tb testing.TB, pid int, n uint64) (restore func()) {
	tb.Helper()
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		tb.Fatalf("prlimit %d: %v", pid, err)
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: n, Max: old.Max}, nil); err != nil {
		tb.Fatalf("prlimit %d: %v", pid, err)
	}
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		// A process that has ended needs no limit lifted.
		if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &old, nil); err != nil && !errors.Is(err, unix.ESRCH) {
			tb.Errorf("restore the file size limit of %d: %v", pid, err)
		}
	}
	tb.Cleanup(restore)
	return restore
}
