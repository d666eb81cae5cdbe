// Package central is the reference central service (HQ) that every store's
// storegated talks to: prepaid accounts and their balances, online
// authorization of payment tokens and numeric payment codes, intake of the
// stores' settlements, and the publication of HQ's signed documents to the
// stores' WatchPolicy streams (HQAdminService takes them from HQ's
// operators; the freeze lists among them apply to central's own books, so
// that a frozen account is refused by central as well as by every store).
//
// It backs the demo, the end-to-end tests and the crash tests, so the
// correctness of its books comes before features. The package holds HQ's
// domain and its gRPC face, and keeps its records in a Storage:
//
//   - Ledger (ledger.go, account.go, authorize.go, settlement.go,
//     holds.go, freeze.go, books.go) is the books and their rules, written
//     once against the Storage and Tx interfaces (storage.go);
//   - Publisher (publisher.go) verifies and records HQ's signed documents
//     and fans them out to the stores;
//   - Service and AdminService (service.go, admin.go) are the gRPC face:
//     their handlers translate through package wire and call the domain;
//     Server (server.go) owns the gRPC servers, with health and reflection,
//     and drains them at Close; HoldVoider (holds.go) gives back holds no
//     store captured.
//
// The backends are sibling packages that import central and never each
// other: central/boltstore (one bbolt file, the embedded default) and
// central/pgstore (PostgreSQL, a chain's production). central/storetest is
// the contract suite both pass. HQ's keys on disk are package hqkeys'.
//
// The package must never:
//   - log or store a full payment token or payment code: logs name a
//     credential by gateway.Fingerprint, and the books keep only the token's
//     id (cti);
//   - book a settlement twice: settlements are deduplicated by id inside the
//     same transaction that books them, on the settlement id as the
//     storage's primary key, so delivery may be at-least-once while the
//     books stay exactly-once;
//   - approve the same token id or payment code for two different sales: the
//     authorization is recorded, under the credential as primary key, in the
//     transaction that debits the account;
//   - do anything outside a storage transaction inside one: Update may run
//     its function more than once;
//   - import a storage backend or another adapter: conversions to and from
//     storegate.v1 are package wire's, and errors reach gRPC through wire's
//     one table (anything unexpected is answered as a bare Internal, and
//     grpcError logs it in full here instead).
package central
