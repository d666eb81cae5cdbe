package devices

import (
	"context"
	"math/rand/v2"
	"time"
)

// DefaultBackoffMin is the first wait before reopening a scanner that failed.
const DefaultBackoffMin = 500 * time.Millisecond

// DefaultBackoffMax caps the wait between attempts to reopen a scanner.
const DefaultBackoffMax = 5 * time.Second

// backoff yields waits that double from min up to max, each spread by ±20% so
// that the lanes of a store whose USB hub reset do not retry in lockstep.
type backoff struct {
	min, max time.Duration
	next     time.Duration
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, next: min}
}

// wait returns the next wait and doubles the one after it.
func (b *backoff) wait() time.Duration {
	d := b.next
	b.next = min(2*b.next, b.max)
	jittered := time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return min(jittered, b.max)
}

// reset starts the doubling again from min.
func (b *backoff) reset() {
	b.next = b.min
}

// sleep waits for d or until ctx is done, and reports whether the whole wait
// passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
