package central

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// Service is the gRPC face of the central service
// (storegate.v1.CentralService) over a Ledger and a Publisher. Its handlers
// only translate between the wire and the ledger; the rules live in the
// ledger.
type Service struct {
	storegatev1.UnimplementedCentralServiceServer

	// Ledger holds the books.
	Ledger *Ledger
	// Publisher holds the signed documents that WatchPolicy streams.
	Publisher *Publisher
	// Keyring returns the token-signing keys tokens are verified against.
	// It is called once per request, so the keys may change at run time.
	Keyring func() *gateway.Keyring
	// Now is the clock tokens are checked against.
	Now func() time.Time
	// Logger receives one line per decision and settlement batch. It never
	// sees a full token or payment code.
	Logger *slog.Logger
}

// NewService returns a service over ledger and pub that verifies tokens
// against the keys keyring returns, with the system clock and a logger that
// discards everything.
func NewService(ledger *Ledger, pub *Publisher, keyring func() *gateway.Keyring) *Service {
	return &Service{
		Ledger:    ledger,
		Publisher: pub,
		Keyring:   keyring,
		Now:       time.Now,
		Logger:    discard,
	}
}

// Authorize decides a payment online (see Ledger.Authorize). A decline is a
// normal answer; a malformed request is InvalidArgument.
func (s *Service) Authorize(ctx context.Context, req *storegatev1.CentralServiceAuthorizeRequest) (*storegatev1.CentralServiceAuthorizeResponse, error) {
	creq := &gateway.CentralRequest{
		StoreID:    req.GetStoreId(),
		Lane:       req.GetLane(),
		POSTxnID:   req.GetPosTransactionId(),
		Credential: req.GetToken(),
		Amount:     req.GetAmount(),
		Currency:   req.GetCurrency(),
	}
	for _, l := range req.GetLines() {
		creq.Lines = append(creq.Lines, gateway.Line{
			SKU: l.GetSku(), Category: l.GetCategory(), Quantity: l.GetQuantity(), UnitPrice: l.GetUnitPrice(),
		})
	}
	var keys *gateway.Keyring
	if s.Keyring != nil {
		keys = s.Keyring()
	}
	res, err := s.Ledger.Authorize(creq, keys, s.now())
	if err != nil {
		return nil, grpcError(ctx, s.logger(), "authorize", err)
	}
	s.logger().InfoContext(ctx, "authorize",
		"store", creq.StoreID, "lane", creq.Lane, "txn", creq.POSTxnID,
		"credential", gateway.Fingerprint(creq.Credential), "amount", creq.Amount,
		"approved", res.Approved, "reason", res.Reason, "authorization", res.AuthorizationID)
	return &storegatev1.CentralServiceAuthorizeResponse{
		Approved:        res.Approved,
		Reason:          storegatev1.DeclineReason(res.Reason),
		AuthorizationId: res.AuthorizationID,
		Account:         res.Account,
		Message:         res.Message,
	}, nil
}

// settlementKinds and settlementStatuses translate between the wire enums
// and the domain. A kind missing here reaches the ledger as an unknown kind
// and is refused there.
var (
	settlementKinds = map[storegatev1.SettlementKind]gateway.SettlementKind{
		storegatev1.SettlementKind_SETTLEMENT_KIND_CAPTURE:  gateway.SettlementCapture,
		storegatev1.SettlementKind_SETTLEMENT_KIND_REVERSAL: gateway.SettlementReversal,
	}
	settlementStatuses = map[gateway.SettlementStatus]storegatev1.SettlementStatus{
		gateway.SettlementAccepted:  storegatev1.SettlementStatus_SETTLEMENT_STATUS_ACCEPTED,
		gateway.SettlementDuplicate: storegatev1.SettlementStatus_SETTLEMENT_STATUS_DUPLICATE,
		gateway.SettlementRefused:   storegatev1.SettlementStatus_SETTLEMENT_STATUS_REFUSED,
	}
	decisionModes = map[storegatev1.DecisionMode]gateway.Mode{
		storegatev1.DecisionMode_DECISION_MODE_ONLINE:  gateway.ModeOnline,
		storegatev1.DecisionMode_DECISION_MODE_OFFLINE: gateway.ModeOffline,
	}
)

// SubmitSettlements books a batch of settlements (see
// Ledger.SubmitSettlements) and acknowledges those it recorded.
func (s *Service) SubmitSettlements(ctx context.Context, req *storegatev1.SubmitSettlementsRequest) (*storegatev1.SubmitSettlementsResponse, error) {
	batch := make([]gateway.Settlement, 0, len(req.GetSettlements()))
	for _, p := range req.GetSettlements() {
		kind, ok := settlementKinds[p.GetKind()]
		if !ok {
			kind = gateway.SettlementKind(p.GetKind().String())
		}
		stl := gateway.Settlement{
			ID:              p.GetId(),
			Seq:             p.GetSeq(),
			Kind:            kind,
			StoreID:         p.GetStoreId(),
			Lane:            p.GetLane(),
			POSTxnID:        p.GetPosTransactionId(),
			AuthorizationID: p.GetAuthorizationId(),
			Account:         p.GetAccount(),
			TokenID:         p.GetTokenId(),
			Amount:          p.GetAmount(),
			Currency:        p.GetCurrency(),
			Mode:            decisionModes[p.GetMode()],
			ReversesID:      p.GetReversesId(),
		}
		if p.GetCreatedAt() != nil {
			stl.CreatedAt = p.GetCreatedAt().AsTime()
		}
		batch = append(batch, stl)
	}
	acks, err := s.Ledger.SubmitSettlements(req.GetStoreId(), batch, s.now())
	if err != nil {
		return nil, grpcError(ctx, s.logger(), "submit settlements", err)
	}
	resp := &storegatev1.SubmitSettlementsResponse{Acks: make([]*storegatev1.SettlementAck, 0, len(acks))}
	counts := make(map[gateway.SettlementStatus]int)
	for _, a := range acks {
		counts[a.Status]++
		resp.Acks = append(resp.Acks, &storegatev1.SettlementAck{
			SettlementId: a.ID, Status: settlementStatuses[a.Status], Message: a.Message,
		})
	}
	s.logger().InfoContext(ctx, "settlements", "store", req.GetStoreId(), "received", len(batch),
		"accepted", counts[gateway.SettlementAccepted], "duplicate", counts[gateway.SettlementDuplicate],
		"refused", counts[gateway.SettlementRefused], "waiting", len(batch)-len(acks))
	return resp, nil
}

// WatchPolicy sends the signed documents newer than the versions the store
// says it holds (see Publisher.Watch), then each new publication for that
// store, until the client goes away or the publisher closes. A watcher that falls behind is ended with
// Unavailable, so that it reconnects and resumes from its versions.
func (s *Service) WatchPolicy(req *storegatev1.WatchPolicyRequest, stream storegatev1.CentralService_WatchPolicyServer) error {
	ctx := stream.Context()
	if !gateway.ValidID(req.GetStoreId()) {
		return grpcError(ctx, s.logger(), "watch policy",
			gateway.Errorf(gateway.EINVALID, "store_id: want 1-64 characters of [A-Za-z0-9._:-]"))
	}
	initial, w := s.Publisher.Watch(req.GetStoreId(), Versions{
		Keyset:      req.GetKeysetVersion(),
		Policy:      req.GetPolicyVersion(),
		StorePolicy: req.GetStorePolicyVersion(),
		Freeze:      req.GetFreezeVersion(),
	})
	defer w.Close()
	s.logger().InfoContext(ctx, "policy watch", "store", req.GetStoreId(), "catching_up", len(initial))

	send := func(d Document) error {
		return stream.Send(&storegatev1.WatchPolicyResponse{
			Kind:        d.Kind,
			Version:     d.Version,
			Document:    &storegatev1.SignedDocument{CoseSign1: d.Raw},
			PublishedAt: timestamppb.New(d.PublishedAt),
		})
	}
	for _, d := range initial {
		if err := send(d); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case d, ok := <-w.C():
			if !ok {
				if err := w.Err(); err != nil {
					return grpcError(ctx, s.logger(), "watch policy", err)
				}
				return nil
			}
			if err := send(d); err != nil {
				return err
			}
		}
	}
}

// now returns the service's time, from the system clock when Now is unset.
func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// discard is the logger of a service without one.
var discard = slog.New(slog.DiscardHandler)

// logger returns the service's logger, or one that discards everything.
func (s *Service) logger() *slog.Logger {
	if s.Logger == nil {
		return discard
	}
	return s.Logger
}
