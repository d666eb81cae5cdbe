// Package gateway is storegate's domain: payment tokens and keys, HQ's signed
// documents, the authorization decision, settlements and the audit chain, and
// the interfaces the decision needs from the outside world (Store, Central,
// ScanSource).
//
// Each concept has its file. gateway.go holds the Gateway type, NewGateway,
// Open, Close and Status; decision.go the decision (Authorize as steps 1 to
// 6, the in-flight decision, the commit) and its result types; central.go
// what the gateway needs from the central service and step 5's asking it,
// offline.go the offline decision when it cannot be asked; rules.go the
// policy rules for restricted goods (step 4), limits.go their window
// counters, policy.go the policy document and the policy in force,
// freeze.go the freeze list, keyset.go and document.go HQ's keysets and
// signed documents (and MaxVersionStep); reverse.go Reverse and its
// ReversalWindow; caller.go the Caller who asks, which adapters fill from
// what authenticated it; forwarder.go, policywatch.go and prune.go the loops
// a daemon runs beside the decisions (Forwarder, PolicyWatcher, Pruner: each
// made by its NewX and run by Run(ctx)).
//
// It must never import gRPC, bbolt or serial packages: those are adapters
// (gateway/grpcserver, gateway/centralclient, storecache, devices) that import
// this package, and cmd/ wires them. It must never log or return a full
// payment token: use Fingerprint. Amounts are int64 minor units throughout.
package gateway
