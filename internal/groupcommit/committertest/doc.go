// Package committertest helps tests hold a groupcommit.Committer still, so
// that what they queue meanwhile lands in one batch and batching is
// deterministic: a Gate for the committer's BeforeCommit hook, and
// WaitAtLeast to wait until a count (queued requests, callers waiting for
// room) is reached. storecache's tests use it through
// storecache.Store.BeforeCommit.
//
// It exists for tests only and must never be imported by a binary: a Gate
// stops every commit of the committer it holds.
package committertest
