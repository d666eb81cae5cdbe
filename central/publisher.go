package central

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// DefaultWatchBuffer is how many publications a watcher may fall behind
// before it is dropped.
const DefaultWatchBuffer = 16

// Document is a signed document as HQ published it.
type Document struct {
	Kind    storegatev1.DocumentKind
	Version uint64
	// Raw is the COSE_Sign1 document. It is shared: never modify it.
	Raw         []byte
	PublishedAt time.Time
}

// storedDocument is a documents bucket record.
type storedDocument struct {
	Version     uint64    `json:"version"`
	Raw         []byte    `json:"raw"`
	PublishedAt time.Time `json:"published_at"`
}

// documentKinds maps the wire kinds to the names the documents bucket uses,
// in the order a store should receive them: the keyset first, since it
// names the keys that may sign the others.
var documentKinds = []struct {
	kind storegatev1.DocumentKind
	name gateway.DocumentKind
}{
	{storegatev1.DocumentKind_DOCUMENT_KIND_KEYSET, gateway.DocumentKeyset},
	{storegatev1.DocumentKind_DOCUMENT_KIND_POLICY, gateway.DocumentPolicy},
	{storegatev1.DocumentKind_DOCUMENT_KIND_FREEZE_LIST, gateway.DocumentFreeze},
}

func documentName(kind storegatev1.DocumentKind) (gateway.DocumentKind, error) {
	for _, k := range documentKinds {
		if k.kind == kind {
			return k.name, nil
		}
	}
	return "", gateway.Errorf(gateway.EINVALID, "unknown document kind %v", kind)
}

// loadDocuments returns the published documents, keyset first.
func (l *Ledger) loadDocuments() ([]Document, error) {
	var docs []Document
	err := l.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(documentsBucket)
		for _, k := range documentKinds {
			var sd storedDocument
			found, err := getJSON(b, []byte(k.name), &sd)
			if err != nil {
				return fmt.Errorf("document %s: %w", k.name, err)
			}
			if found {
				docs = append(docs, Document{Kind: k.kind, Version: sd.Version, Raw: sd.Raw, PublishedAt: sd.PublishedAt})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load documents: %w", err)
	}
	return docs, nil
}

// saveDocument durably records doc as the latest of its kind. It returns
// false when that exact version is already recorded, ESTALE when a higher
// version is, and ECONFLICT when the same version is recorded with other
// bytes.
func (l *Ledger) saveDocument(doc Document) (bool, error) {
	name, err := documentName(doc.Kind)
	if err != nil {
		return false, err
	}
	changed := false
	err = l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(documentsBucket)
		var held storedDocument
		found, err := getJSON(b, []byte(name), &held)
		if err != nil {
			return err
		}
		switch {
		case found && held.Version > doc.Version:
			return gateway.Errorf(gateway.ESTALE, "%s version %d is older than the published version %d", name, doc.Version, held.Version)
		case found && held.Version == doc.Version && bytes.Equal(held.Raw, doc.Raw):
			return nil
		case found && held.Version == doc.Version:
			return gateway.Errorf(gateway.ECONFLICT, "%s version %d is already published with other content", name, doc.Version)
		}
		changed = true
		return putJSON(b, []byte(name), storedDocument{Version: doc.Version, Raw: doc.Raw, PublishedAt: doc.PublishedAt.UTC()})
	})
	return changed, err
}

// Publisher holds the latest signed document of each kind, persisted in the
// ledger, and hands each new publication to every watcher. A watcher that
// falls behind is dropped rather than allowed to slow Publish down.
type Publisher struct {
	// Buffer is each watcher's channel size; zero means DefaultWatchBuffer.
	// Set it before the first Watch.
	Buffer int
	// Now stamps publications.
	Now func() time.Time

	ledger   *Ledger
	mu       sync.Mutex
	docs     map[storegatev1.DocumentKind]Document
	watchers map[*Watcher]struct{}
	closed   bool
}

// NewPublisher returns a publisher over the documents the ledger holds.
func NewPublisher(l *Ledger) (*Publisher, error) {
	docs, err := l.loadDocuments()
	if err != nil {
		return nil, err
	}
	p := &Publisher{
		Now:      time.Now,
		ledger:   l,
		docs:     make(map[storegatev1.DocumentKind]Document, len(docs)),
		watchers: make(map[*Watcher]struct{}),
	}
	for _, d := range docs {
		p.docs[d.Kind] = d
	}
	return p, nil
}

// Publish durably records a signed document as the latest of its kind and
// sends it to every watcher. It refuses a version lower than the one
// published (ESTALE) and the same version with other content (ECONFLICT);
// publishing the same version again changes nothing. Publish never waits
// for a watcher.
func (p *Publisher) Publish(kind storegatev1.DocumentKind, version uint64, raw []byte) error {
	if _, err := documentName(kind); err != nil {
		return err
	}
	if version == 0 {
		return gateway.Errorf(gateway.EINVALID, "document version must be at least 1")
	}
	if len(raw) == 0 || len(raw) > gateway.MaxDocumentSize {
		return gateway.Errorf(gateway.EINVALID, "signed document is %d bytes, want 1 to %d", len(raw), gateway.MaxDocumentSize)
	}
	doc := Document{Kind: kind, Version: version, Raw: bytes.Clone(raw), PublishedAt: p.Now().UTC()}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return gateway.Errorf(gateway.EUNAVAILABLE, "publisher is closed")
	}
	changed, err := p.ledger.saveDocument(doc)
	if err != nil || !changed {
		return err
	}
	p.docs[kind] = doc
	for w := range p.watchers {
		select {
		case w.c <- doc:
		default:
			p.drop(w, gateway.Errorf(gateway.EUNAVAILABLE, "watcher fell %d publications behind; reconnect and resume", cap(w.c)))
		}
	}
	return nil
}

// Latest returns the latest published document of a kind.
func (p *Publisher) Latest(kind storegatev1.DocumentKind) (Document, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.docs[kind]
	return d, ok
}

// Watch returns the published documents newer than the versions in have
// (by kind; a missing kind counts as version 0), keyset first, and a
// watcher that receives every later publication. Nothing published is
// missed or sent twice between the two. The caller must Close the watcher.
func (p *Publisher) Watch(have map[storegatev1.DocumentKind]uint64) ([]Document, *Watcher) {
	p.mu.Lock()
	defer p.mu.Unlock()
	size := p.Buffer
	if size <= 0 {
		size = DefaultWatchBuffer
	}
	w := &Watcher{p: p, c: make(chan Document, size)}
	if p.closed {
		w.err = gateway.Errorf(gateway.EUNAVAILABLE, "publisher is closed")
		close(w.c)
		return nil, w
	}
	var initial []Document
	for _, k := range documentKinds {
		if d, ok := p.docs[k.kind]; ok && d.Version > have[k.kind] {
			initial = append(initial, d)
		}
	}
	p.watchers[w] = struct{}{}
	return initial, w
}

// Watchers returns the number of watchers connected.
func (p *Publisher) Watchers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.watchers)
}

// Close ends every watch, so that streams return and a server can stop
// gracefully; later Watch and Publish calls fail with EUNAVAILABLE. It is
// safe to call more than once.
func (p *Publisher) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	// Deleting from a map while ranging over it is safe in Go.
	for w := range p.watchers {
		p.drop(w, gateway.Errorf(gateway.EUNAVAILABLE, "the central service is shutting down"))
	}
}

// drop ends a watch with err. p.mu must be held.
func (p *Publisher) drop(w *Watcher, err error) {
	if _, ok := p.watchers[w]; !ok {
		return
	}
	delete(p.watchers, w)
	w.err = err
	close(w.c)
}

// Watcher receives the publications made after its Watch call.
type Watcher struct {
	p   *Publisher
	c   chan Document
	err error // set, under p.mu, before c is closed
}

// C returns the channel of publications. It is closed when the watch ends:
// the watcher fell behind, the publisher closed, or Close was called.
func (w *Watcher) C() <-chan Document { return w.c }

// Err returns why the watch ended, once C is closed; nil after Close.
func (w *Watcher) Err() error {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.err
}

// Close ends the watch. It is safe to call more than once.
func (w *Watcher) Close() {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.p.drop(w, nil)
}
