package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for a Gateway's exported fields.
const (
	// DefaultCentralTimeout is how long a decision waits for the central
	// service before deciding without it. A customer is standing at the lane.
	DefaultCentralTimeout = 800 * time.Millisecond
	// DefaultCurrency is the store's currency when none is configured.
	DefaultCurrency = "JPY"
)

// Gateway decides payments for one store (DESIGN.md, "The decision").
// Create it with NewGateway, set its exported fields, call Open, then
// Authorize and Reverse from any number of goroutines; Close stops taking
// decisions. The Store and Central stay the caller's to close.
type Gateway struct {
	// StoreID names this store to the central service.
	StoreID string
	// Currency is the only currency the store takes; NewGateway sets
	// DefaultCurrency.
	Currency string
	// Store holds everything the gateway decides and queues.
	Store Store
	// Central is the central service, asked first about every sale.
	Central Central
	// Scans resolves scan ids; nil when the gateway has no scanners.
	Scans ScanSource
	// RootKey is HQ's root public key, which signs keysets.
	RootKey ed25519.PublicKey
	// Verifier checks tokens; its zero value uses the default lifetime cap
	// and clock skew.
	Verifier TokenVerifier
	// CentralTimeout bounds each call to the central service; NewGateway
	// sets DefaultCentralTimeout.
	CentralTimeout time.Duration
	// Now is the clock decisions are made on; NewGateway sets time.Now.
	Now func() time.Time
	// Logger receives the decisions' log lines (a token only by its
	// fingerprint); NewGateway sets one that discards them.
	Logger *slog.Logger
	// Committed, when set, is called after each durable commit that queued
	// a settlement, to wake the forwarder.
	Committed func()
	// Breaker decides when central is not worth asking; NewGateway sets a
	// Breaker with the defaults, whose clock Open makes Now when it has
	// none.
	Breaker *Breaker
	// Offline says what may be approved when central cannot answer: the
	// offline caps and which goods policy lets be sold offline. Nil
	// approves nothing offline.
	Offline OfflinePolicy
	// ReversalWindow says until when Reverse takes a sale; the zero value
	// is until the end of the sale's business day, from midnight local
	// time.
	ReversalWindow ReversalWindow

	keys    atomic.Pointer[Keyring]
	central centralHealth

	// docs serializes applying HQ's signed documents, so that what is in
	// force always matches what is on disk.
	docs   sync.Mutex
	policy atomic.Pointer[PolicySet]
	freeze atomic.Pointer[FreezeSet]
	limits reservations

	mu       sync.Mutex
	inflight map[IdempotencyKey]chan struct{}
	tokens   map[string]struct{}
	closed   bool
}

// NewGateway returns the gateway of store storeID, keeping its state in
// store, asking central, and trusting the keysets root signs, with the
// default settings. It reads nothing until Open.
func NewGateway(storeID string, store Store, central Central, root ed25519.PublicKey) *Gateway {
	return &Gateway{
		StoreID:        storeID,
		Currency:       DefaultCurrency,
		Store:          store,
		Central:        central,
		RootKey:        root,
		CentralTimeout: DefaultCentralTimeout,
		Now:            time.Now,
		Logger:         slog.New(slog.DiscardHandler),
		Breaker:        &Breaker{},
		inflight:       make(map[IdempotencyKey]chan struct{}),
		tokens:         make(map[string]struct{}),
	}
}

// Open checks the fields and loads the keyset, the policies and the freeze
// list the store holds.
func (g *Gateway) Open(ctx context.Context) error {
	if g.Store == nil || g.Central == nil {
		return errors.New("gateway: Store and Central are required")
	}
	if g.StoreID == "" {
		return errors.New("gateway: StoreID is required")
	}
	if len(g.RootKey) != ed25519.PublicKeySize {
		return errors.New("gateway: RootKey is required")
	}
	if g.Currency == "" {
		g.Currency = DefaultCurrency
	}
	if g.CentralTimeout <= 0 {
		g.CentralTimeout = DefaultCentralTimeout
	}
	if g.Now == nil {
		g.Now = time.Now
	}
	if g.Logger == nil {
		g.Logger = slog.New(slog.DiscardHandler)
	}
	if g.Breaker == nil {
		g.Breaker = &Breaker{}
	}
	if g.Breaker.Now == nil {
		g.Breaker.Now = g.Now
	}
	g.mu.Lock()
	if g.inflight == nil {
		g.inflight = make(map[IdempotencyKey]chan struct{})
		g.tokens = make(map[string]struct{})
	}
	g.mu.Unlock()
	raw, _, err := g.Store.LoadDocument(ctx, DocumentKeyset)
	if err != nil {
		return fmt.Errorf("load keyset: %w", err)
	}
	if raw != nil {
		ring, err := OpenKeyset(raw, g.RootKey)
		if err != nil {
			return fmt.Errorf("stored keyset: %w", err)
		}
		g.keys.Store(ring)
	}
	if err := g.loadPolicy(ctx); err != nil {
		return err
	}
	return g.loadFreeze(ctx)
}

// Close stops taking decisions: Authorize and Reverse calls from now on
// fail with EUNAVAILABLE, and Close waits for the calls in flight to commit
// their decisions (or fail) until ctx ends, when it returns ctx's error and
// they go on by themselves. It closes neither the Store nor Central. It may
// be called more than once, and before Open.
func (g *Gateway) Close(ctx context.Context) error {
	for {
		g.mu.Lock()
		g.closed = true
		var wait chan struct{}
		for _, done := range g.inflight {
			wait = done
			break
		}
		g.mu.Unlock()
		if wait == nil {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return fmt.Errorf("gateway: decisions still in flight: %w", ctx.Err())
		}
	}
}

// lockKey makes concurrent calls with one idempotency key take turns, so a
// POS that retries while its first call is still running gets the first
// call's answer instead of a second decision.
func (g *Gateway) lockKey(ctx context.Context, key IdempotencyKey) (func(), error) {
	for {
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			return nil, Errorf(EUNAVAILABLE, "the gateway is shutting down; try again")
		}
		wait, busy := g.inflight[key]
		if !busy {
			done := make(chan struct{})
			g.inflight[key] = done
			g.mu.Unlock()
			return func() {
				g.mu.Lock()
				delete(g.inflight, key)
				g.mu.Unlock()
				close(done)
			}, nil
		}
		g.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, &Error{Code: EUNAVAILABLE, Message: "waiting for an earlier call with the same transaction id", Err: ctx.Err()}
		}
	}
}

// Status is the gateway's state, for GetStatus and storegatectl status.
type Status struct {
	StoreID string
	// CentralCalled is whether any call to central (a decision's, the
	// forwarder's, the policy stream's) has ended since start; until one
	// has, CentralReachable and LastCentralContact say nothing.
	CentralCalled bool
	// CentralReachable is whether the last call to central reached it.
	CentralReachable bool
	// LastCentralContact is when a call last reached central; zero when
	// none has since start.
	LastCentralContact time.Time
	// Breaker says whether decisions go to central (closed) or are made
	// offline at once (open, half-open while one call probes).
	Breaker BreakerStatus
	// OfflineCaps are the caps in force.
	OfflineCaps   OfflineCaps
	Outbox        OutboxStats
	KeysetVersion uint64
	AuditRecords  uint64
	// Documents are the versions of HQ's signed documents in force.
	Documents DocumentVersions
	// PolicyIssued and StorePolicyIssued are when HQ issued the chain-wide
	// and the store's policy in force; zero when none is held.
	PolicyIssued      time.Time
	StorePolicyIssued time.Time
}

// Status reports the gateway's state.
func (g *Gateway) Status(ctx context.Context) (*Status, error) {
	ob, err := g.Store.OutboxStats(ctx)
	if err != nil {
		return nil, fmt.Errorf("outbox stats: %w", err)
	}
	n, _, err := g.Store.AuditHead(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit head: %w", err)
	}
	s := &Status{
		StoreID:          g.StoreID,
		CentralCalled:    g.central.called.Load(),
		CentralReachable: g.central.reachable.Load(),
		Breaker:          g.Breaker.Status(),
		OfflineCaps:      g.offlinePolicy().OfflineCaps(),
		Outbox:           ob,
		AuditRecords:     n,
		Documents:        g.DocumentVersions(),
	}
	if pol := g.Policy(); pol != nil {
		if pol.Chain != nil {
			s.PolicyIssued = pol.Chain.IssuedAt
		}
		if pol.Store != nil {
			s.StorePolicyIssued = pol.Store.IssuedAt
		}
	}
	if ns := g.central.lastContact.Load(); ns != 0 {
		s.LastCentralContact = time.Unix(0, ns)
	}
	if k := g.keys.Load(); k != nil {
		s.KeysetVersion = k.Version
	}
	return s, nil
}
