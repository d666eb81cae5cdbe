package central

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"storegate/gateway"
)

// DefaultWatchBuffer is how many publications a watcher may fall behind
// before it is dropped.
const DefaultWatchBuffer = 16

// Document is a signed document as HQ published it.
type Document struct {
	Kind    gateway.DocumentKind
	Version uint64
	// StoreID is the store a policy is for; empty for the chain-wide policy
	// and for every other kind.
	StoreID string
	// Snapshot is true for a freeze list that replaces every earlier one.
	Snapshot bool
	// Raw is the COSE_Sign1 document. It is shared: never modify it.
	Raw         []byte
	PublishedAt time.Time
}

// publishedDocuments is what the ledger holds: the latest keyset, the
// latest policy of each scope, and the freeze log (the latest snapshot, if
// any, and every delta after it, in version order).
type publishedDocuments struct {
	keyset   *Document
	policies map[string]Document
	freeze   []Document
}

// loadDocuments reads the published documents.
func loadDocuments(ctx context.Context, st Storage) (*publishedDocuments, error) {
	var docs *publishedDocuments
	err := st.View(ctx, func(tx Tx) error {
		docs = &publishedDocuments{policies: make(map[string]Document)}
		err := tx.EachDocument(func(d *Document) error {
			switch d.Kind {
			case gateway.DocumentKeyset:
				docs.keyset = d
			case gateway.DocumentPolicy:
				docs.policies[d.StoreID] = *d
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.EachFreeze(func(d *Document) error {
			docs.freeze = append(docs.freeze, *d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load documents: %w", err)
	}
	return docs, nil
}

// Publisher verifies HQ's signed documents, persists them in the ledger's
// storage and hands each new publication to the stores' watchers. A watcher
// that falls behind is dropped rather than allowed to slow Publish down.
// Create it with NewPublisher, set its exported fields, then Open it.
type Publisher struct {
	// Buffer is each watcher's channel size; NewPublisher sets
	// DefaultWatchBuffer.
	Buffer int
	// Now stamps publications; NewPublisher sets time.Now.
	Now func() time.Time

	storage  Storage
	root     ed25519.PublicKey
	mu       sync.Mutex
	docs     *publishedDocuments
	keyring  *gateway.Keyring
	watchers map[*Watcher]struct{}
	open     bool
	closed   bool
}

// NewPublisher returns a publisher over the documents the ledger holds,
// trusting root, HQ's root public key: every document is verified against
// it (and against the policy keys of the latest keyset) before it is
// published. It does no I/O: Open loads the published documents.
func NewPublisher(l *Ledger, root ed25519.PublicKey) *Publisher {
	return &Publisher{Buffer: DefaultWatchBuffer, Now: time.Now, storage: l.storage, root: root, watchers: make(map[*Watcher]struct{})}
}

// Open loads the documents published before, and the keyring of the latest
// keyset. It fails with EINVALID without a root key, and when the stored
// keyset does not verify against it.
func (p *Publisher) Open(ctx context.Context) error {
	if len(p.root) != ed25519.PublicKeySize {
		return gateway.Errorf(gateway.EINVALID, "publisher: a root public key is required")
	}
	docs, err := loadDocuments(ctx, p.storage)
	if err != nil {
		return err
	}
	var keyring *gateway.Keyring
	if docs.keyset != nil {
		if keyring, err = gateway.OpenKeyset(docs.keyset.Raw, p.root); err != nil {
			return fmt.Errorf("published keyset: %w", err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return gateway.Errorf(gateway.EUNAVAILABLE, "publisher is closed")
	case p.open:
		return errors.New("publisher: opened twice")
	}
	p.docs, p.keyring, p.open = docs, keyring, true
	return nil
}

// Keyring returns the keys of the latest published keyset, or nil before
// any: central verifies tokens against it.
func (p *Publisher) Keyring() *gateway.Keyring {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keyring
}

// Publish verifies a signed document of the given kind, durably records it
// as the latest of its kind and scope (a freeze list also goes into the
// ledger's own freeze list, so central refuses frozen accounts), and sends
// it to every watcher it concerns. It returns the document and whether it
// changed anything. Publish refuses a document that does not verify or is
// invalid (EINVALID, as is one more than gateway.MaxVersionStep past the
// version published for its scope, or past 0 for the first), a version
// older than the one published for its scope
// (ESTALE), the same version with other content and a freeze delta that
// does not follow the latest freeze version (ECONFLICT); publishing the
// same document again changes nothing. The versions are checked against
// the storage in the transaction that records the document, so that two
// HQ processes over one database cannot both publish one version. Publish
// never waits for a watcher.
func (p *Publisher) Publish(ctx context.Context, kind gateway.DocumentKind, raw []byte) (Document, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.open || p.closed {
		return Document{}, false, gateway.Errorf(gateway.EUNAVAILABLE, "publisher is not open")
	}
	doc := Document{Kind: kind, Raw: bytes.Clone(raw), PublishedAt: stamp(p.Now())}
	var (
		held    *Document
		changed bool
		keyring *gateway.Keyring
	)
	err := p.storage.Update(ctx, func(tx Tx) error {
		held, changed, keyring = nil, false, p.keyring
		var (
			list *gateway.FreezeList
			err  error
		)
		if kind != gateway.DocumentKeyset {
			// Another HQ process may have published a newer keyset.
			ks, err := tx.Document(gateway.DocumentKeyset, "")
			if err != nil {
				return err
			}
			if ks != nil && (keyring == nil || ks.Version != keyring.Version) {
				if keyring, err = gateway.OpenKeyset(ks.Raw, p.root); err != nil {
					return fmt.Errorf("published keyset: %w", err)
				}
			}
		}
		switch kind {
		case gateway.DocumentKeyset:
			if keyring, err = gateway.OpenKeyset(raw, p.root); err != nil {
				return err
			}
			doc.Version = keyring.Version
			held, err = tx.Document(kind, "")
		case gateway.DocumentPolicy:
			var pol *gateway.Policy
			if pol, err = gateway.OpenPolicy(raw, p.root, keyring); err != nil {
				return err
			}
			doc.Version, doc.StoreID = pol.Version, pol.StoreID
			held, err = tx.Document(kind, pol.StoreID)
		case gateway.DocumentFreeze:
			if list, err = gateway.OpenFreezeList(raw, p.root, keyring); err != nil {
				return err
			}
			doc.Version, doc.Snapshot = list.Version, list.Snapshot
			held, err = tx.LatestFreeze()
		default:
			return gateway.Errorf(gateway.EINVALID, "unknown document kind %q", kind)
		}
		if err != nil {
			return err
		}
		if held != nil && held.Version == doc.Version {
			if bytes.Equal(held.Raw, doc.Raw) {
				return nil
			}
			return gateway.Errorf(gateway.ECONFLICT, "%s version %d is already published with other content", describe(doc), doc.Version)
		}
		if held != nil && held.Version > doc.Version && list == nil {
			return gateway.Errorf(gateway.ESTALE, "%s version %d is older than the published version %d", describe(doc), doc.Version, held.Version)
		}
		var heldVersion uint64
		if held != nil {
			heldVersion = held.Version
		}
		// From 0 on, so that no published version is beyond what can follow.
		if err := gateway.CheckVersionStep(describe(doc), heldVersion, doc.Version); err != nil {
			return err
		}
		if list == nil {
			changed = true
			return tx.PutDocument(&doc)
		}
		if _, err := gateway.FreezeFollows(heldVersion, list); err != nil {
			return err
		}
		if list.Snapshot {
			// Older entries are of no use to any store any more: one
			// behind the snapshot gets the snapshot.
			if err := tx.ClearFreezeLog(); err != nil {
				return err
			}
		}
		ok, err := tx.AppendFreeze(&doc)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("freeze list version %d: recorded by a concurrent transaction", doc.Version)
		}
		changed = true
		return applyFreeze(tx, list)
	})
	if err != nil {
		return Document{}, false, err
	}
	if !changed {
		return *held, false, nil
	}
	switch kind {
	case gateway.DocumentKeyset:
		p.docs.keyset = &doc
	case gateway.DocumentPolicy:
		p.docs.policies[doc.StoreID] = doc
	default:
		if doc.Snapshot {
			p.docs.freeze = nil
		}
		p.docs.freeze = append(p.docs.freeze, doc)
	}
	p.keyring = keyring
	for w := range p.watchers {
		if doc.StoreID != "" && doc.StoreID != w.storeID {
			continue
		}
		select {
		case w.c <- doc:
		default:
			p.drop(w, gateway.Errorf(gateway.EUNAVAILABLE, "watcher fell %d publications behind; reconnect and resume", cap(w.c)))
		}
	}
	return doc, true, nil
}

// describe names a document's kind and scope for messages.
func describe(d Document) string {
	if d.StoreID != "" {
		return fmt.Sprintf("%s for store %s", d.Kind, d.StoreID)
	}
	return string(d.Kind)
}

// Documents returns the latest published documents: the keyset, the
// chain-wide policy, each store's policy (by store id) and the latest
// freeze list.
func (p *Publisher) Documents() []Document {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Document
	if p.docs == nil {
		return nil
	}
	if p.docs.keyset != nil {
		out = append(out, *p.docs.keyset)
	}
	stores := make([]string, 0, len(p.docs.policies))
	for id := range p.docs.policies {
		stores = append(stores, id)
	}
	sort.Strings(stores) // the chain-wide policy, "", first
	for _, id := range stores {
		out = append(out, p.docs.policies[id])
	}
	if n := len(p.docs.freeze); n > 0 {
		out = append(out, p.docs.freeze[n-1])
	}
	return out
}

// Watch returns what store storeID lacks, given the versions it holds, and
// a watcher that receives every later publication for that store (the
// chain's documents and its own policy). What it lacks comes keyset first,
// then the chain-wide policy, the store's policy, and the freeze list: the
// latest snapshot and the deltas after it when the store is behind that
// snapshot, else the deltas after the store's version, in order. Nothing
// published is missed or sent twice between the two. The caller must Close
// the watcher.
func (p *Publisher) Watch(storeID string, have gateway.DocumentVersions) ([]Document, *Watcher) {
	p.mu.Lock()
	defer p.mu.Unlock()
	size := p.Buffer
	if size <= 0 {
		size = DefaultWatchBuffer
	}
	w := &Watcher{p: p, storeID: storeID, c: make(chan Document, size)}
	if !p.open || p.closed {
		w.err = gateway.Errorf(gateway.EUNAVAILABLE, "publisher is not open")
		close(w.c)
		return nil, w
	}
	var initial []Document
	if d := p.docs.keyset; d != nil && d.Version > have.Keyset {
		initial = append(initial, *d)
	}
	if d, ok := p.docs.policies[""]; ok && d.Version > have.Policy {
		initial = append(initial, d)
	}
	if d, ok := p.docs.policies[storeID]; ok && storeID != "" && d.Version > have.StorePolicy {
		initial = append(initial, d)
	}
	// The log holds the latest snapshot (if any) and the deltas after it,
	// in order: a store behind the snapshot gets all of it, any other the
	// deltas after its version.
	for i, d := range p.docs.freeze {
		if d.Version > have.Freeze {
			initial = append(initial, p.docs.freeze[i:]...)
			break
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
// gracefully; later Watch and Publish calls fail with EUNAVAILABLE. It
// waits for nothing (a Publish in flight finishes first), returns nil, and
// is safe to call more than once.
func (p *Publisher) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	// Deleting from a map while ranging over it is safe in Go.
	for w := range p.watchers {
		p.drop(w, gateway.Errorf(gateway.EUNAVAILABLE, "the central service is shutting down"))
	}
	return nil
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

// Watcher receives the publications made after its Watch call that concern
// its store.
type Watcher struct {
	p       *Publisher
	storeID string
	c       chan Document
	err     error // set, under p.mu, before c is closed
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
