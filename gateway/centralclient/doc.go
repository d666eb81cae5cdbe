// Package centralclient is the gateway's client of the central service: it
// implements gateway.Central and gateway.PolicySource over the storegate.v1
// CentralService gRPC contract. A Client from NewClient owns its connection
// and its tuning (dial.go: Open and Close): keepalive pings that find a
// silently dead policy stream, and a reconnect backoff no longer than the
// breaker's cooldown.
//
// It must never log a full token, and never import another adapter.
package centralclient
