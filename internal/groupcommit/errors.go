package groupcommit

import (
	"errors"
	"fmt"
)

// Errors of Open and Commit.
var (
	// ErrNotOpen: Commit was called before Open.
	ErrNotOpen = errors.New("group committer is not open")
	// ErrClosed: Close has been called; the committer takes no more
	// requests. Requests queued before Close are committed.
	ErrClosed = errors.New("group committer is closed: no more commits are taken")
)

// Reject marks err as a request's answer to a conflict with what is stored
// (a token already spent, a record that exists). A function returns it
// before it writes anything: the transaction goes on with the rest of the
// batch, and Commit returns err itself.
func Reject(err error) error {
	if err == nil {
		return nil
	}
	return &rejectError{err: err}
}

type rejectError struct{ err error }

func (e *rejectError) Error() string { return e.err.Error() }
func (e *rejectError) Unwrap() error { return e.err }

// TxError is the answer to every request of a batch whose write transaction
// failed as a whole (its commit or fsync, a full disk, a closed database):
// nothing of the batch was written.
type TxError struct {
	// Requests is the number of requests the transaction held.
	Requests int
	// Err is bbolt's error.
	Err error
}

// Error says that nothing was written, and why.
func (e *TxError) Error() string {
	return fmt.Sprintf("commit of %d requests failed, nothing was written: %v", e.Requests, e.Err)
}

// Unwrap returns bbolt's error.
func (e *TxError) Unwrap() error { return e.Err }
