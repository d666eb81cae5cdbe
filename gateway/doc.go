// Package gateway is storegate's domain: payment tokens and keys, HQ's signed
// documents, the authorization decision, settlements and the audit chain, and
// the interfaces the decision needs from the outside world (Store, Central,
// ScanSource).
//
// It must never import gRPC, bbolt or serial packages: those are adapters
// (gateway/grpcserver, gateway/centralclient, storecache, devices) that import
// this package, and cmd/ wires them. It must never log or return a full
// payment token: use Fingerprint. Amounts are int64 minor units throughout.
package gateway
