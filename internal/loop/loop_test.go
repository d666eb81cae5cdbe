package loop_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"storegate/internal/loop"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Every calls fn at each tick and returns once ctx ends.
func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	loop.Every(ctx, time.Millisecond, func(context.Context) {
		calls++
		if calls == 3 {
			cancel()
		}
	})
	if calls != 3 {
		t.Errorf("calls: got %d, want 3 (Every returns once ctx ends)", calls)
	}
	t.Run("ContextDone", func(t *testing.T) {
		ended, cancel := context.WithCancel(context.Background())
		cancel()
		loop.Every(ended, time.Hour, func(context.Context) { t.Error("fn called after ctx ended") })
	})
}
