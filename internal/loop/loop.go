package loop

import (
	"context"
	"time"
)

// Every calls fn every interval, the first time one interval from now, until
// ctx ends; then it returns. A call that takes longer than interval delays
// the next, and ticks missed meanwhile are dropped, as time.Ticker drops
// them. interval must be positive (time.NewTicker panics otherwise): callers
// put their defaults in first.
func Every(ctx context.Context, interval time.Duration, fn func(ctx context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}
