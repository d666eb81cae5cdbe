// Package groupcommit is the one bbolt group committer of storegate, shared
// by the gateway's store (storecache) and HQ's ledger (central), so that
// neither imports the other. Callers hand it functions that write inside a
// bbolt write transaction; one goroutine runs the functions queued by
// concurrent callers in one shared transaction, so that a busy store pays
// one commit (two fsyncs) per batch instead of one per caller. etcd's
// backend batch_tx is the model: one batching layer under every writer of
// the file.
//
// It takes the first queued request and whatever else is queued already (up
// to MaxBatch) and commits at once: the next batch is whatever queued while
// this one was on its way to disk. bbolt's own DB.Batch instead waits up to
// its MaxBatchDelay (10 ms) to fill a batch, which every lone caller waits
// out; storegate-bench sets the two side by side on the same records.
//
// A request's function answers in one of three ways: nil (its writes are
// committed with the batch), Reject(err) (a conflict with what is stored: it
// wrote nothing, its caller gets err, and the batch goes on), or another
// error (a failed write or encoding: the transaction is rolled back, the
// caller gets the error, and the rest of the batch runs again without it, so
// a function may run more than once). A transaction that fails as a whole
// (the commit, a full disk) answers every request of its batch with a
// *TxError.
//
// The package must never:
//   - answer a request before its transaction is on disk or has failed;
//   - report a failure for a request that was committed: a caller whose
//     context ends may withdraw its request only while it is still pending,
//     and once the committer has taken it the caller waits for the outcome;
//   - keep the writes of a function that failed, or commit a request that
//     was withdrawn;
//   - wait to fill a batch: a batch is committed as soon as the previous
//     commit ends;
//   - know what the requests write, close the database, or import any other
//     storegate package: it is plumbing under storecache and central, which
//     must not import each other.
package groupcommit
