package central

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

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

// storedDocument is a documents or freeze_log bucket record.
type storedDocument struct {
	Version     uint64    `json:"version"`
	StoreID     string    `json:"store_id,omitempty"`
	Snapshot    bool      `json:"snapshot,omitempty"`
	Raw         []byte    `json:"raw"`
	PublishedAt time.Time `json:"published_at"`
}

// documentKey is the documents bucket's key of the latest keyset or policy
// of a scope: the kind, then "/" and the store id for a store's policy.
func documentKey(name gateway.DocumentKind, storeID string) []byte {
	if storeID == "" {
		return []byte(name)
	}
	return []byte(string(name) + "/" + storeID)
}

func (d Document) stored() storedDocument {
	return storedDocument{Version: d.Version, StoreID: d.StoreID, Snapshot: d.Snapshot, Raw: d.Raw, PublishedAt: d.PublishedAt.UTC()}
}

func (s storedDocument) document(kind gateway.DocumentKind) Document {
	return Document{Kind: kind, Version: s.Version, StoreID: s.StoreID, Snapshot: s.Snapshot, Raw: s.Raw, PublishedAt: s.PublishedAt}
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
func (l *Ledger) loadDocuments() (*publishedDocuments, error) {
	docs := &publishedDocuments{policies: make(map[string]Document)}
	err := l.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(documentsBucket).ForEach(func(k, v []byte) error {
			var sd storedDocument
			if err := decodeJSON(v, &sd); err != nil {
				return fmt.Errorf("document %s: %w", k, err)
			}
			name, _, _ := strings.Cut(string(k), "/")
			switch gateway.DocumentKind(name) {
			case gateway.DocumentKeyset:
				d := sd.document(gateway.DocumentKeyset)
				docs.keyset = &d
			case gateway.DocumentPolicy:
				docs.policies[sd.StoreID] = sd.document(gateway.DocumentPolicy)
			}
			// Freeze lists live in the freeze log.
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(freezeLogBucket).ForEach(func(k, v []byte) error {
			var sd storedDocument
			if err := decodeJSON(v, &sd); err != nil {
				return fmt.Errorf("freeze log %x: %w", k, err)
			}
			docs.freeze = append(docs.freeze, sd.document(gateway.DocumentFreeze))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load documents: %w", err)
	}
	return docs, nil
}

// saveDocument durably records doc as the latest of its kind and scope,
// and for a freeze list applies it to the ledger's freeze list and the
// freeze log, in one transaction. The caller has checked the version.
func (l *Ledger) saveDocument(doc Document, list *gateway.FreezeList) error {
	return l.db.Update(func(tx *bolt.Tx) error {
		if list == nil {
			return putJSON(tx.Bucket(documentsBucket), documentKey(doc.Kind, doc.StoreID), doc.stored())
		}
		log := tx.Bucket(freezeLogBucket)
		if list.Snapshot {
			// Older entries are of no use to any store any more: one
			// behind the snapshot gets the snapshot.
			var old [][]byte
			_ = log.ForEach(func(k, _ []byte) error {
				old = append(old, bytes.Clone(k))
				return nil
			})
			for _, k := range old {
				if err := log.Delete(k); err != nil {
					return err
				}
			}
		}
		if err := putJSON(log, binary.BigEndian.AppendUint64(nil, doc.Version), doc.stored()); err != nil {
			return err
		}
		return applyFreeze(tx, list)
	})
}

// Publisher verifies HQ's signed documents, persists them in the ledger and
// hands each new publication to the stores' watchers. A watcher that falls
// behind is dropped rather than allowed to slow Publish down. Create it with
// NewPublisher, set its exported fields, then Open it; Close ends every
// watch.
type Publisher struct {
	// Buffer is each watcher's channel size; NewPublisher sets
	// DefaultWatchBuffer, and zero means it too.
	Buffer int
	// Now stamps publications; NewPublisher sets time.Now.
	Now func() time.Time

	ledger   *Ledger
	root     ed25519.PublicKey
	mu       sync.Mutex
	docs     *publishedDocuments // nil until Open
	keyring  *gateway.Keyring
	watchers map[*Watcher]struct{}
	closed   bool
}

// NewPublisher returns a publisher over the documents the ledger holds,
// trusting root, HQ's root public key: every document is verified against
// it (and against the policy keys of the latest keyset) before it is
// published. It reads nothing until Open.
func NewPublisher(l *Ledger, root ed25519.PublicKey) *Publisher {
	return &Publisher{Buffer: DefaultWatchBuffer, Now: time.Now, ledger: l, root: root, watchers: make(map[*Watcher]struct{})}
}

// Open loads the documents the ledger holds. It fails when the root key is
// missing, when the ledger cannot be read, when the published keyset does
// not verify, and when the publisher is open already or closed.
func (p *Publisher) Open(ctx context.Context) error {
	if len(p.root) != ed25519.PublicKeySize {
		return gateway.Errorf(gateway.EINVALID, "publisher: a root public key is required")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return gateway.Errorf(gateway.EUNAVAILABLE, "open publisher: it is closed")
	case p.docs != nil:
		return errors.New("open publisher: it is open already")
	}
	docs, err := p.ledger.loadDocuments()
	if err != nil {
		return err
	}
	var keyring *gateway.Keyring
	if docs.keyset != nil {
		if keyring, err = gateway.OpenKeyset(docs.keyset.Raw, p.root); err != nil {
			return fmt.Errorf("published keyset: %w", err)
		}
	}
	p.docs, p.keyring = docs, keyring
	return nil
}

// errNotOpen is the cause of the EUNAVAILABLE error of a publisher used
// before Open.
var errNotOpen = errors.New("publisher is not open")

// unavailable says why the publisher cannot publish or watch now, or nil
// when it can. p.mu must be held.
func (p *Publisher) unavailable() error {
	switch {
	case p.closed:
		return gateway.Errorf(gateway.EUNAVAILABLE, "publisher is closed")
	case p.docs == nil:
		return &gateway.Error{Code: gateway.EUNAVAILABLE, Message: errNotOpen.Error(), Err: errNotOpen}
	}
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
// same document again changes nothing. Publish never waits for a watcher.
func (p *Publisher) Publish(kind gateway.DocumentKind, raw []byte) (Document, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.unavailable(); err != nil {
		return Document{}, false, err
	}
	doc := Document{Kind: kind, Raw: bytes.Clone(raw), PublishedAt: p.Now().UTC()}
	var (
		held    *Document
		list    *gateway.FreezeList
		keyring *gateway.Keyring
		err     error
	)
	switch kind {
	case gateway.DocumentKeyset:
		if keyring, err = gateway.OpenKeyset(raw, p.root); err != nil {
			return Document{}, false, err
		}
		doc.Version, held = keyring.Version, p.docs.keyset
	case gateway.DocumentPolicy:
		pol, err := gateway.OpenPolicy(raw, p.root, p.keyring)
		if err != nil {
			return Document{}, false, err
		}
		doc.Version, doc.StoreID = pol.Version, pol.StoreID
		if d, ok := p.docs.policies[pol.StoreID]; ok {
			held = &d
		}
	case gateway.DocumentFreeze:
		if list, err = gateway.OpenFreezeList(raw, p.root, p.keyring); err != nil {
			return Document{}, false, err
		}
		doc.Version, doc.Snapshot = list.Version, list.Snapshot
		if n := len(p.docs.freeze); n > 0 {
			held = &p.docs.freeze[n-1]
		}
	default:
		return Document{}, false, gateway.Errorf(gateway.EINVALID, "unknown document kind %q", kind)
	}
	if held != nil && held.Version == doc.Version {
		if bytes.Equal(held.Raw, doc.Raw) {
			return *held, false, nil
		}
		return Document{}, false, gateway.Errorf(gateway.ECONFLICT, "%s version %d is already published with other content", describe(doc), doc.Version)
	}
	var heldVersion uint64
	if held != nil {
		heldVersion = held.Version
	}
	// From 1 on, so that no published version is beyond what can follow.
	if err := gateway.CheckVersionStep(describe(doc), heldVersion, doc.Version); err != nil {
		return Document{}, false, err
	}
	if list != nil {
		if _, err := gateway.FreezeFollows(heldVersion, list); err != nil {
			return Document{}, false, err
		}
	} else if held != nil && held.Version > doc.Version {
		return Document{}, false, gateway.Errorf(gateway.ESTALE, "%s version %d is older than the published version %d", describe(doc), doc.Version, held.Version)
	}
	if err := p.ledger.saveDocument(doc, list); err != nil {
		return Document{}, false, err
	}
	switch kind {
	case gateway.DocumentKeyset:
		p.docs.keyset, p.keyring = &doc, keyring
	case gateway.DocumentPolicy:
		p.docs.policies[doc.StoreID] = doc
	default:
		if doc.Snapshot {
			p.docs.freeze = nil
		}
		p.docs.freeze = append(p.docs.freeze, doc)
	}
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
	if err := p.unavailable(); err != nil {
		w.err = err
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
// waits for nothing, so it always returns nil and ignores ctx. It is safe
// to call more than once, and before Open.
func (p *Publisher) Close(ctx context.Context) error {
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
