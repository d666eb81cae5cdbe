package gateway

import "context"

// OutboxListing is the outbox as an operator reads it: its totals, the
// oldest settlements still waiting for central, and the oldest ones central
// refused.
type OutboxListing struct {
	Stats    OutboxStats
	Pending  []Settlement
	Disputed []DisputedSettlement
}

// ListOutbox reads up to limit pending and up to limit disputed settlements
// from st, with the outbox's totals. The three are read one after another,
// so on a running gateway a total may already count a settlement made after
// its list was read.
func ListOutbox(ctx context.Context, st Store, limit int) (*OutboxListing, error) {
	var (
		l   OutboxListing
		err error
	)
	if l.Stats, err = st.OutboxStats(ctx); err != nil {
		return nil, err
	}
	if l.Pending, err = st.PendingSettlements(ctx, limit); err != nil {
		return nil, err
	}
	if l.Disputed, err = st.DisputedSettlements(ctx, limit); err != nil {
		return nil, err
	}
	return &l, nil
}
