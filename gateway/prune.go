package gateway

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"storegate/internal/loop"
)

// Pruner defaults.
const (
	// DefaultPruneInterval is how often a Pruner prunes.
	DefaultPruneInterval = time.Minute
	// DefaultSpentMargin is how long past its expiry and the clock skew
	// allowance a spent token id is kept: the hour of margin keeps ids well
	// past any clock step.
	DefaultSpentMargin = time.Hour
)

// Pruner keeps the store small: every Interval it forgets spent token ids
// long past their expiry (Gateway.PruneSpent) and limit counter buckets older
// than every window in force (Gateway.PruneCounters). Neither changes a
// decision: an expired token is refused as expired, and no window counts an
// old bucket. Create it with NewPruner, set its exported fields, then call
// Run.
type Pruner struct {
	// Gateway is the gateway whose store is pruned.
	Gateway *Gateway
	// Interval is the time between prunes; NewPruner sets
	// DefaultPruneInterval, and zero means it too.
	Interval time.Duration
	// SpentMargin is passed to Gateway.PruneSpent; NewPruner sets
	// DefaultSpentMargin, and zero means it too.
	SpentMargin time.Duration
	// Logger receives failures and what was pruned; NewPruner sets one that
	// discards them.
	Logger *slog.Logger
}

// NewPruner returns a pruner of g's store with the default settings.
func NewPruner(g *Gateway) *Pruner {
	return &Pruner{Gateway: g, Interval: DefaultPruneInterval, SpentMargin: DefaultSpentMargin, Logger: slog.New(slog.DiscardHandler)}
}

// Run prunes every Interval until ctx ends. A failed prune is logged and
// tried again at the next tick.
func (p *Pruner) Run(ctx context.Context) {
	interval := p.Interval
	if interval <= 0 {
		interval = DefaultPruneInterval
	}
	loop.Every(ctx, interval, func(ctx context.Context) { p.Prune(ctx) })
}

// Prune prunes once and returns how many spent token ids and counter
// buckets it forgot. A failure of one step does not keep the other from
// running; the error joins both failures, each of which is also logged.
func (p *Pruner) Prune(ctx context.Context) (spent, buckets int, err error) {
	logger := p.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	margin := p.SpentMargin
	if margin <= 0 {
		margin = DefaultSpentMargin
	}
	spent, serr := p.Gateway.PruneSpent(ctx, margin)
	if serr != nil {
		logger.Error("prune spent tokens", "err", serr)
	} else if spent > 0 {
		logger.Debug("pruned spent tokens", "count", spent)
	}
	buckets, cerr := p.Gateway.PruneCounters(ctx)
	if cerr != nil {
		logger.Error("prune limit counters", "err", cerr)
	} else if buckets > 0 {
		logger.Debug("pruned limit counter buckets", "count", buckets)
	}
	return spent, buckets, errors.Join(serr, cerr)
}

// PruneSpent forgets spent token ids whose expiry, plus the clock skew
// allowance and margin, lies in the past: such tokens are refused as expired
// anyway.
func (g *Gateway) PruneSpent(ctx context.Context, margin time.Duration) (int, error) {
	skew := g.Verifier.Skew
	if skew <= 0 {
		skew = DefaultClockSkew
	}
	return g.Store.PruneSpent(ctx, g.Now().Add(-skew-margin))
}

// PruneCounters forgets counter buckets older than the longest window in
// force (plus one bucket): no check counts them any more. A window
// lengthened later counts only the charges still held.
func (g *Gateway) PruneCounters(ctx context.Context) (int, error) {
	cutoff := WindowStart(g.Now(), g.Policy().longestWindow()) - int64(CounterBucket/time.Second)
	return g.Store.PruneCounters(ctx, cutoff)
}
