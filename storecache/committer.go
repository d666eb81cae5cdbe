package storecache

import (
	"context"
	"errors"

	bolt "go.etcd.io/bbolt"

	"storegate/gateway"
	"storegate/internal/groupcommit"
)

// opKind says what a commit commits, for Stats.
type opKind int

const (
	opDecision opKind = iota
	opReversal
	opAck
)

// outcome is what one commit did inside a transaction that went on.
type outcome struct {
	// wrote is true when the commit wrote its records.
	wrote bool
	// reject is the commit's answer when it wrote nothing because of a
	// conflict with what is stored.
	reject error
}

// commitTx runs fn through the committer, in a transaction it may share
// with other queued commits. When fn fails, nothing it wrote is kept, it
// returns fn's error, and the rest of its batch is committed without it.
// Like every apply, fn may run more than once.
func (s *Store) commitTx(ctx context.Context, kind opKind, fn func(tx *bolt.Tx) error) error {
	return s.commit(ctx, kind, func(tx *bolt.Tx) (outcome, error) {
		if err := fn(tx); err != nil {
			return outcome{}, err
		}
		return outcome{wrote: true}, nil
	})
}

// commit runs apply through the shared group committer and returns its
// answer. apply runs inside the batch's write transaction. It checks before
// it writes: a conflict is returned as outcome.reject, having written
// nothing, and the batch goes on. An error (a failed write or encoding)
// aborts the transaction; the committer answers this commit with it and
// runs the batch again without it. apply may run more than once, so it
// keeps its results in variables it overwrites, read by the caller only
// after commit returns.
//
// A caller whose ctx ends gets ctx's error only while its commit is still
// queued; once taken, it waits for the transaction. A transaction that
// failed as a whole is an EUNAVAILABLE error.
func (s *Store) commit(ctx context.Context, kind opKind, apply func(tx *bolt.Tx) (outcome, error)) error {
	switch {
	case s.db == nil:
		return ErrNotOpen
	case s.readOnly:
		return ErrReadOnly
	}
	var wrote bool
	err := s.committer.Commit(ctx, func(tx *bolt.Tx) error {
		o, err := apply(tx)
		wrote = err == nil && o.wrote
		if err != nil {
			return err
		}
		return groupcommit.Reject(o.reject)
	})
	var txErr *groupcommit.TxError
	switch {
	case errors.Is(err, groupcommit.ErrClosed), errors.Is(err, groupcommit.ErrNotOpen):
		return ErrClosed
	case errors.As(err, &txErr):
		return &gateway.Error{Code: gateway.EUNAVAILABLE, Message: "store: commit failed, nothing was written", Err: dbError(txErr.Err)}
	case err != nil:
		return err
	}
	switch {
	case wrote && kind == opDecision:
		s.decisions.Add(1)
	case wrote && kind == opReversal:
		s.reversals.Add(1)
	}
	return nil
}
