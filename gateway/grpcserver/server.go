package grpcserver

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// Server serves PaymentService and AdminService over a Gateway.
type Server struct {
	storegatev1.UnimplementedPaymentServiceServer
	storegatev1.UnimplementedAdminServiceServer

	Gateway *gateway.Gateway
	// Store is read by ExportAudit.
	Store gateway.Store
	// Scans streams the lanes' scanners; nil when the gateway has none.
	Scans gateway.ScanFeed
	// Version is the daemon's version, for GetStatus.
	Version   string
	StartedAt time.Time
	Now       func() time.Time
}

// Register registers both services on s.
func (srv *Server) Register(s grpc.ServiceRegistrar) {
	storegatev1.RegisterPaymentServiceServer(s, srv)
	storegatev1.RegisterAdminServiceServer(s, srv)
}

// Authorize decides a basket.
func (srv *Server) Authorize(ctx context.Context, in *storegatev1.AuthorizeRequest) (*storegatev1.AuthorizeResponse, error) {
	req := &gateway.AuthorizeRequest{
		Lane:     in.GetLane(),
		POSTxnID: in.GetPosTransactionId(),
		Lines:    LinesFromProto(in.GetLines()),
		Total:    in.GetTotal(),
		Currency: in.GetCurrency(),
		Token:    in.GetToken(),
		ScanID:   in.GetScanId(),
	}
	res, err := srv.Gateway.Authorize(ctx, req)
	if err != nil {
		return nil, Status(err)
	}
	return &storegatev1.AuthorizeResponse{Decision: decisionToProto(&res.Decision), Replayed: res.Replayed}, nil
}

// Reverse reverses an approved sale.
func (srv *Server) Reverse(ctx context.Context, in *storegatev1.ReverseRequest) (*storegatev1.ReverseResponse, error) {
	res, err := srv.Gateway.Reverse(ctx, &gateway.ReverseRequest{Lane: in.GetLane(), POSTxnID: in.GetPosTransactionId(), Reason: in.GetReason()})
	if err != nil {
		return nil, Status(err)
	}
	return &storegatev1.ReverseResponse{
		ReversalId:      res.Reversal.ID,
		Amount:          res.Reversal.Amount,
		Currency:        res.Reversal.Currency,
		AlreadyReversed: res.AlreadyReversed,
	}, nil
}

// GetStatus reports the gateway's state.
func (srv *Server) GetStatus(ctx context.Context, _ *storegatev1.GetStatusRequest) (*storegatev1.GetStatusResponse, error) {
	st, err := srv.Gateway.Status(ctx)
	if err != nil {
		return nil, Status(err)
	}
	now := time.Now
	if srv.Now != nil {
		now = srv.Now
	}
	out := &storegatev1.GetStatusResponse{
		StoreId:             st.StoreID,
		Version:             srv.Version,
		StartedAt:           timestamppb.New(srv.StartedAt),
		CentralReachable:    st.CentralReachable,
		OutboxDepth:         st.Outbox.Depth,
		OfflineExposure:     st.Outbox.OfflineExposure,
		KeysetVersion:       st.KeysetVersion,
		AuditRecords:        st.AuditRecords,
		DisputedSettlements: st.Outbox.Disputed,
		CentralState:        centralStateOf[st.Breaker.State],
		BreakerOpened:       st.Breaker.Opened,

		OfflineMaxAmountPerTransaction: st.OfflineCaps.MaxAmountPerTransaction,
		OfflineMaxAmountPerAccount:     st.OfflineCaps.MaxAmountPerAccount,
		OfflineMaxStoreExposure:        st.OfflineCaps.MaxStoreExposure,
	}
	if !st.Breaker.Since.IsZero() {
		out.CentralStateSince = timestamppb.New(st.Breaker.Since)
	}
	docs := st.Documents
	out.PolicyVersion, out.StorePolicyVersion, out.FreezeVersion = docs.Policy, docs.StorePolicy, docs.Freeze
	if !st.LastCentralContact.IsZero() {
		out.LastCentralContact = timestamppb.New(st.LastCentralContact)
	}
	if !st.Outbox.Oldest.IsZero() {
		out.OutboxOldestAge = durationpb.New(now().Sub(st.Outbox.Oldest))
	}
	if srv.Scans != nil {
		for _, sc := range srv.Scans.Scanners() {
			out.Scanners = append(out.Scanners, scannerToProto(sc))
		}
	}
	return out, nil
}

// WatchScans streams a lane's scans to its POS. Payment credentials travel
// only as a scan id and a masked fingerprint.
func (srv *Server) WatchScans(in *storegatev1.WatchScansRequest, stream grpc.ServerStreamingServer[storegatev1.WatchScansResponse]) error {
	if srv.Scans == nil {
		return status.Error(codes.FailedPrecondition, "this gateway has no scanners configured")
	}
	if !gateway.ValidID(in.GetLane()) {
		return status.Error(codes.InvalidArgument, "lane: malformed")
	}
	events, err := srv.Scans.WatchScans(stream.Context(), in.GetLane())
	if err != nil {
		return Status(err)
	}
	// Headers go out once the subscription exists, so a client that waits
	// for them knows no scan from now on can be missed.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for ev := range events {
		if err := stream.Send(&storegatev1.WatchScansResponse{Scan: scanToProto(ev)}); err != nil {
			return err
		}
	}
	return stream.Context().Err()
}

// ApplyKeyset installs a keyset signed by the root key.
func (srv *Server) ApplyKeyset(ctx context.Context, in *storegatev1.ApplyKeysetRequest) (*storegatev1.ApplyKeysetResponse, error) {
	version, changed, err := srv.Gateway.ApplyKeyset(ctx, in.GetDocument().GetCoseSign1())
	if err != nil {
		return nil, Status(err)
	}
	return &storegatev1.ApplyKeysetResponse{Applied: &storegatev1.AppliedDocument{
		Kind:      storegatev1.DocumentKind_DOCUMENT_KIND_KEYSET,
		Version:   version,
		Unchanged: !changed,
	}}, nil
}

// ExportAudit streams the audit log as stored, so the client verifies the
// chain itself.
func (srv *Server) ExportAudit(in *storegatev1.ExportAuditRequest, stream grpc.ServerStreamingServer[storegatev1.ExportAuditResponse]) error {
	ctx := stream.Context()
	from := max(in.GetFromSeq(), 1)
	// Records are copied out in pages and sent outside the read
	// transaction, so that a slow client never holds the store open.
	const page = 256
	for {
		var recs []*storegatev1.AuditRecord
		err := srv.Store.ScanAudit(ctx, from, func(seq uint64, raw []byte) error {
			if len(recs) == page {
				return errStopScan
			}
			recs = append(recs, auditToProto(seq, raw))
			return nil
		})
		if err != nil && err != errStopScan {
			return Status(err)
		}
		for _, r := range recs {
			if err := stream.Send(&storegatev1.ExportAuditResponse{Record: r}); err != nil {
				return err
			}
		}
		if len(recs) < page {
			return nil
		}
		from = recs[len(recs)-1].Seq + 1
	}
}
