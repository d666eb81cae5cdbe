package devices

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrScanNotFound is returned by ScanHub.Take for a scan id the lane does not
// hold: never scanned, already taken, or scanned on another lane.
var ErrScanNotFound = errors.New("scan not found")

// ErrScanExpired is returned by ScanHub.Take for a scan that the lane held
// but whose time ran out, or that newer scans pushed out of the lane's bound.
var ErrScanExpired = errors.New("scan expired")

// DefaultScanTTL is how long a ScanHub holds a scanned credential.
const DefaultScanTTL = 2 * time.Minute

// DefaultMaxHeldPerLane bounds the credentials a ScanHub holds for one lane;
// past it the oldest is dropped.
const DefaultMaxHeldPerLane = 64

// DefaultWatchBuffer is how many events a subscriber may fall behind before
// events for it are dropped.
const DefaultWatchBuffer = 16

// ScanEvent tells a lane's subscribers that something was scanned. It never
// carries a credential: a credential is named by ScanID and shown as
// Fingerprint, and only Take returns it.
type ScanEvent struct {
	// Lane is the lane whose scanner read the frame.
	Lane string
	// Kind is what the frame held.
	Kind Kind
	// ScanID names a held credential for Take; it is empty for other kinds.
	ScanID string
	// Code is the full text of a product or unknown code; it is empty for
	// credentials and for anything that may be one.
	Code string
	// Fingerprint is the masked credential (see Fingerprint); it is empty
	// when Code is set.
	Fingerprint string
	// AIM is the symbology identifier the scanner sent, if any.
	AIM AIM
	// Reason says why Kind is KindUnknown.
	Reason string
	// ScannedAt is when the hub received the scan.
	ScannedAt time.Time
	// ExpiresAt is when a held credential expires; it is zero for other kinds.
	ExpiresAt time.Time
}

// ScanHub holds scanned payment credentials under random scan ids, hands each
// out once to its own lane, and streams scan events to the lanes'
// subscribers. Set its exported fields before first use; a zero field selects
// its default. It is safe for concurrent use.
type ScanHub struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// TTL is how long a credential is held; zero means DefaultScanTTL.
	TTL time.Duration
	// MaxHeldPerLane bounds the credentials held per lane; zero means
	// DefaultMaxHeldPerLane.
	MaxHeldPerLane int
	// WatchBuffer is each subscriber's channel capacity; zero means
	// DefaultWatchBuffer.
	WatchBuffer int

	mu      sync.Mutex
	lanes   map[string]*laneScans
	dropped uint64 // events dropped for slow subscribers, all lanes
}

// laneScans is one lane's share of the hub.
type laneScans struct {
	held  map[string]*heldScan // by scan id
	order []string             // held scan ids, oldest first
	gone  []tombstone          // expired or evicted scan ids, oldest first
	subs  map[*Subscription]struct{}
}

type heldScan struct {
	credential string
	expiresAt  time.Time
}

// tombstone remembers an expired scan id, without its credential, so that Take
// can tell "expired" from "never existed".
type tombstone struct {
	id    string
	until time.Time
}

// Subscription is one subscriber's stream of a lane's scan events.
type Subscription struct {
	// C delivers the events in order. It is closed when the context given to
	// Watch is done.
	C <-chan ScanEvent

	c       chan ScanEvent
	lane    string
	dropped atomic.Uint64
}

// Dropped returns how many events were dropped because this subscriber did
// not keep up.
func (s *Subscription) Dropped() uint64 {
	return s.dropped.Load()
}

// NewScanHub returns a ScanHub with the default settings.
func NewScanHub() *ScanHub {
	return &ScanHub{}
}

// Publish records a classified scan from lane's scanner and sends its event to
// the lane's subscribers, dropping it for any subscriber whose buffer is full
// rather than waiting. A credential is held under a new scan id; the oldest of
// the lane's held credentials is dropped if the lane is at its bound. Publish
// returns the event it sent.
func (h *ScanHub) Publish(lane string, s Scan) ScanEvent {
	now := h.now()
	ev := ScanEvent{Lane: lane, Kind: s.Kind, AIM: s.AIM, Reason: s.Reason, ScannedAt: now}

	h.mu.Lock()
	defer h.mu.Unlock()
	h.purgeLocked(now)

	switch {
	case s.Kind.IsCredential():
		ev.ScanID = newScanID()
		ev.Fingerprint = Fingerprint(s.Text)
		ev.ExpiresAt = now.Add(h.ttl())
		l := h.laneLocked(lane)
		for len(l.order) >= h.maxHeld() {
			l.bury(l.order[0], now.Add(h.ttl()), h.maxHeld())
		}
		l.held[ev.ScanID] = &heldScan{credential: s.Text, expiresAt: ev.ExpiresAt}
		l.order = append(l.order, ev.ScanID)
	case s.Sensitive():
		ev.Fingerprint = Fingerprint(s.Text)
	default:
		ev.Code = s.Text
	}

	if l, ok := h.lanes[lane]; ok {
		for sub := range l.subs {
			select {
			case sub.c <- ev:
			default:
				sub.dropped.Add(1)
				h.dropped++
			}
		}
	}
	return ev
}

// Take returns the credential held under scanID for lane and forgets it, so a
// scan pays at most once. It returns ErrScanNotFound when the lane holds no
// such scan (including a scan made on another lane, which stays held for its
// own lane) and ErrScanExpired when the scan's time ran out.
func (h *ScanHub) Take(lane, scanID string) (string, error) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()

	l, ok := h.lanes[lane]
	if !ok {
		return "", ErrScanNotFound
	}
	if hs, ok := l.held[scanID]; ok {
		if !now.Before(hs.expiresAt) {
			l.bury(scanID, now.Add(h.ttl()), h.maxHeld())
			h.purgeLocked(now)
			return "", ErrScanExpired
		}
		l.forget(scanID)
		h.purgeLocked(now)
		return hs.credential, nil
	}
	for _, t := range l.gone {
		if t.id == scanID && now.Before(t.until) {
			return "", ErrScanExpired
		}
	}
	return "", ErrScanNotFound
}

// Watch subscribes to lane's scan events until ctx is done, when the
// subscription's channel is closed. Events are buffered up to WatchBuffer; a
// subscriber that falls further behind loses events (see
// Subscription.Dropped) but never slows the scanner.
func (h *ScanHub) Watch(ctx context.Context, lane string) *Subscription {
	c := make(chan ScanEvent, h.watchBuffer())
	sub := &Subscription{C: c, c: c, lane: lane}

	h.mu.Lock()
	h.laneLocked(lane).subs[sub] = struct{}{}
	h.mu.Unlock()

	context.AfterFunc(ctx, func() { h.unsubscribe(sub) })
	return sub
}

// Held returns how many credentials lane holds that have not expired.
func (h *ScanHub) Held(lane string) int {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.purgeLocked(now)
	if l, ok := h.lanes[lane]; ok {
		return len(l.held)
	}
	return 0
}

// Dropped returns how many events were dropped for slow subscribers, over all
// lanes and subscribers.
func (h *ScanHub) Dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// Purge forgets the credentials whose time ran out. Every other method purges
// too; a daemon may also call Purge on a timer so that no expired credential
// lingers in memory on a quiet lane.
func (h *ScanHub) Purge() {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.purgeLocked(now)
}

func (h *ScanHub) unsubscribe(sub *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l, ok := h.lanes[sub.lane]; ok {
		if _, ok := l.subs[sub]; ok {
			delete(l.subs, sub)
			close(sub.c)
		}
	}
	h.purgeLocked(h.now())
}

// purgeLocked buries expired credentials, forgets old tombstones, and removes
// lanes with nothing left in them.
func (h *ScanHub) purgeLocked(now time.Time) {
	for name, l := range h.lanes {
		// Walk every held scan rather than stop at the first live one: a clock
		// set back can leave them out of expiry order.
		for _, id := range append([]string(nil), l.order...) {
			if !now.Before(l.held[id].expiresAt) {
				l.bury(id, now.Add(h.ttl()), h.maxHeld())
			}
		}
		for len(l.gone) > 0 && !now.Before(l.gone[0].until) {
			l.gone = l.gone[1:]
		}
		if len(l.held) == 0 && len(l.gone) == 0 && len(l.subs) == 0 {
			delete(h.lanes, name)
		}
	}
}

func (h *ScanHub) laneLocked(lane string) *laneScans {
	if h.lanes == nil {
		h.lanes = make(map[string]*laneScans)
	}
	l, ok := h.lanes[lane]
	if !ok {
		l = &laneScans{held: make(map[string]*heldScan), subs: make(map[*Subscription]struct{})}
		h.lanes[lane] = l
	}
	return l
}

// forget drops a held credential.
func (l *laneScans) forget(id string) {
	delete(l.held, id)
	for i, o := range l.order {
		if o == id {
			l.order = append(l.order[:i], l.order[i+1:]...)
			break
		}
	}
}

// bury drops a held credential and remembers its id as expired until until,
// keeping at most max tombstones.
func (l *laneScans) bury(id string, until time.Time, max int) {
	l.forget(id)
	l.gone = append(l.gone, tombstone{id: id, until: until})
	if len(l.gone) > max {
		l.gone = l.gone[len(l.gone)-max:]
	}
}

func (h *ScanHub) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *ScanHub) ttl() time.Duration {
	if h.TTL > 0 {
		return h.TTL
	}
	return DefaultScanTTL
}

func (h *ScanHub) maxHeld() int {
	if h.MaxHeldPerLane > 0 {
		return h.MaxHeldPerLane
	}
	return DefaultMaxHeldPerLane
}

func (h *ScanHub) watchBuffer() int {
	if h.WatchBuffer > 0 {
		return h.WatchBuffer
	}
	return DefaultWatchBuffer
}

// newScanID returns 16 hex digits from the system's secure random source.
func newScanID() string {
	var b [8]byte
	// crypto/rand.Read never returns an error; it aborts the program if the
	// system's random source fails, which is the right outcome for ids that
	// guard payments.
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
