package gateway

import (
	"sync"
	"time"
)

// Breaker defaults.
const (
	// DefaultBreakerFailures is how many calls to central in a row must
	// fail before the breaker opens.
	DefaultBreakerFailures = 3
	// DefaultBreakerCooldown is how long an open breaker decides without
	// central before it lets one call probe whether central is back.
	DefaultBreakerCooldown = 5 * time.Second
)

// BreakerState is the state of the circuit breaker in front of central.
type BreakerState int

// Breaker states.
const (
	// BreakerClosed: central answers; every decision asks it.
	BreakerClosed BreakerState = iota
	// BreakerOpen: central failed repeatedly; decisions are made offline at
	// once, without waiting for central's deadline.
	BreakerOpen
	// BreakerHalfOpen: the cool-down is over and one call is probing
	// central; the others decide offline until it answers.
	BreakerHalfOpen
)

var breakerStateNames = map[BreakerState]string{
	BreakerClosed:   "closed",
	BreakerOpen:     "open",
	BreakerHalfOpen: "half_open",
}

// String returns "closed", "open" or "half_open".
func (s BreakerState) String() string {
	if n, ok := breakerStateNames[s]; ok {
		return n
	}
	return "unknown"
}

// Breaker is a circuit breaker in front of central's Authorize. After
// Failures calls in a row fail (no answer, or none within the deadline) it
// opens: for Cooldown, decisions are made offline at once, so that customers
// do not each wait out the deadline while central is down. Then it lets one
// call through as a probe, with the normal deadline; the probe's success
// closes it, its failure opens it for another cool-down. Central answering
// another call (Reached) closes it too. Set the exported fields before first
// use; the zero value uses the defaults and the system clock. It is safe for
// concurrent use.
type Breaker struct {
	// Failures is how many consecutive failures open the breaker; zero
	// means DefaultBreakerFailures.
	Failures int
	// Cooldown is how long the breaker stays open before a probe; zero
	// means DefaultBreakerCooldown.
	Cooldown time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	state    BreakerState
	gen      uint64 // changes at every transition; stale reports are ignored
	failures int
	since    time.Time
	probeAt  time.Time
	opened   uint64
	closed   uint64
	// probation is set when Reached closed the breaker: no sale has been
	// answered yet, so the first that fails opens it again at once.
	probation bool
	// relapsed is set when a sale on probation failed: Reached may not
	// close the breaker again before its cool-down has passed, so that a
	// central that takes settlements but answers no sale in time costs one
	// customer a wait per cool-down, as a probe would, and no more.
	relapsed bool
}

// BreakerStatus is a snapshot of a Breaker, for status.
type BreakerStatus struct {
	State BreakerState
	// Since is when the breaker entered State; zero before any transition.
	Since time.Time
	// Failures is the current run of consecutive failures.
	Failures int
	// Opened and Closed count the transitions to open (from closed or from
	// a failed probe) and back to closed.
	Opened, Closed uint64
}

func (b *Breaker) now() time.Time {
	if b.Now == nil {
		return time.Now()
	}
	return b.Now()
}

func (b *Breaker) limits() (int, time.Duration) {
	n, c := b.Failures, b.Cooldown
	if n <= 0 {
		n = DefaultBreakerFailures
	}
	if c <= 0 {
		c = DefaultBreakerCooldown
	}
	return n, c
}

// Allow reports whether a call may go to central now. A closed breaker
// allows every call. An open one allows none until Cooldown has passed; then
// it turns half-open and allows exactly this call, the probe. A half-open
// breaker allows no other call while the probe is out; a probe that has not
// reported within a Cooldown is presumed lost and the next call probes
// instead.
//
// When allowed, the caller reports the call's outcome once through done:
// true when central answered (an approval or a decline), false when it could
// not be reached or missed the deadline. A call abandoned for reasons of the
// caller's own (its client went away) need not report. Reports from calls
// allowed before the breaker last changed state are ignored.
func (b *Breaker) Allow() (done func(ok bool), allowed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, cooldown := b.limits()
	now := b.now()
	switch b.state {
	case BreakerOpen:
		if now.Sub(b.since) < cooldown {
			return nil, false
		}
		b.transition(BreakerHalfOpen, now)
		b.probeAt = now
	case BreakerHalfOpen:
		if now.Sub(b.probeAt) < cooldown {
			return nil, false
		}
		b.probeAt = now
	}
	gen := b.gen
	return func(ok bool) { b.record(gen, ok) }, true
}

func (b *Breaker) record(gen uint64, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen != b.gen {
		return
	}
	limit, _ := b.limits()
	now := b.now()
	switch b.state {
	case BreakerClosed:
		if ok {
			b.failures, b.probation = 0, false
			return
		}
		b.failures++
		if b.failures >= limit || b.probation {
			b.relapsed, b.probation = b.probation, false
			b.transition(BreakerOpen, now)
			b.opened++
		}
	case BreakerHalfOpen:
		if ok {
			b.transition(BreakerClosed, now)
			b.failures, b.relapsed = 0, false
			b.closed++
			return
		}
		b.failures++
		b.transition(BreakerOpen, now)
		b.opened++
	}
}

// Reached tells the breaker that central answered a call it does not guard
// (the forwarder's settlements, the policy stream): central is back, so an
// open or half-open breaker closes now instead of when a sale next probes,
// and status stops saying offline while central answers. No sale has been
// answered yet, so the breaker is on probation: the first sale that fails
// opens it again at once, and Reached does not close it again before the
// cool-down has passed.
func (b *Breaker) Reached() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, cooldown := b.limits()
	now := b.now()
	if b.state == BreakerClosed || (b.relapsed && now.Sub(b.since) < cooldown) {
		return
	}
	b.transition(BreakerClosed, now)
	b.failures, b.probation, b.relapsed = 0, true, false
	b.closed++
}

// transition moves to state s; b.mu is held.
func (b *Breaker) transition(s BreakerState, now time.Time) {
	b.state, b.since = s, now
	b.gen++
}

// Status returns a snapshot of the breaker.
func (b *Breaker) Status() BreakerStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BreakerStatus{State: b.state, Since: b.since, Failures: b.failures, Opened: b.opened, Closed: b.closed}
}
