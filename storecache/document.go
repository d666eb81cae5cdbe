package storecache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
)

// documentRecord is a documents bucket value.
type documentRecord struct {
	Version uint64 `json:"version"`
	Raw     []byte `json:"raw"`
}

// LoadDocument returns the signed document of a kind that the store holds,
// with its version; nil and 0 when it holds none. The bytes are the
// caller's.
func (s *Store) LoadDocument(ctx context.Context, kind gateway.DocumentKind) ([]byte, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	var rec documentRecord
	found := false
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDocuments).Get([]byte(kind))
		if v == nil {
			return nil
		}
		found = true
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("decode %s document: %w", kind, err)
		}
		return nil
	})
	if err != nil || !found {
		return nil, 0, err
	}
	return rec.Raw, rec.Version, nil
}

// SaveDocument durably stores a signed document. It returns an ESTALE error
// naming both versions when the store holds a higher version (no rollback),
// false and no error when it holds this version already, and true when it
// stored raw. Version 0, an empty kind, or a document outside 1 byte to
// gateway.MaxDocumentSize is EINVALID.
func (s *Store) SaveDocument(ctx context.Context, kind gateway.DocumentKind, version uint64, raw []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	switch {
	case kind == "":
		return false, gateway.Errorf(gateway.EINVALID, "save document: no kind given")
	case version == 0:
		return false, gateway.Errorf(gateway.EINVALID, "save %s document: version must be at least 1", kind)
	case len(raw) == 0 || len(raw) > gateway.MaxDocumentSize:
		return false, gateway.Errorf(gateway.EINVALID, "save %s document: %d bytes, want 1 to %d", kind, len(raw), gateway.MaxDocumentSize)
	}
	enc, err := json.Marshal(&documentRecord{Version: version, Raw: raw})
	if err != nil {
		return false, fmt.Errorf("encode %s document: %w", kind, err)
	}
	stored := false
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDocuments)
		if v := b.Get([]byte(kind)); v != nil {
			var held documentRecord
			if err := json.Unmarshal(v, &held); err != nil {
				return fmt.Errorf("decode held %s document: %w", kind, err)
			}
			switch {
			case held.Version > version:
				return gateway.Errorf(gateway.ESTALE, "%s document version %d is older than the held version %d", kind, version, held.Version)
			case held.Version == version:
				if !bytes.Equal(held.Raw, raw) {
					s.logger.Warn("document with a held version but other bytes ignored", "kind", string(kind), "version", version)
				}
				return nil
			}
		}
		if err := b.Put([]byte(kind), enc); err != nil {
			return fmt.Errorf("store %s document: %w", kind, err)
		}
		stored = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return stored, nil
}
