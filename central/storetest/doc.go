// Package storetest is the contract suite of central.Storage: one set of
// tests that drives HQ's domain (package central's Ledger and Publisher)
// over a backend and checks what a user of the books would — approvals,
// declines and replays, payment codes, frozen accounts, captures of holds
// and offline captures, reversals, dedupe of resent and refused
// settlements, books that add up, documents and freeze logs that survive a
// reopen, and concurrency (one token authorized by many callers at once is
// approved and debited once; overlapping batches book each settlement
// once).
//
// Each backend's tests call Run with a NewStorage that makes a fresh, empty
// storage; package central's own tests (its gRPC face) build on Fixture.
//
// The package must never know a backend: it sees only central.Storage.
package storetest
