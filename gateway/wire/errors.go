package wire

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway"
)

// errorCodes is the one table from domain error codes to gRPC codes, for
// every server in the tree; clients read it backwards. Where two domain
// codes share a gRPC code, the first listed is what a client reads back:
// a stale document is a conflict with what the server holds.
var errorCodes = []struct {
	domain string
	grpc   codes.Code
}{
	{gateway.EINVALID, codes.InvalidArgument},
	{gateway.ECONFLICT, codes.FailedPrecondition},
	{gateway.ESTALE, codes.FailedPrecondition},
	{gateway.ENOTFOUND, codes.NotFound},
	{gateway.EUNAVAILABLE, codes.Unavailable},
	{gateway.EUNAUTHENTICATED, codes.Unauthenticated},
	{gateway.EPERMISSION, codes.PermissionDenied},
	{gateway.EINTERNAL, codes.Internal},
}

// grpcCodeOf and domainCodeOf are errorCodes in each direction.
var grpcCodeOf, domainCodeOf = func() (map[string]codes.Code, map[codes.Code]string) {
	to := make(map[string]codes.Code, len(errorCodes))
	from := make(map[codes.Code]string, len(errorCodes))
	for _, c := range errorCodes {
		to[c.domain] = c.grpc
		if _, ok := from[c.grpc]; !ok {
			from[c.grpc] = c.domain
		}
	}
	return to, from
}()

// internalMessage is all a client hears of broken machinery.
const internalMessage = "internal error"

// Status converts a domain error to a gRPC status error, for a server to
// return. The message of a domain error is meant for clients and goes with
// it; an error whose code maps to Internal, or that is no domain error at
// all, becomes a bare "internal error", so that internals never leak. A
// cancelled or expired call keeps its own code. Status returns nil for nil.
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
	c, ok := grpcCodeOf[gateway.ErrorCode(err)]
	if !ok || c == codes.Internal {
		return status.Error(codes.Internal, internalMessage)
	}
	return status.Error(c, gateway.ErrorMessage(err))
}

// Error converts a gRPC status error a client received to a *gateway.Error
// with the domain code the table gives for its gRPC code (EINTERNAL for a
// code the table does not name), the status message as its message, and
// err as its cause, so that status.Code still reads it. An error that
// carries no status (io.EOF at the end of a stream, a context error from
// the client's side) is returned as it is, and nil as nil.
func Error(err error) error {
	if err == nil {
		return nil
	}
	s, ok := status.FromError(err)
	if !ok {
		return err
	}
	code, ok := domainCodeOf[s.Code()]
	if !ok {
		code = gateway.EINTERNAL
	}
	return &gateway.Error{Code: code, Message: s.Message(), Err: err}
}
