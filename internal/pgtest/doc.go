// Package pgtest gives a test a PostgreSQL schema of its own, on the
// server that the environment variable STOREGATE_TEST_PG names (a DSN;
// scripts/with-postgres starts a throwaway server and sets it, and .ci/run
// uses that script). A test that calls DSN without the variable set is
// skipped with a message that says how to run it, so `make test` passes
// without a server.
//
// The package must never touch anything but the schema it creates: each
// test creates its own and drops it at cleanup, so that tests and packages
// run in parallel on one server.
package pgtest
