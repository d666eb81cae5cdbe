package grpcserver

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/gateway"
	"storegate/gateway/wire"
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
	res, err := srv.Gateway.Authorize(ctx, wire.AuthorizeRequestFromProto(in))
	if err != nil {
		return nil, wire.Status(err)
	}
	return wire.AuthorizeResultToProto(res), nil
}

// Reverse reverses an approved sale.
func (srv *Server) Reverse(ctx context.Context, in *storegatev1.ReverseRequest) (*storegatev1.ReverseResponse, error) {
	res, err := srv.Gateway.Reverse(ctx, wire.ReverseRequestFromProto(in))
	if err != nil {
		return nil, wire.Status(err)
	}
	return wire.ReverseResultToProto(res), nil
}

// GetStatus reports the gateway's state.
func (srv *Server) GetStatus(ctx context.Context, _ *storegatev1.GetStatusRequest) (*storegatev1.GetStatusResponse, error) {
	st, err := srv.Gateway.Status(ctx)
	if err != nil {
		return nil, wire.Status(err)
	}
	now := time.Now
	if srv.Now != nil {
		now = srv.Now
	}
	out := wire.GatewayStatusToProto(st, now())
	out.Version = srv.Version
	out.StartedAt = timestamppb.New(srv.StartedAt)
	if srv.Scans != nil {
		for _, sc := range srv.Scans.Scanners() {
			out.Scanners = append(out.Scanners, wire.ScannerToProto(sc))
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
		return wire.Status(err)
	}
	// Headers go out once the subscription exists, so a client that waits
	// for them knows no scan from now on can be missed.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	for ev := range events {
		if err := stream.Send(&storegatev1.WatchScansResponse{Scan: wire.ScanToProto(ev)}); err != nil {
			return err
		}
	}
	return stream.Context().Err()
}

// ApplyKeyset installs a keyset signed by the root key.
func (srv *Server) ApplyKeyset(ctx context.Context, in *storegatev1.ApplyKeysetRequest) (*storegatev1.ApplyKeysetResponse, error) {
	version, changed, err := srv.Gateway.ApplyKeyset(ctx, in.GetDocument().GetCoseSign1())
	if err != nil {
		return nil, wire.Status(err)
	}
	return &storegatev1.ApplyKeysetResponse{Applied: wire.AppliedToProto(gateway.DocumentKeyset, version, changed)}, nil
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
			recs = append(recs, wire.AuditRecordToProto(seq, raw))
			return nil
		})
		if err != nil && err != errStopScan {
			return wire.Status(err)
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
