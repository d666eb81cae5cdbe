package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Policy watch defaults.
const (
	DefaultWatchMinBackoff = 200 * time.Millisecond
	DefaultWatchMaxBackoff = 30 * time.Second
)

// PublishedDocument is one signed document from HQ's policy stream.
type PublishedDocument struct {
	// Kind is DocumentKeyset, DocumentPolicy (chain-wide or this store's:
	// the document says which) or DocumentFreeze.
	Kind    DocumentKind
	Version uint64
	Raw     []byte
}

// PolicyStream is an open stream of HQ's documents: HQ has taken it, so
// the watcher counts it as contact with central.
type PolicyStream interface {
	// Recv returns the next document. An error ends the stream; io.EOF is
	// HQ closing it.
	Recv() (*PublishedDocument, error)
}

// PolicySource opens streams of HQ's documents
// (CentralService.WatchPolicy).
type PolicySource interface {
	// WatchPolicy opens a stream that first sends the documents newer than
	// have, then each new one HQ publishes for storeID, until ctx ends. It
	// returns once HQ has taken the stream; an error means it did not (HQ
	// unreachable, or refusing it).
	WatchPolicy(ctx context.Context, storeID string, have DocumentVersions) (PolicyStream, error)
}

// PolicyWatcher keeps HQ's policy stream open (DESIGN.md, "Policy from
// HQ"): it resumes from the versions the gateway holds, applies each
// document as it arrives (durably, then in force), and reconnects with
// exponential backoff and full jitter whenever the stream ends. Create it
// with NewPolicyWatcher, set its exported fields, then call Run.
type PolicyWatcher struct {
	// Gateway applies the documents.
	Gateway *Gateway
	// Source opens the streams.
	Source PolicySource
	// MinBackoff and MaxBackoff bound the wait before reconnecting;
	// NewPolicyWatcher sets DefaultWatchMinBackoff and
	// DefaultWatchMaxBackoff, and zero means them too.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Logger receives the stream's ends and the documents applied;
	// NewPolicyWatcher sets one that discards them.
	Logger *slog.Logger
	// Applied, when set, is called after each document that changed what
	// is in force.
	Applied func(kind DocumentKind, version uint64)
}

// NewPolicyWatcher returns a watcher that applies to g what source streams,
// with the default settings.
func NewPolicyWatcher(g *Gateway, source PolicySource) *PolicyWatcher {
	return &PolicyWatcher{
		Gateway:    g,
		Source:     source,
		MinBackoff: DefaultWatchMinBackoff,
		MaxBackoff: DefaultWatchMaxBackoff,
		Logger:     slog.New(slog.DiscardHandler),
	}
}

func (w *PolicyWatcher) defaults() {
	if w.MinBackoff <= 0 {
		w.MinBackoff = DefaultWatchMinBackoff
	}
	if w.MaxBackoff <= 0 {
		w.MaxBackoff = DefaultWatchMaxBackoff
	}
	if w.MaxBackoff < w.MinBackoff {
		w.MaxBackoff = w.MinBackoff
	}
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run watches until ctx ends.
func (w *PolicyWatcher) Run(ctx context.Context) {
	w.defaults()
	failures := 0
	for {
		opened := time.Now()
		got, err := w.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		// A stream that delivered something, or stayed up a good while,
		// was healthy: start the backoff afresh.
		if got > 0 || time.Since(opened) > w.MaxBackoff {
			failures = 0
		}
		failures++
		wait := w.backoff(failures)
		w.Logger.Warn("policy stream ended; reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// watch runs one stream and returns how many documents it delivered and
// why it ended.
func (w *PolicyWatcher) watch(ctx context.Context) (int, error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := w.Gateway
	have := g.DocumentVersions()
	stream, err := w.Source.WatchPolicy(sctx, g.StoreID, have)
	if err != nil {
		if ctx.Err() == nil {
			g.NoteCentral(false)
		}
		return 0, err
	}
	// HQ took the stream: central is reachable, for status and the breaker.
	g.NoteCentral(true)
	w.Logger.Info("policy stream open", "keyset", have.Keyset, "policy", have.Policy, "store_policy", have.StorePolicy, "freeze", have.Freeze)
	n := 0
	for {
		doc, err := stream.Recv()
		if err != nil {
			return n, err
		}
		g.NoteCentral(true)
		n++
		version, changed, err := g.ApplyDocument(sctx, doc.Kind, doc.Raw)
		switch code := ErrorCode(err); {
		case err == nil && changed:
			w.Logger.Info("document applied", "kind", string(doc.Kind), "version", version)
			if w.Applied != nil {
				w.Applied(doc.Kind, version)
			}
		case err == nil:
			w.Logger.Debug("document already held", "kind", string(doc.Kind), "version", doc.Version)
		case code == ESTALE:
			w.Logger.Info("document older than the one held; ignored", "kind", string(doc.Kind), "version", doc.Version, "held", version)
		case code == ECONFLICT:
			// A freeze delta after a gap: resume from the held versions,
			// so HQ sends what is missing.
			return n, fmt.Errorf("%s version %d: %w", doc.Kind, doc.Version, err)
		case ctx.Err() != nil:
			return n, ctx.Err()
		default:
			w.Logger.Error("document refused", "kind", string(doc.Kind), "version", doc.Version, "err", err)
		}
	}
}

// backoff is the wait before reconnecting after failures ends in a row.
func (w *PolicyWatcher) backoff(failures int) time.Duration {
	return jitteredBackoff(w.MinBackoff, w.MaxBackoff, failures)
}
