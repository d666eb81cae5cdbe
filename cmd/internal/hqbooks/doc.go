// Package hqbooks prints HQ's books (storegate.v1.GetBooksResponse) for a
// person, as both `storegatectl hq books` (over HQ's admin address) and
// `storegate-hq books` (from the ledger file, HQ stopped) show them, and
// says whether they add up. It only formats: it reads no ledger and dials
// nothing, so that storegatectl can use it without importing HQ's ledger.
package hqbooks
