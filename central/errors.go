package central

import (
	"context"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway"
)

// grpcCodes is the one table from the domain's error codes to gRPC codes.
// A code missing here is answered as Internal.
var grpcCodes = map[string]codes.Code{
	gateway.EINVALID:     codes.InvalidArgument,
	gateway.ENOTFOUND:    codes.NotFound,
	gateway.ECONFLICT:    codes.FailedPrecondition,
	gateway.ESTALE:       codes.FailedPrecondition,
	gateway.EUNAVAILABLE: codes.Unavailable,
	gateway.EINTERNAL:    codes.Internal,
}

// grpcError turns a domain error into a gRPC status error. Internal errors
// are logged in full and answered with a generic message, so that nothing
// of the machinery reaches a client.
func grpcError(ctx context.Context, logger *slog.Logger, op string, err error) error {
	code, ok := grpcCodes[gateway.ErrorCode(err)]
	if !ok || code == codes.Internal {
		logger.ErrorContext(ctx, op+" failed", "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	logger.DebugContext(ctx, op+" refused", "code", code.String(), "err", err)
	return status.Error(code, gateway.ErrorMessage(err))
}
