// Package boltstore keeps HQ's books (central.Storage) in one bbolt file:
// the embedded default of storegate-hq, the demo and the tests that need no
// database server. Writes go through internal/groupcommit, so that
// concurrent authorizations and settlement batches share fsyncs; reads are
// bbolt read transactions.
//
// The file holds these buckets, all created when the store is opened.
// Records are JSON; keys are bytes as given:
//
//	bucket             key                                value
//	accounts           account id                         central.Account: balance, currency, funded
//	authorizations     central.CredentialKey: 't' and a   central.Authorization: the one use of a
//	                   token id's 16 bytes, or 'c' and    token id or payment code, approved or
//	                   a payment code's digits            declined, and its state since
//	authorization_ids  authorization id ("auth-…")        the credential key it is recorded under
//	settlements        settlement id                      central.BookedSettlement: the settlement,
//	                                                      its answer, and the reversal that undid it
//	codes              payment code (digits)              the account id it charges
//	documents          "keyset", "policy", or "policy/"   the latest published document of that
//	                   and a store id                     kind and scope
//	freeze_log         freeze list version, 8 bytes,      a published freeze list: the latest
//	                   big-endian                         snapshot, if any, and every delta after it
//	frozen             account id                         gateway.FrozenAccount: HQ's freeze list
//	                                                      as applied to its own books
//
// There are no other indexes: HeldBefore walks the authorizations, which
// the reference service's size allows.
//
// The package must never:
//   - decide anything: what is written, and whether it may be, is package
//     central's (a Tx reads and writes records, nothing more);
//   - hand out a value bbolt owns: every record is decoded into a copy
//     inside its transaction;
//   - import another adapter, or pgstore.
package boltstore
