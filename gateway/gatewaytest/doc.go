// Package gatewaytest holds fakes of the gateway's outside world that the
// tests of package gateway and of its adapters share, as net/http/httptest
// does for HTTP.
//
// It exists for tests only and must never be imported by a binary; like the
// domain it serves, it imports no gRPC, bbolt or serial package.
package gatewaytest
