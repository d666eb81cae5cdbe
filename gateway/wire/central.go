package wire

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// CentralRequestToProto converts the gateway's question to central.
func CentralRequestToProto(req *gateway.CentralRequest) *storegatev1.CentralServiceAuthorizeRequest {
	return &storegatev1.CentralServiceAuthorizeRequest{
		StoreId:          req.StoreID,
		Lane:             req.Lane,
		PosTransactionId: req.POSTxnID,
		Token:            req.Credential,
		Amount:           req.Amount,
		Currency:         req.Currency,
		Lines:            LinesToProto(req.Lines),
	}
}

// CentralRequestFromProto converts a gateway's question, as central reads
// it. Central validates it.
func CentralRequestFromProto(in *storegatev1.CentralServiceAuthorizeRequest) *gateway.CentralRequest {
	return &gateway.CentralRequest{
		StoreID:    in.GetStoreId(),
		Lane:       in.GetLane(),
		POSTxnID:   in.GetPosTransactionId(),
		Credential: in.GetToken(),
		Amount:     in.GetAmount(),
		Currency:   in.GetCurrency(),
		Lines:      LinesFromProto(in.GetLines()),
	}
}

// CentralResultToProto converts central's answer.
func CentralResultToProto(res *gateway.CentralResult) *storegatev1.CentralServiceAuthorizeResponse {
	return &storegatev1.CentralServiceAuthorizeResponse{
		Approved:        res.Approved,
		Reason:          ReasonToProto(res.Reason),
		AuthorizationId: res.AuthorizationID,
		Account:         res.Account,
		Message:         res.Message,
	}
}

// CentralResultFromProto converts central's answer, as the gateway reads
// it.
func CentralResultFromProto(in *storegatev1.CentralServiceAuthorizeResponse) *gateway.CentralResult {
	return &gateway.CentralResult{
		Approved:        in.GetApproved(),
		Reason:          ReasonFromProto(in.GetReason()),
		AuthorizationID: in.GetAuthorizationId(),
		Account:         in.GetAccount(),
		Message:         in.GetMessage(),
	}
}

// SettlementToProto converts a settlement for central, in full: central
// books it and checks an offline capture's token id.
func SettlementToProto(s *gateway.Settlement) *storegatev1.Settlement {
	return &storegatev1.Settlement{
		Id:               s.ID,
		StoreId:          s.StoreID,
		Seq:              s.Seq,
		Kind:             SettlementKindToProto(s.Kind),
		Lane:             s.Lane,
		PosTransactionId: s.POSTxnID,
		AuthorizationId:  s.AuthorizationID,
		Account:          s.Account,
		TokenId:          s.TokenID,
		Amount:           s.Amount,
		Currency:         s.Currency,
		Mode:             ModeToProto(s.Mode),
		CreatedAt:        timestamppb.New(s.CreatedAt),
		ReversesId:       s.ReversesID,
	}
}

// SettlementFromProto converts a settlement as central reads it. A kind
// this build does not know keeps its wire name, for central to refuse.
func SettlementFromProto(p *storegatev1.Settlement) gateway.Settlement {
	s := gateway.Settlement{
		ID:              p.GetId(),
		Seq:             p.GetSeq(),
		Kind:            SettlementKindFromProto(p.GetKind()),
		StoreID:         p.GetStoreId(),
		Lane:            p.GetLane(),
		POSTxnID:        p.GetPosTransactionId(),
		AuthorizationID: p.GetAuthorizationId(),
		Account:         p.GetAccount(),
		TokenID:         p.GetTokenId(),
		Amount:          p.GetAmount(),
		Currency:        p.GetCurrency(),
		Mode:            ModeFromProto(p.GetMode()),
		ReversesID:      p.GetReversesId(),
	}
	if p.GetCreatedAt() != nil {
		s.CreatedAt = p.GetCreatedAt().AsTime()
	}
	return s
}

// SubmitSettlementsToProto converts a store's batch of settlements.
func SubmitSettlementsToProto(storeID string, batch []gateway.Settlement) *storegatev1.SubmitSettlementsRequest {
	in := &storegatev1.SubmitSettlementsRequest{StoreId: storeID, Settlements: make([]*storegatev1.Settlement, len(batch))}
	for i := range batch {
		in.Settlements[i] = SettlementToProto(&batch[i])
	}
	return in
}

// SubmitSettlementsFromProto converts a store's batch, as central reads it.
func SubmitSettlementsFromProto(in *storegatev1.SubmitSettlementsRequest) []gateway.Settlement {
	batch := make([]gateway.Settlement, 0, len(in.GetSettlements()))
	for _, p := range in.GetSettlements() {
		batch = append(batch, SettlementFromProto(p))
	}
	return batch
}

// AcksToProto converts central's acknowledgements.
func AcksToProto(acks []gateway.SettlementAck) *storegatev1.SubmitSettlementsResponse {
	out := &storegatev1.SubmitSettlementsResponse{Acks: make([]*storegatev1.SettlementAck, 0, len(acks))}
	for _, a := range acks {
		out.Acks = append(out.Acks, &storegatev1.SettlementAck{
			SettlementId: a.ID, Status: SettlementStatusToProto(a.Status), Message: a.Message,
		})
	}
	return out
}

// AcksFromProto converts central's acknowledgements, as the gateway reads
// them. An ack with a status this build does not know is left out, so that
// its settlement stays queued rather than being dropped.
func AcksFromProto(res *storegatev1.SubmitSettlementsResponse) []gateway.SettlementAck {
	acks := make([]gateway.SettlementAck, 0, len(res.GetAcks()))
	for _, a := range res.GetAcks() {
		st, ok := SettlementStatusFromProto(a.GetStatus())
		if !ok {
			continue
		}
		acks = append(acks, gateway.SettlementAck{ID: a.GetSettlementId(), Status: st, Message: a.GetMessage()})
	}
	return acks
}

// WatchPolicyToProto converts the opening of a store's policy stream: the
// store and the versions of HQ's documents it holds.
func WatchPolicyToProto(storeID string, have gateway.DocumentVersions) *storegatev1.WatchPolicyRequest {
	return &storegatev1.WatchPolicyRequest{
		StoreId:            storeID,
		KeysetVersion:      have.Keyset,
		PolicyVersion:      have.Policy,
		StorePolicyVersion: have.StorePolicy,
		FreezeVersion:      have.Freeze,
	}
}

// WatchPolicyFromProto converts the opening of a policy stream, as central
// reads it: the store and the versions it holds.
func WatchPolicyFromProto(in *storegatev1.WatchPolicyRequest) (string, gateway.DocumentVersions) {
	return in.GetStoreId(), gateway.DocumentVersions{
		Keyset:      in.GetKeysetVersion(),
		Policy:      in.GetPolicyVersion(),
		StorePolicy: in.GetStorePolicyVersion(),
		Freeze:      in.GetFreezeVersion(),
	}
}

// PublishedDocumentToProto converts one document of a policy stream,
// published at publishedAt.
func PublishedDocumentToProto(d *gateway.PublishedDocument, publishedAt time.Time) *storegatev1.WatchPolicyResponse {
	return &storegatev1.WatchPolicyResponse{
		Kind:        DocumentKindToProto(d.Kind),
		Version:     d.Version,
		Document:    &storegatev1.SignedDocument{CoseSign1: d.Raw},
		PublishedAt: timestamppb.New(publishedAt),
	}
}

// PublishedDocumentFromProto converts one document of a policy stream, as
// the gateway reads it. A kind this build does not know keeps its wire
// name, for the gateway to refuse and log.
func PublishedDocumentFromProto(m *storegatev1.WatchPolicyResponse) *gateway.PublishedDocument {
	return &gateway.PublishedDocument{
		Kind:    DocumentKindFromProto(m.GetKind()),
		Version: m.GetVersion(),
		Raw:     m.GetDocument().GetCoseSign1(),
	}
}
