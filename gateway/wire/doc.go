// Package wire maps between the gateway domain and the storegate.v1 gRPC
// contract, for every server and client in the tree: storegated's gRPC face,
// the gateway's client of the central service, the reference central
// service itself and storegatectl. It plays the part etcd's
// api/v3rpc/rpctypes plays for etcd's client and server: one vocabulary both
// sides of a link share.
//
// It holds:
//   - the one table from domain error codes to gRPC codes (errors.go):
//     Status for servers, Error for clients;
//   - one table per enum (enums.go), which both directions read, so that a
//     value the two sides name differently cannot exist; decline reasons
//     share their numbers with the wire enum instead (TestReasonTable);
//   - the conversions of messages (payment.go, admin.go, central.go) and the
//     Observer that metrics hang on the server (observer.go).
//
// It must never import an adapter (storecache, devices, central, metrics,
// grpcserver, centralclient): adapters import it. It does no I/O and keeps
// no state, and it never puts a full payment token, a full account id in a
// POS-facing message, or an internal error's text in a status.
package wire
