package central

import (
	"context"
	"fmt"

	"storegate/gateway"
)

// applyFreeze applies a checked freeze list to the ledger's frozen
// accounts inside tx: a snapshot replaces them, a delta freezes and
// unfreezes on top. An account a list names twice ends as its last entry
// says.
func applyFreeze(tx Tx, list *gateway.FreezeList) error {
	if list.Snapshot {
		if err := tx.ClearFrozen(); err != nil {
			return fmt.Errorf("clear freeze list: %w", err)
		}
	}
	freeze := make(map[string]gateway.FrozenAccount)
	unfreeze := make(map[string]bool)
	_ = list.Each(func(account string, fa gateway.FrozenAccount) error {
		freeze[account] = fa
		delete(unfreeze, account)
		return nil
	}, func(account string) error {
		unfreeze[account] = true
		delete(freeze, account)
		return nil
	})
	if len(unfreeze) > 0 {
		if err := tx.DeleteFrozen(sortedKeys(unfreeze)); err != nil {
			return fmt.Errorf("unfreeze: %w", err)
		}
	}
	if len(freeze) > 0 {
		if err := tx.PutFrozen(freeze); err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
	}
	return nil
}

// FrozenAccounts returns the accounts central refuses, with the freeze
// list version that froze each and HQ's reason.
func (l *Ledger) FrozenAccounts(ctx context.Context) (map[string]gateway.FrozenAccount, error) {
	var out map[string]gateway.FrozenAccount
	err := l.storage.View(ctx, func(tx Tx) error {
		out = make(map[string]gateway.FrozenAccount)
		return tx.EachFrozen(func(account string, fa gateway.FrozenAccount) error {
			out[account] = fa
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("frozen accounts: %w", err)
	}
	return out, nil
}
