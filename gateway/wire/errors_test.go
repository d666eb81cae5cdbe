package wire_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	"storegate/gateway/wire"
)

func TestStatus_Table(t *testing.T) {
	for code, want := range map[string]codes.Code{
		gateway.EINVALID:         codes.InvalidArgument,
		gateway.ECONFLICT:        codes.FailedPrecondition,
		gateway.ENOTFOUND:        codes.NotFound,
		gateway.ESTALE:           codes.FailedPrecondition,
		gateway.EUNAVAILABLE:     codes.Unavailable,
		gateway.EUNAUTHENTICATED: codes.Unauthenticated,
		gateway.EPERMISSION:      codes.PermissionDenied,
	} {
		err := wire.Status(gateway.Errorf(code, "boom"))
		if status.Code(err) != want || status.Convert(err).Message() != "boom" {
			t.Errorf("%s -> %v, want %v with the message", code, err, want)
		}
	}
	err := wire.Status(fmt.Errorf("open /secret/path: disk on fire"))
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "secret") {
		t.Fatalf("internal error -> %v, want a bare Internal", err)
	}
}

// Broken machinery reaches no client, whether it is a plain error, a
// domain error whose code is EINTERNAL, or one with a code no table names.
func TestStatus_InternalNeverLeaks(t *testing.T) {
	for name, err := range map[string]error{
		"Plain":       errors.New("bolt: page 7 freed twice at /var/lib/storegate/storegate.db"),
		"EINTERNAL":   &gateway.Error{Code: gateway.EINTERNAL, Message: "commit: /var/lib/storegate/storegate.db", Err: errors.New("EIO")},
		"UnknownCode": gateway.Errorf("e_made_up", "/var/lib/storegate/storegate.db"),
		"Wrapped":     fmt.Errorf("decide: %w", errors.New("/var/lib/storegate/storegate.db")),
	} {
		t.Run(name, func(t *testing.T) {
			got := wire.Status(err)
			if status.Code(got) != codes.Internal || status.Convert(got).Message() != "internal error" {
				t.Errorf("got %v, want Internal \"internal error\"", got)
			}
		})
	}
}

func TestStatus_ContextErrorsKeepTheirCode(t *testing.T) {
	for err, want := range map[error]codes.Code{
		context.Canceled: codes.Canceled,
		fmt.Errorf("central: %w", context.DeadlineExceeded): codes.DeadlineExceeded,
	} {
		if got := status.Code(wire.Status(err)); got != want {
			t.Errorf("%v -> %v, want %v", err, got, want)
		}
	}
	if wire.Status(nil) != nil {
		t.Error("Status(nil) is not nil")
	}
}

// What a client reads back from each gRPC code: the table's domain code,
// the first listed where two share one, and EINTERNAL for codes it does not
// name.
func TestError_Table(t *testing.T) {
	for c, want := range map[codes.Code]string{
		codes.InvalidArgument:    gateway.EINVALID,
		codes.FailedPrecondition: gateway.ECONFLICT,
		codes.NotFound:           gateway.ENOTFOUND,
		codes.Unavailable:        gateway.EUNAVAILABLE,
		codes.Internal:           gateway.EINTERNAL,
		codes.Unknown:            gateway.EINTERNAL,
		codes.DeadlineExceeded:   gateway.EINTERNAL,
		codes.PermissionDenied:   gateway.EPERMISSION,
		codes.Unauthenticated:    gateway.EUNAUTHENTICATED,
		codes.ResourceExhausted:  gateway.EINTERNAL,
	} {
		err := wire.Error(status.Error(c, "lines: bad"))
		var e *gateway.Error
		if !errors.As(err, &e) || e.Code != want || e.Message != "lines: bad" {
			t.Errorf("%v -> %#v, want a *gateway.Error %s with the status message", c, err, want)
		}
		if got := status.Code(err); got != c {
			t.Errorf("%v -> status.Code %v: the status is lost", c, got)
		}
	}
}

// A domain error sent by a server reads back as the same code on the
// client, except ESTALE, which shares FailedPrecondition with ECONFLICT.
func TestError_RoundTrip(t *testing.T) {
	for _, code := range []string{gateway.EINVALID, gateway.ECONFLICT, gateway.ESTALE, gateway.ENOTFOUND, gateway.EUNAVAILABLE,
		gateway.EUNAUTHENTICATED, gateway.EPERMISSION, gateway.EINTERNAL} {
		want := code
		if code == gateway.ESTALE {
			want = gateway.ECONFLICT
		}
		if got := gateway.ErrorCode(wire.Error(wire.Status(gateway.Errorf(code, "x")))); got != want {
			t.Errorf("%s -> %s, want %s", code, got, want)
		}
	}
}

func TestError_NoStatus(t *testing.T) {
	for _, err := range []error{io.EOF, context.Canceled} {
		if got := wire.Error(err); got != err {
			t.Errorf("Error(%v) = %v, want it unchanged", err, got)
		}
	}
	if wire.Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
}
