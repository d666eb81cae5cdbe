// Package metrics is storegated's Prometheus face: decisions by outcome,
// reason and mode, Authorize latency, recovered panics, whether the store can
// be written, and gauges read from the gateway's status at each scrape
// (outbox depth and oldest age, offline exposure and its cap, disputed
// settlements, keyset version, policy and freeze-list versions and policy
// age, central reachability, audit records), each lane scanner's state, and
// when each certificate file storegated read at start expires (certs.go, by
// role and path: never a certificate's subject).
//
// It is an adapter: it implements wire.Observer, which storegated's gRPC
// server calls, and reads gateway.Status; the domain never imports it, and
// it imports no other adapter. A gauge that status can answer is one entry
// in the statusGauges table (status.go). Metrics.Open serves them over HTTP
// at /metrics (server.go) and Close stops it, so that the daemon builds no
// HTTP server of its own.
//
// It must never put an account id, a token or a POS transaction id in a label:
// labels are small fixed sets, so that the series count stays bounded.
package metrics
