package gateway

import (
	"errors"
	"fmt"
	"strconv"
)

// Error codes. Adapters map each to their own status space (gRPC codes, exit
// codes) through one table of their own.
const (
	// EINVALID: the request or document is malformed; retrying it unchanged
	// will fail again.
	EINVALID = "invalid"
	// ECONFLICT: the request conflicts with what is stored, for example the
	// same idempotency key with another basket.
	ECONFLICT = "conflict"
	// ENOTFOUND: the thing named does not exist.
	ENOTFOUND = "not_found"
	// ESTALE: a signed document older than the one held (no rollback).
	ESTALE = "stale"
	// EUNAVAILABLE: a dependency (the disk, the central service) cannot be
	// used right now; the same request may succeed later.
	EUNAVAILABLE = "unavailable"
	// EUNAUTHENTICATED: the caller did not prove who it is (no verified
	// certificate, or one that names no identity this server knows).
	EUNAUTHENTICATED = "unauthenticated"
	// EPERMISSION: the caller is known but may not do this: another lane's
	// sale, another store's, a kind of caller this service does not serve.
	EPERMISSION = "permission_denied"
	// EINTERNAL: broken machinery.
	EINTERNAL = "internal"
)

// Error is the domain's error: a code for callers to branch on and a message
// for people.
type Error struct {
	Code    string
	Message string
	// Err is the underlying cause, if any.
	Err error
}

// Error returns the message and the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message for other errors, so that internals never reach a client.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// maxQuoted bounds how much of a client's input an error message repeats.
const maxQuoted = 64

// QuoteInput quotes a value from a request or a document for an error
// message, clipped to its first 64 bytes and its length: a hostile request
// must not make the answer, or the log line, as large as itself.
func QuoteInput(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(s[:maxQuoted]), len(s))
}
