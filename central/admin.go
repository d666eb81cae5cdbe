package central

import (
	"context"
	"log/slog"
	"sort"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

// AdminService is HQ's administration interface
// (storegate.v1.HQAdminService): documents signed elsewhere, by whoever
// holds the root key, are verified and published here, and the books are
// read. It must be served only where HQ's operators reach it, never to the
// stores.
type AdminService struct {
	storegatev1.UnimplementedHQAdminServiceServer

	// Publisher verifies and publishes the documents.
	Publisher *Publisher
	// Ledger holds the books GetBooks reads; without one GetBooks is
	// Unimplemented.
	Ledger *Ledger
	// Logger receives one line per publication; NewAdminService sets one
	// that discards them.
	Logger *slog.Logger
}

// NewAdminService returns HQ's administration interface over pub and
// ledger (nil: GetBooks is Unimplemented).
func NewAdminService(pub *Publisher, ledger *Ledger) *AdminService {
	return &AdminService{Publisher: pub, Ledger: ledger, Logger: discard}
}

// PublishDocument verifies a signed document and publishes it to every
// store it concerns.
func (s *AdminService) PublishDocument(ctx context.Context, req *storegatev1.PublishDocumentRequest) (*storegatev1.PublishDocumentResponse, error) {
	logger := s.logger()
	doc, changed, err := s.Publisher.Publish(ctx, wire.DocumentKindFromProto(req.GetKind()), req.GetDocument().GetCoseSign1())
	if err != nil {
		logger.WarnContext(ctx, "publication refused", "kind", req.GetKind().String(), "err", gateway.ErrorMessage(err))
		return nil, grpcError(ctx, logger, "publish document", err)
	}
	if changed {
		logger.InfoContext(ctx, "document published", "kind", describe(doc), "version", doc.Version,
			"snapshot", doc.Snapshot, "watchers", s.Publisher.Watchers())
	}
	return &storegatev1.PublishDocumentResponse{Published: publishedToProto(doc), Unchanged: !changed}, nil
}

// ListDocuments returns the latest published documents.
func (s *AdminService) ListDocuments(ctx context.Context, _ *storegatev1.ListDocumentsRequest) (*storegatev1.ListDocumentsResponse, error) {
	out := &storegatev1.ListDocumentsResponse{}
	for _, d := range s.Publisher.Documents() {
		out.Documents = append(out.Documents, publishedToProto(d))
	}
	return out, nil
}

// GetBooks reads the books (see Ledger.Books) and what does not add up in
// them (Books.Problems).
func (s *AdminService) GetBooks(ctx context.Context, _ *storegatev1.GetBooksRequest) (*storegatev1.GetBooksResponse, error) {
	if s.Ledger == nil {
		return nil, status.Error(codes.Unimplemented, "this HQ admin service serves no ledger")
	}
	books, err := s.Ledger.Books(ctx)
	if err != nil {
		return nil, grpcError(ctx, s.logger(), "get books", err)
	}
	return BooksToProto(books), nil
}

// logger returns the service's logger, or one that discards everything.
func (s *AdminService) logger() *slog.Logger {
	if s.Logger == nil {
		return discard
	}
	return s.Logger
}

// BooksToProto converts the books for HQ's operators: accounts in id
// order, the holds not captured yet in the ledger's order, the count of
// voided holds, every booked settlement, and Problems as text.
func BooksToProto(b *Books) *storegatev1.GetBooksResponse {
	out := &storegatev1.GetBooksResponse{}
	ids := make([]string, 0, len(b.Accounts))
	for id := range b.Accounts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		a := b.Accounts[id]
		out.Accounts = append(out.Accounts, &storegatev1.AccountBooks{
			Account: id, Currency: a.Currency, Balance: a.Balance, Funded: a.Funded, Debited: a.Debited,
			Credited: a.Credited, Held: a.Held, Captured: a.Captured, Voided: a.Voided,
		})
	}
	for _, a := range b.Authorizations {
		switch a.Status {
		case AuthHeld:
			out.Holds = append(out.Holds, &storegatev1.Hold{
				AuthorizationId: a.ID, StoreId: a.StoreID, Lane: a.Lane, PosTransactionId: a.POSTxnID,
				Account: a.Account, Amount: a.Amount, Currency: a.Currency, CreatedAt: timestamppb.New(a.Created),
			})
		case AuthVoided:
			out.VoidedHolds++
		}
	}
	for i := range b.Settlements {
		s := &b.Settlements[i]
		out.Settlements = append(out.Settlements, &storegatev1.BookedSettlement{
			Settlement: wire.SettlementToProto(&s.Settlement),
			Status:     wire.SettlementStatusToProto(s.Status),
			Message:    s.Message,
			BookedAt:   timestamppb.New(s.BookedAt),
			ReversedBy: s.ReversedBy,
		})
	}
	for _, p := range b.Problems() {
		out.Problems = append(out.Problems, p.Error())
	}
	return out
}

func publishedToProto(d Document) *storegatev1.PublishedDocument {
	return &storegatev1.PublishedDocument{
		Kind:        wire.DocumentKindToProto(d.Kind),
		Version:     d.Version,
		StoreId:     d.StoreID,
		Document:    &storegatev1.SignedDocument{CoseSign1: d.Raw},
		PublishedAt: timestamppb.New(d.PublishedAt),
	}
}
