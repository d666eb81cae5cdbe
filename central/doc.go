// Package central is the reference central service (HQ) that every store's
// storegated talks to: prepaid accounts and their balances, online
// authorization of payment tokens and numeric payment codes, intake of the
// stores' settlements, and the publication of HQ's signed documents to the
// stores' WatchPolicy streams (HQAdminService takes them from HQ's
// operators; the freeze lists among them apply to central's own books, so
// that a frozen account is refused by central as well as by every store).
//
// It backs the demo, the end-to-end tests and the crash tests, so the
// correctness of its books comes before features. Its state lives in one
// bbolt file (Ledger); Service is its gRPC face (storegate.v1.CentralService)
// and Publisher fans signed documents out to the stores. Server (server.go)
// owns the gRPC servers, the stores' and the operators', with health and
// reflection, and drains them at Close; HoldVoider (holds.go) gives back
// holds no store captured. HQ's keys on disk are package hqkeys'.
//
// The package must never:
//   - log or store a full payment token or payment code: logs name a
//     credential by gateway.Fingerprint, and the books keep only the token's
//     id (cti);
//   - book a settlement twice: settlements are deduplicated by id inside the
//     same bbolt transaction that books them, so delivery may be
//     at-least-once while the books stay exactly-once;
//   - approve the same token id or payment code for two different sales: the
//     authorization is recorded in the transaction that debits the account;
//   - leak internal errors to a client: errors reach gRPC through package
//     wire's one table, anything unexpected is answered as a bare Internal,
//     and grpcError logs it in full here instead;
//   - import another adapter: conversions to and from storegate.v1 are
//     package wire's.
package central
