package central_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"storegate/central"
	"storegate/central/boltstore"
	"storegate/gateway"
)

func TestLedger_BadCurrency(t *testing.T) {
	l := central.NewLedger(boltstore.New(filepath.Join(t.TempDir(), "central.db")))
	l.Currency = "yen"
	if err := l.Open(context.Background()); gateway.ErrorCode(err) != gateway.EINVALID {
		l.Close(context.Background())
		t.Errorf("got %v, want %q", err, gateway.EINVALID)
	}
}

func TestBooks_Verify(t *testing.T) {
	t.Run("ErrUnbalanced", func(t *testing.T) {
		b := &central.Books{Accounts: map[string]central.AccountBooks{
			"acct-1": {Currency: "JPY", Balance: 900, Funded: 1_000, Debited: 50},
		}}
		if err := b.Verify(); err == nil || !strings.Contains(err.Error(), "acct-1") {
			t.Errorf("Verify: got %v, want an error naming acct-1", err)
		}
	})
	t.Run("ErrCaptureWithoutAuthorization", func(t *testing.T) {
		b := &central.Books{
			Accounts: map[string]central.AccountBooks{"acct-1": {Currency: "JPY", Balance: 1_000, Funded: 1_000}},
			Settlements: []central.BookedSettlement{{
				Settlement: gateway.Settlement{ID: "stl-1", Kind: gateway.SettlementCapture, AuthorizationID: "auth-x", Account: "acct-1", Amount: 10},
				Status:     gateway.SettlementAccepted,
			}},
		}
		if err := b.Verify(); err == nil || !strings.Contains(err.Error(), "auth-x") {
			t.Errorf("Verify: got %v, want an error naming auth-x", err)
		}
	})
}
