package central

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/status"

	"storegate/gateway"
	"storegate/gateway/wire"
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
	creq := wire.CentralRequestFromProto(req)
	var keys *gateway.Keyring
	if s.Keyring != nil {
		keys = s.Keyring()
	}
	res, err := s.Ledger.Authorize(ctx, creq, keys, s.now())
	if err != nil {
		return nil, grpcError(ctx, s.logger(), "authorize", err)
	}
	s.logger().InfoContext(ctx, "authorize",
		"store", creq.StoreID, "lane", creq.Lane, "txn", creq.POSTxnID,
		"credential", gateway.Fingerprint(creq.Credential), "amount", creq.Amount,
		"approved", res.Approved, "reason", res.Reason, "authorization", res.AuthorizationID)
	return wire.CentralResultToProto(res), nil
}

// SubmitSettlements books a batch of settlements (see
// Ledger.SubmitSettlements) and acknowledges those it recorded.
func (s *Service) SubmitSettlements(ctx context.Context, req *storegatev1.SubmitSettlementsRequest) (*storegatev1.SubmitSettlementsResponse, error) {
	batch := wire.SubmitSettlementsFromProto(req)
	acks, err := s.Ledger.SubmitSettlements(ctx, req.GetStoreId(), batch, s.now())
	if err != nil {
		return nil, grpcError(ctx, s.logger(), "submit settlements", err)
	}
	counts := make(map[gateway.SettlementStatus]int)
	for _, a := range acks {
		counts[a.Status]++
	}
	s.logger().InfoContext(ctx, "settlements", "store", req.GetStoreId(), "received", len(batch),
		"accepted", counts[gateway.SettlementAccepted], "duplicate", counts[gateway.SettlementDuplicate],
		"refused", counts[gateway.SettlementRefused], "waiting", len(batch)-len(acks))
	return wire.AcksToProto(acks), nil
}

// WatchPolicy sends the signed documents newer than the versions the store
// says it holds (see Publisher.Watch), then each new publication for that
// store, until the client goes away or the publisher closes. A watcher that falls behind is ended with
// Unavailable, so that it reconnects and resumes from its versions.
func (s *Service) WatchPolicy(req *storegatev1.WatchPolicyRequest, stream storegatev1.CentralService_WatchPolicyServer) error {
	ctx := stream.Context()
	storeID, have := wire.WatchPolicyFromProto(req)
	if !gateway.ValidID(storeID) {
		return grpcError(ctx, s.logger(), "watch policy",
			gateway.Errorf(gateway.EINVALID, "store_id: want 1-64 characters of [A-Za-z0-9._:-]"))
	}
	initial, w := s.Publisher.Watch(storeID, have)
	defer w.Close()
	s.logger().InfoContext(ctx, "policy watch", "store", storeID, "catching_up", len(initial))
	// Headers now, before any document: the gateway counts a stream HQ
	// took as contact, even when HQ has nothing new for it.
	if err := stream.SendHeader(nil); err != nil {
		return err
	}

	send := func(d Document) error {
		return stream.Send(wire.PublishedDocumentToProto(&gateway.PublishedDocument{Kind: d.Kind, Version: d.Version, Raw: d.Raw}, d.PublishedAt))
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
