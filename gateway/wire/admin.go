package wire

import (
	"crypto/sha256"
	"encoding/json"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
	storegatev1 "storegate/proto/storegate/v1"
)

// OutboxToProto converts an outbox listing, every account masked.
func OutboxToProto(l *gateway.OutboxListing) *storegatev1.ListOutboxResponse {
	out := &storegatev1.ListOutboxResponse{PendingTotal: l.Stats.Depth, DisputedTotal: l.Stats.Disputed}
	for i := range l.Pending {
		out.Pending = append(out.Pending, OutboxEntryToProto(&l.Pending[i]))
	}
	for i := range l.Disputed {
		d := &l.Disputed[i]
		out.Disputed = append(out.Disputed, &storegatev1.DisputedEntry{
			Settlement: OutboxEntryToProto(&d.Settlement),
			Message:    d.Message,
			RefusedAt:  timestamppb.New(d.RefusedAt),
		})
	}
	return out
}

// OutboxEntryToProto converts a queued settlement for listing, its account
// masked.
func OutboxEntryToProto(s *gateway.Settlement) *storegatev1.OutboxEntry {
	return &storegatev1.OutboxEntry{
		Seq:              s.Seq,
		SettlementId:     s.ID,
		Kind:             SettlementKindToProto(s.Kind),
		Mode:             ModeToProto(s.Mode),
		Lane:             s.Lane,
		PosTransactionId: s.POSTxnID,
		Amount:           s.Amount,
		Currency:         s.Currency,
		AccountHint:      MaskAccount(s.Account),
		AuthorizationId:  s.AuthorizationID,
		ReversesId:       s.ReversesID,
		CreatedAt:        timestamppb.New(s.CreatedAt),
	}
}

// AuditRecordToProto converts a stored audit record: its bytes as stored
// (copied), their SHA-256, and the record's time when it names one.
func AuditRecordToProto(seq uint64, raw []byte) *storegatev1.AuditRecord {
	sum := sha256.Sum256(raw)
	out := &storegatev1.AuditRecord{Seq: seq, Record: append([]byte(nil), raw...), Hash: sum[:]}
	var t struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal(raw, &t) == nil && !t.Time.IsZero() {
		out.Time = timestamppb.New(t.Time)
	}
	return out
}

// AppliedToProto converts the answer to a pushed signed document: its kind,
// the version now held, and whether it changed anything.
func AppliedToProto(kind gateway.DocumentKind, version uint64, changed bool) *storegatev1.AppliedDocument {
	return &storegatev1.AppliedDocument{Kind: DocumentKindToProto(kind), Version: version, Unchanged: !changed}
}

// PolicyToProto converts the policies g holds and what is in force.
func PolicyToProto(g *gateway.Gateway) *storegatev1.GetPolicyResponse {
	pol := g.Policy()
	freeze := g.FreezeList()
	out := &storegatev1.GetPolicyResponse{
		StoreId:                 g.StoreID,
		Mode:                    documentv1.StoreMode(pol.Mode()),
		MaxTokenLifetimeSeconds: int64(g.TokenLifetimeCap().Seconds()),
		KeysetVersion:           g.DocumentVersions().Keyset,
		FreezeVersion:           freeze.Version,
		FrozenAccounts:          uint64(freeze.Len()),
	}
	if pol.Chain != nil {
		out.Chain = pol.Chain.Proto()
	}
	if pol.Store != nil {
		out.Store = pol.Store.Proto()
	}
	return out
}
