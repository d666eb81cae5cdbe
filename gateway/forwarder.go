package gateway

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Forwarder defaults.
const (
	DefaultForwardBatch      = 100
	DefaultForwardBatchWait  = 50 * time.Millisecond
	DefaultForwardInterval   = 2 * time.Second
	DefaultForwardMinBackoff = 200 * time.Millisecond
	DefaultForwardMaxBackoff = 30 * time.Second
	DefaultForwardTimeout    = 5 * time.Second
)

// Forwarder drains the outbox to the central service (DESIGN.md,
// "Settlements"): in batches bounded in size and time, in the order they were
// queued, retrying with exponential backoff and full jitter, deleting a
// record only once central has acknowledged its id. Create it with
// NewForwarder, set its exported fields, then call Run; Notify and Flush may
// be called from any goroutine.
type Forwarder struct {
	// StoreID names this store to central.
	StoreID string
	// Store holds the outbox.
	Store Store
	// Central books the settlements.
	Central Central
	// Batch is the most settlements sent in one call; NewForwarder sets
	// DefaultForwardBatch, and zero means it too.
	Batch int
	// BatchWait bounds how long a new settlement waits for others to share
	// its call: the forwarder sends once Batch settlements were queued or
	// BatchWait after the first of them, whichever comes first.
	// NewForwarder sets DefaultForwardBatchWait, and zero means it too;
	// negative sends at once.
	BatchWait time.Duration
	// Interval is how often the outbox is looked at when nothing wakes the
	// forwarder; NewForwarder sets DefaultForwardInterval.
	Interval time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed call;
	// NewForwarder sets DefaultForwardMinBackoff and
	// DefaultForwardMaxBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one call to central; NewForwarder sets
	// DefaultForwardTimeout.
	Timeout time.Duration
	// Logger receives failed rounds and disputed settlements; NewForwarder
	// sets one that discards them.
	Logger *slog.Logger
	// Contact, when set, is told whether each call reached central.
	Contact func(ok bool)

	once sync.Once
	wake chan struct{}
	// full is signalled when Batch settlements were queued since the last
	// flush; queued counts them.
	full   chan struct{}
	queued atomic.Int64
}

// NewForwarder returns a forwarder of store storeID's outbox in store to
// central, with the default settings.
func NewForwarder(storeID string, store Store, central Central) *Forwarder {
	return &Forwarder{
		StoreID:    storeID,
		Store:      store,
		Central:    central,
		Batch:      DefaultForwardBatch,
		BatchWait:  DefaultForwardBatchWait,
		Interval:   DefaultForwardInterval,
		MinBackoff: DefaultForwardMinBackoff,
		MaxBackoff: DefaultForwardMaxBackoff,
		Timeout:    DefaultForwardTimeout,
		Logger:     slog.New(slog.DiscardHandler),
	}
}

// defaults fills the defaults once, before the first Notify, Flush or Run.
func (f *Forwarder) defaults() { f.once.Do(f.fill) }

func (f *Forwarder) fill() {
	if f.Batch <= 0 {
		f.Batch = DefaultForwardBatch
	}
	if f.BatchWait == 0 {
		f.BatchWait = DefaultForwardBatchWait
	}
	if f.Interval <= 0 {
		f.Interval = DefaultForwardInterval
	}
	if f.MinBackoff <= 0 {
		f.MinBackoff = DefaultForwardMinBackoff
	}
	if f.MaxBackoff <= 0 {
		f.MaxBackoff = DefaultForwardMaxBackoff
	}
	if f.Timeout <= 0 {
		f.Timeout = DefaultForwardTimeout
	}
	if f.Logger == nil {
		f.Logger = slog.New(slog.DiscardHandler)
	}
	f.wake = make(chan struct{}, 1)
	f.full = make(chan struct{}, 1)
}

// Notify wakes the forwarder: a settlement was queued. It never blocks.
func (f *Forwarder) Notify() {
	f.defaults()
	if f.queued.Add(1) >= int64(f.Batch) {
		signal(f.full)
	}
	signal(f.wake)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run forwards until ctx ends.
func (f *Forwarder) Run(ctx context.Context) {
	f.defaults()
	failures := 0
	for {
		wait := f.Interval
		if _, err := f.Flush(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			wait = f.backoff(failures)
			f.Logger.Warn("settlements not forwarded", "err", err, "retry_in", wait.Round(time.Millisecond))
		} else {
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-f.wake:
			t.Stop()
			switch {
			case failures > 0:
				// Central was failing: a new settlement is no reason to
				// hammer it before the backoff is over.
				if !sleep(ctx, f.backoff(failures), nil) {
					return
				}
			case f.BatchWait > 0:
				// Let the batch fill, for at most BatchWait.
				if !sleep(ctx, f.BatchWait, f.full) {
					return
				}
			}
		case <-t.C:
		}
	}
}

// sleep waits for d, or until early is signalled; false when ctx ended.
func sleep(ctx context.Context, d time.Duration, early chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-early:
	case <-t.C:
	}
	return true
}

// backoff is the wait after failures failed rounds in a row.
func (f *Forwarder) backoff(failures int) time.Duration {
	return jitteredBackoff(f.MinBackoff, f.MaxBackoff, failures)
}

// jitteredBackoff is exponential backoff with full jitter, the forwarder's
// and the policy watcher's: uniform in [1ms, min(max, min·2ⁿ⁻¹) + 1ms) after
// n failures in a row.
func jitteredBackoff(minWait, maxWait time.Duration, failures int) time.Duration {
	ceil := maxWait
	if failures < 30 {
		if d := minWait << (failures - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	return time.Duration(rand.Int64N(int64(ceil))) + time.Millisecond
}

// Flush sends batches until the outbox is empty or central fails, and
// returns how many settlements central acknowledged. Settlements that central
// leaves unacknowledged stay queued for the next round.
func (f *Forwarder) Flush(ctx context.Context) (int, error) {
	f.defaults()
	f.queued.Store(0)
	select {
	case <-f.full:
	default:
	}
	total := 0
	for {
		batch, err := f.Store.PendingSettlements(ctx, f.Batch)
		if err != nil {
			return total, err
		}
		if len(batch) == 0 {
			return total, nil
		}
		cctx, cancel := context.WithTimeout(ctx, f.Timeout)
		acks, err := f.Central.SubmitSettlements(cctx, f.StoreID, batch)
		cancel()
		if f.Contact != nil {
			f.Contact(err == nil)
		}
		if err != nil {
			return total, err
		}
		if err := f.Store.AckSettlements(ctx, acks); err != nil {
			return total, err
		}
		for _, a := range acks {
			if a.Status == SettlementRefused {
				f.Logger.Error("central refused a settlement; kept as disputed", "settlement_id", a.ID, "message", a.Message)
			}
		}
		total += len(acks)
		if len(acks) < len(batch) {
			// Central kept some back (a reversal ahead of its capture, say):
			// leave them for the next round instead of spinning on them.
			return total, nil
		}
	}
}
