// Package pgstore keeps HQ's books (central.Storage) in PostgreSQL through
// pgx, with no ORM: a chain's production HQ, which several storegate-hq
// processes may share. Every transaction is SERIALIZABLE and is run again
// whole, after a jittered wait, when it loses a serialization conflict
// (40001) or a deadlock (40P01) — which is why central's rules must have no
// effect outside a transaction. Uniqueness lives in primary keys, written
// with INSERT … ON CONFLICT DO NOTHING; nothing needs a sequence and no row
// is a counter that every sale updates (an account's balance row is that
// account's alone).
//
// The schema is made by numbered migrations embedded in the binary
// (migrations/NNNN_name.sql), applied in order, each in one transaction
// with its row in schema_migrations, by `storegate-hq migrate --db …` or at
// start with --migrate (Store.AutoMigrate). A few dozen lines do it rather
// than a library: the migrations only go forward, they are SQL alone, and
// running each through the store's own retried SERIALIZABLE transaction,
// with the version as a primary key, is what lets several replicas start
// at once (and what a distributed engine wants instead of advisory locks).
//
//	table              key                     what it holds
//	schema_migrations  version                 the migrations applied, and when
//	accounts           id                      a prepaid account: currency, balance (never
//	                                           negative, by a CHECK), funded
//	payment_codes      code                    the account a numeric payment code charges
//	authorizations     credential_key (bytea:  the one use of a token id or payment code,
//	                   't' + token id, or      approved or declined, and its state since
//	                   'c' + code)             (status, captured_by, voided_at); UNIQUE id
//	                                           (NULL for declines and offline spends) finds
//	                                           an approval from its capture; index
//	                                           (status, created_at) finds stale holds
//	settlements        id (the store's)        every booked settlement with its answer
//	                                           (status, message) and reversed_by
//	frozen_accounts    account_id              HQ's freeze list applied to its books, with
//	                                           the version that froze each and the reason
//	documents          (kind, store_id)        the latest keyset ('keyset', '') and policy
//	                                           of each scope ('policy', '' for the chain's)
//	freeze_log         version                 the latest freeze snapshot and every delta
//	                                           after it
//
// Versions of signed documents and a settlement's seq are uint64, kept in
// numeric(20) columns and passed as text. Times are timestamptz (to the
// microsecond: package central stores times so, on every backend).
//
// Reads of many keys are one statement with an array (= ANY($1)); writes of
// many rows are one INSERT … SELECT FROM unnest(…) of one array per column,
// and updates are UPDATE … FROM unnest(…). Statements are described once per
// connection and executed unnamed, so that each is planned for the tables
// as they are.
//
// Portability: the SQL is meant to run unchanged on YugabyteDB and
// CockroachDB, which speak this protocol, default to or support
// SERIALIZABLE and report conflicts as 40001. What is PostgreSQL's own and
// may need a look on another engine: unnest() of several arrays in one call
// (both engines have it); numeric(20) for uint64; "CREATE TABLE IF NOT
// EXISTS" racing between migrators (PostgreSQL raises 23505, which the
// migrator retries); transactional DDL (CockroachDB runs schema changes in
// a transaction with restrictions; each migration here is one file of
// CREATE statements, which it accepts). No advisory locks, no LISTEN/NOTIFY
// yet (the publishing doorbell of several replicas will be the one), no
// TRUNCATE (not MVCC-safe under SERIALIZABLE: DELETE instead).
//
// The package must never:
//   - decide anything: what is written, and whether it may be, is package
//     central's (a Tx reads and writes rows, nothing more);
//   - read then write to decide uniqueness: a primary key decides it;
//   - put a DSN, which may hold a password, in an error or a log;
//   - import another adapter, or boltstore.
package pgstore
