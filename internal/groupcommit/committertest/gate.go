package committertest

import (
	"sync"
	"testing"
	"time"
)

// Timeout bounds every wait of the package, so that a broken committer
// fails its test instead of hanging it.
const Timeout = 10 * time.Second

// Gate holds the committer in its BeforeCommit hook the first time the hook
// is called (after the committer has taken the first request of a batch,
// before it collects the rest), until Release.
type Gate struct {
	once        sync.Once
	entered     chan struct{}
	releaseOnce sync.Once
	released    chan struct{}
}

// NewGate returns a closed gate. Set its Hook as the committer's
// BeforeCommit, and register Release with tb.Cleanup before the committer's
// own cleanup, so that a failing test cannot hang at Close.
func NewGate() *Gate {
	return &Gate{entered: make(chan struct{}), released: make(chan struct{})}
}

// Hook is the committer's BeforeCommit: the first call waits for Release,
// the others return at once.
func (g *Gate) Hook() {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.released
	}
}

// Release lets the committer go on. It is safe to call more than once.
func (g *Gate) Release() { g.releaseOnce.Do(func() { close(g.released) }) }

// WaitEntered waits until the committer is held in the gate.
func (g *Gate) WaitEntered(tb testing.TB) {
	tb.Helper()
	select {
	case <-g.entered:
	case <-time.After(Timeout):
		tb.Fatal("the committer never reached BeforeCommit")
	}
}

// WaitAtLeast waits until get returns want or more, polling it, and fails
// the test naming what it waited for when Timeout passes first.
func WaitAtLeast(tb testing.TB, what string, want int, get func() int) {
	tb.Helper()
	deadline := time.Now().Add(Timeout)
	for get() < want {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: got %d, want at least %d", what, get(), want)
		}
		time.Sleep(time.Millisecond)
	}
}
