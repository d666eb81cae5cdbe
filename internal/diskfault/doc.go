// Package diskfault lets tests make the disk fail under a running store:
// every write at or past a size limit into any file of the process fails,
// the way a full disk refuses writes, until the limit is lifted.
//
// It exists for tests only and must never be imported by a binary: the limit
// is process-wide, so tests that use it in their own process run in a child
// process (InChild), away from the test runner's own files; a daemon the
// test started is limited from outside (LimitProcessFileSize).
package diskfault
