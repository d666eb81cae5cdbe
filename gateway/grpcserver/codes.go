package grpcserver

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway"
)

// codeOf is the one table from domain error codes to gRPC codes.
var codeOf = map[string]codes.Code{
	gateway.EINVALID:     codes.InvalidArgument,
	gateway.ECONFLICT:    codes.FailedPrecondition,
	gateway.ENOTFOUND:    codes.NotFound,
	gateway.ESTALE:       codes.FailedPrecondition,
	gateway.EUNAVAILABLE: codes.Unavailable,
	gateway.EINTERNAL:    codes.Internal,
}

// Status converts a domain error to a gRPC status error. Messages of domain
// errors are meant for clients; anything else becomes a bare "internal error"
// so that internals never leak. A cancelled or expired call keeps its code.
func Status(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "call cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	c, ok := codeOf[gateway.ErrorCode(err)]
	if !ok {
		c = codes.Internal
	}
	return status.Error(c, gateway.ErrorMessage(err))
}
