package central

import (
	"context"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway/wire"
)

// grpcError turns a domain error into a gRPC status error through wire's
// one table. Internal errors are logged in full here, since the client is
// answered only "internal error", so that nothing of the machinery reaches
// it.
func grpcError(ctx context.Context, logger *slog.Logger, op string, err error) error {
	st := wire.Status(err)
	if code := status.Code(st); code == codes.Internal {
		logger.ErrorContext(ctx, op+" failed", "err", err)
	} else {
		logger.DebugContext(ctx, op+" refused", "code", code.String(), "err", err)
	}
	return st
}
