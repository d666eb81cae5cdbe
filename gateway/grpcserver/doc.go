// Package grpcserver is storegated's gRPC face: PaymentService for the lanes'
// POS terminals and AdminService for HQ, translating between the
// storegate.v1 contract and the gateway domain.
//
// Handlers stay thin: validation and decisions live in package gateway, and
// domain errors become gRPC statuses through one table (codes.go). It must
// never put a full payment token or an internal error text in a response or
// a log line.
package grpcserver
