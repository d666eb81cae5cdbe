package central

import (
	"context"
	"log/slog"

	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

// AdminService is HQ's administration interface
// (storegate.v1.HQAdminService): documents signed elsewhere, by whoever
// holds the root key, are verified and published here. It must be served
// only where HQ's operators reach it, never to the stores.
type AdminService struct {
	storegatev1.UnimplementedHQAdminServiceServer

	Publisher *Publisher
	// Logger receives one line per publication.
	Logger *slog.Logger
}

// PublishDocument verifies a signed document and publishes it to every
// store it concerns.
func (s *AdminService) PublishDocument(ctx context.Context, req *storegatev1.PublishDocumentRequest) (*storegatev1.PublishDocumentResponse, error) {
	logger := s.Logger
	if logger == nil {
		logger = discard
	}
	doc, changed, err := s.Publisher.Publish(wire.DocumentKindFromProto(req.GetKind()), req.GetDocument().GetCoseSign1())
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

func publishedToProto(d Document) *storegatev1.PublishedDocument {
	return &storegatev1.PublishedDocument{
		Kind:        wire.DocumentKindToProto(d.Kind),
		Version:     d.Version,
		StoreId:     d.StoreID,
		Document:    &storegatev1.SignedDocument{CoseSign1: d.Raw},
		PublishedAt: timestamppb.New(d.PublishedAt),
	}
}
