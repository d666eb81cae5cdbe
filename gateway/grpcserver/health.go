package grpcserver

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"storegate/internal/loop"
)

// Defaults for HealthChecker.
const (
	// DefaultHealthInterval is how often the store is probed.
	DefaultHealthInterval = 5 * time.Second
	// DefaultHealthTimeout is how long a probe may take before the store
	// counts as unwritable: a decision commits in milliseconds.
	DefaultHealthTimeout = 5 * time.Second
)

// errProbeTimeout is the failure of a probe that did not return in time.
var errProbeTimeout = errors.New("store probe did not return in time")

// HealthChecker keeps grpc.health.v1 truthful. The gateway can decide as long
// as it can write its store: central being unreachable only makes it decide
// offline, so it stays SERVING then. When a probe of the store fails or does
// not return in time, every service it names goes NOT_SERVING, and back to
// SERVING once a probe succeeds again. Create it with NewHealthChecker, set
// its exported fields, then call Check once and Run in a goroutine.
type HealthChecker struct {
	// Health is the server whose statuses are set.
	Health *health.Server
	// Services are the service names set besides "" (the whole server).
	Services []string
	// Probe writes to the store and returns once the write is durable
	// (storecache.Store.Probe).
	Probe func(ctx context.Context) error
	// Interval is the time between probes; NewHealthChecker sets
	// DefaultHealthInterval, and zero means it too.
	Interval time.Duration
	// Timeout bounds one probe; NewHealthChecker sets DefaultHealthTimeout,
	// and zero means it too.
	Timeout time.Duration
	// Logger receives the verdicts; NewHealthChecker sets one that
	// discards them.
	Logger *slog.Logger
	// Now is the clock of Healthy; NewHealthChecker sets time.Now.
	Now func() time.Time
	// OnChange, when set, is called with the new state whenever it changes.
	OnChange func(serving bool)

	once     sync.Once
	mu       sync.Mutex
	serving  bool
	known    bool
	lastOK   time.Time
	inflight chan struct{}
}

// NewHealthChecker returns a checker that sets the statuses of h by
// probe's verdicts, with the default settings.
func NewHealthChecker(h *health.Server, probe func(ctx context.Context) error) *HealthChecker {
	return &HealthChecker{
		Health:   h,
		Probe:    probe,
		Interval: DefaultHealthInterval,
		Timeout:  DefaultHealthTimeout,
		Logger:   slog.New(slog.DiscardHandler),
		Now:      time.Now,
	}
}

func (h *HealthChecker) defaults() { h.once.Do(h.fill) }

func (h *HealthChecker) fill() {
	if h.Interval <= 0 {
		h.Interval = DefaultHealthInterval
	}
	if h.Timeout <= 0 {
		h.Timeout = DefaultHealthTimeout
	}
	if h.Logger == nil {
		h.Logger = slog.New(slog.DiscardHandler)
	}
	if h.Now == nil {
		h.Now = time.Now
	}
}

// Run probes every Interval until ctx ends.
func (h *HealthChecker) Run(ctx context.Context) {
	h.defaults()
	loop.Every(ctx, h.Interval, func(ctx context.Context) { h.Check(ctx) })
}

// Check probes the store once, sets the health statuses, and reports whether
// the store could be written. A probe that is still running from an earlier
// Check counts as a failure, and no second one is started beside it.
func (h *HealthChecker) Check(ctx context.Context) bool {
	h.defaults()
	h.mu.Lock()
	running := h.inflight
	h.mu.Unlock()
	var err error
	if running != nil {
		select {
		case <-running:
		default:
			err = errProbeTimeout
		}
	}
	if err == nil {
		err = h.probe(ctx)
	}
	if ctx.Err() != nil {
		// Shutting down: the daemon sets NOT_SERVING itself.
		return false
	}
	h.set(err)
	return err == nil
}

func (h *HealthChecker) probe(ctx context.Context) error {
	done := make(chan struct{})
	h.mu.Lock()
	h.inflight = done
	h.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		defer close(done)
		errc <- h.Probe(pctx)
	}()
	t := time.NewTimer(h.Timeout)
	defer t.Stop()
	select {
	case err := <-errc:
		return err
	case <-t.C:
		return errProbeTimeout
	}
}

func (h *HealthChecker) set(err error) {
	h.mu.Lock()
	serving := err == nil
	if serving {
		h.lastOK = h.Now()
	}
	changed := !h.known || h.serving != serving
	h.serving, h.known = serving, true
	h.mu.Unlock()
	if !changed {
		return
	}
	st := healthpb.HealthCheckResponse_SERVING
	if serving {
		h.Logger.Info("store writable: serving")
	} else {
		st = healthpb.HealthCheckResponse_NOT_SERVING
		h.Logger.Error("store cannot be written: not serving", "err", err)
	}
	h.Health.SetServingStatus("", st)
	for _, s := range h.Services {
		h.Health.SetServingStatus(s, st)
	}
	if h.OnChange != nil {
		h.OnChange(serving)
	}
}

// Healthy reports whether the last probe succeeded and the store was written
// within the last two intervals and a timeout, so that a checker that has
// stopped probing (a stuck process) does not count as healthy. systemd's
// watchdog is fed only while this is true.
func (h *HealthChecker) Healthy() bool {
	h.defaults()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.serving && h.Now().Sub(h.lastOK) <= 2*h.Interval+h.Timeout
}
