package storetest

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"
	"time"

	"storegate/central"
	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
)

// Signer makes real signed documents with a root key. A document of a
// kind, scope, version and content is made once, so that the same call
// returns the same bytes.
type Signer struct {
	root  ed25519.PrivateKey
	token ed25519.PublicKey
	mu    sync.Mutex
	made  map[string][]byte
}

// NewSigner returns a signer with the root key root.
func NewSigner(root ed25519.PrivateKey) *Signer {
	pub, _, _ := gateway.GenerateKey()
	return &Signer{root: root, token: pub, made: make(map[string][]byte)}
}

// Doc returns the document of kind at version: a keyset naming one token
// key, a chain-wide policy, or a freeze-list snapshot freezing
// "acct-v<version>".
func (s *Signer) Doc(tb testing.TB, kind gateway.DocumentKind, version uint64) []byte {
	tb.Helper()
	switch kind {
	case gateway.DocumentPolicy:
		return s.Policy(tb, "", version)
	case gateway.DocumentFreeze:
		return s.Freeze(tb, version, true, &documentv1.FreezeEntry{Account: fmt.Sprintf("acct-v%d", version), Frozen: true})
	}
	return s.once(tb, fmt.Sprintf("keyset/%d", version), func() ([]byte, error) {
		return gateway.SignKeyset(s.root, gateway.NewKeyset(version, time.Unix(1794000000, 0), s.token))
	})
}

// Policy returns a policy for store (empty: the chain) at version.
func (s *Signer) Policy(tb testing.TB, store string, version uint64) []byte {
	tb.Helper()
	return s.once(tb, fmt.Sprintf("policy/%s/%d", store, version), func() ([]byte, error) {
		return gateway.SignPolicy(s.root, &documentv1.Policy{Version: version, StoreId: store, Mode: documentv1.StoreMode_STORE_MODE_NORMAL,
			Rules: []*documentv1.Rule{{Id: "tobacco", Categories: []string{"tobacco"}, MaxQuantityPerTransaction: int64(version)}}})
	})
}

// Freeze returns a freeze list of version with entries.
func (s *Signer) Freeze(tb testing.TB, version uint64, snapshot bool, entries ...*documentv1.FreezeEntry) []byte {
	tb.Helper()
	return s.once(tb, fmt.Sprintf("freeze/%d/%v/%v", version, snapshot, entries), func() ([]byte, error) {
		return gateway.SignFreezeList(s.root, &documentv1.FreezeList{Version: version, Snapshot: snapshot, Entries: entries})
	})
}

func (s *Signer) once(tb testing.TB, key string, sign func() ([]byte, error)) []byte {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if raw, ok := s.made[key]; ok {
		return raw
	}
	raw, err := sign()
	if err != nil {
		tb.Fatalf("sign %s: %v", key, err)
	}
	s.made[key] = raw
	return raw
}

// MustPublish publishes raw and fails the test unless it was published.
func MustPublish(tb testing.TB, p *central.Publisher, kind gateway.DocumentKind, raw []byte) central.Document {
	tb.Helper()
	d, changed, err := p.Publish(context.Background(), kind, raw)
	if err != nil || !changed {
		tb.Fatalf("Publish(%v): got changed %v, %v; want published", kind, changed, err)
	}
	return d
}
