package central_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	"storegate/central"
	"storegate/gateway"
)

func TestLedger_OpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "central.db")
	MustOpenLedger(t, path)

	start := time.Now()
	l := central.NewLedger(path)
	l.Timeout = 100 * time.Millisecond
	err := l.Open(context.Background())
	if err == nil {
		l.Close(context.Background())
		t.Fatal("second Open of a locked file: got no error")
	}
	if got := gateway.ErrorCode(err); got != gateway.EUNAVAILABLE {
		t.Errorf("code: got %q (%v), want %q", got, err, gateway.EUNAVAILABLE)
	}
	if !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q: want it to name the file and say it is locked", err)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("waited %s for a 100ms timeout", waited)
	}
}

// Settlements submitted while the ledger closes are either booked (and in
// the books after a reopen) or refused with ErrDatabaseNotOpen and not
// booked; after Close every write is refused so.
func TestLedger_Close(t *testing.T) {
	const n = 40
	path := filepath.Join(t.TempDir(), "central.db")
	l := central.NewLedger(path)
	if err := l.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.SetAccount("acct-1", 1_000_000); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	stl := func(i int) gateway.Settlement {
		tok := make([]byte, gateway.TokenIDSize)
		copy(tok, fmt.Sprintf("tok-%d", i))
		return gateway.Settlement{
			ID: fmt.Sprintf("stl-%02d", i), Kind: gateway.SettlementCapture, StoreID: "store-1", Lane: "lane-1",
			POSTxnID: fmt.Sprintf("txn-%02d", i), Account: "acct-1", TokenID: tok, Amount: 100, Currency: "JPY",
			Mode: gateway.ModeOffline, CreatedAt: now,
		}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = l.SubmitSettlements("store-1", []gateway.Settlement{stl(i)}, now) })
		if i == n/2 {
			wg.Go(func() {
				if err := l.Close(context.Background()); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
	}
	wg.Wait()
	if _, err := l.SubmitSettlements("store-1", []gateway.Settlement{stl(n)}, now); !errors.Is(err, berrors.ErrDatabaseNotOpen) {
		t.Errorf("SubmitSettlements after Close: got %v, want ErrDatabaseNotOpen", err)
	}

	l = MustOpenLedger(t, path)
	books, err := l.Books()
	if err != nil {
		t.Fatal(err)
	}
	booked := map[string]bool{}
	for _, b := range books.Settlements {
		booked[b.Settlement.ID] = true
	}
	for i, err := range errs {
		id := stl(i).ID
		switch {
		case err == nil && !booked[id]:
			t.Errorf("settlement %s was answered but is not booked", id)
		case err != nil && !errors.Is(err, berrors.ErrDatabaseNotOpen):
			t.Errorf("settlement %s: got %v, want nil or ErrDatabaseNotOpen", id, err)
		case err != nil && booked[id]:
			t.Errorf("settlement %s was refused but is booked", id)
		}
	}
	if booked[stl(n).ID] {
		t.Errorf("the settlement submitted after Close is booked")
	}
	want := int64(1_000_000 - 100*len(booked))
	if got, err := l.Balance("acct-1"); err != nil || got != want {
		t.Errorf("balance: got %d, %v, want %d (%d captures booked)", got, err, want, len(booked))
	}
	t.Logf("%d of %d settlements booked before Close", len(booked), n)
}

func TestLedger_OpenBadCurrency(t *testing.T) {
	l := central.NewLedger(filepath.Join(t.TempDir(), "central.db"))
	l.Currency = "yen"
	err := l.Open(context.Background())
	if got := gateway.ErrorCode(err); got != gateway.EINVALID {
		t.Errorf("got %q (%v), want %q", got, err, gateway.EINVALID)
	}
}

func TestLedger_Accounts(t *testing.T) {
	l := MustOpenLedger(t, filepath.Join(t.TempDir(), "central.db"))

	t.Run("EnsureCreatesOnce", func(t *testing.T) {
		if err := l.EnsureAccount("acct-1", 1_000); err != nil {
			t.Fatal(err)
		}
		if err := l.EnsureAccount("acct-1", 9_999); err != nil {
			t.Fatal(err)
		}
		if got, err := l.Balance("acct-1"); err != nil || got != 1_000 {
			t.Errorf("balance: got %d (%v), want 1000", got, err)
		}
	})
	t.Run("SetOverrides", func(t *testing.T) {
		if err := l.SetAccount("acct-1", 250); err != nil {
			t.Fatal(err)
		}
		if got, err := l.Balance("acct-1"); err != nil || got != 250 {
			t.Errorf("balance: got %d (%v), want 250", got, err)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := l.Balance("nobody")
		if got := gateway.ErrorCode(err); got != gateway.ENOTFOUND {
			t.Errorf("got %q (%v), want %q", got, err, gateway.ENOTFOUND)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for name, err := range map[string]error{
			"EmptyID":         l.SetAccount("", 1),
			"SpaceInID":       l.EnsureAccount("acct 1", 1),
			"NegativeBalance": l.SetAccount("acct-2", -1),
		} {
			if got := gateway.ErrorCode(err); got != gateway.EINVALID {
				t.Errorf("%s: got %q (%v), want %q", name, got, err, gateway.EINVALID)
			}
		}
	})
}

func TestLedger_IssueCode(t *testing.T) {
	l := MustOpenLedger(t, filepath.Join(t.TempDir(), "central.db"))
	if err := l.SetAccount("acct-1", 100); err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool)
	for range 20 {
		code, err := l.IssueCode("acct-1")
		if err != nil {
			t.Fatalf("IssueCode: %v", err)
		}
		if len(code) != central.PaymentCodeDigits || !gateway.IsPaymentCode(code) {
			t.Fatalf("code %q: want %d digits", code, central.PaymentCodeDigits)
		}
		if seen[code] {
			t.Fatalf("code %q issued twice", code)
		}
		seen[code] = true
	}
	t.Run("ErrUnknownAccount", func(t *testing.T) {
		_, err := l.IssueCode("nobody")
		if got := gateway.ErrorCode(err); got != gateway.ENOTFOUND {
			t.Errorf("got %q (%v), want %q", got, err, gateway.ENOTFOUND)
		}
	})
}

func TestLedger_PersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "central.db")
	pub, priv, err := gateway.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := gateway.NewKeyring(1, []gateway.TrustedKey{{ID: gateway.KeyID(pub), Public: pub, Use: gateway.KeyUseToken}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	id, err := gateway.NewTokenID()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := gateway.MintToken(priv, gateway.Claims{
		Issuer: "hq", Account: "acct-1", IssuedAt: now.Add(-time.Second), Expires: now.Add(time.Minute),
		TokenID: id, Device: "phone-1", Assurance: gateway.AssurancePassword,
	})
	if err != nil {
		t.Fatal(err)
	}
	req := &gateway.CentralRequest{StoreID: "store-1", Lane: "lane-1", POSTxnID: "txn-1", Credential: tok, Amount: 700, Currency: "JPY"}

	l := central.NewLedger(path)
	if err := l.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.SetAccount("acct-1", 1_000); err != nil {
		t.Fatal(err)
	}
	first, err := l.Authorize(req, ring, now)
	if err != nil || !first.Approved {
		t.Fatalf("Authorize: got %+v, %v, want approved", first, err)
	}
	acks, err := l.SubmitSettlements("store-1", []gateway.Settlement{{
		ID: "stl-1", Kind: gateway.SettlementCapture, AuthorizationID: first.AuthorizationID,
		Account: "acct-1", Amount: 700, Currency: "JPY",
	}}, now)
	if err != nil || len(acks) != 1 || acks[0].Status != gateway.SettlementAccepted {
		t.Fatalf("SubmitSettlements: got %+v, %v, want stl-1 accepted", acks, err)
	}
	MustClose(t, l)

	l = MustOpenLedger(t, path)
	if got, err := l.Balance("acct-1"); err != nil || got != 300 {
		t.Errorf("balance after reopen: got %d (%v), want 300", got, err)
	}
	again, err := l.Authorize(req, ring, now)
	if err != nil || !again.Approved || again.AuthorizationID != first.AuthorizationID {
		t.Errorf("retry after reopen: got %+v, %v, want approved as %s", again, err, first.AuthorizationID)
	}
	acks, err = l.SubmitSettlements("store-1", []gateway.Settlement{{
		ID: "stl-1", Kind: gateway.SettlementCapture, AuthorizationID: first.AuthorizationID,
		Account: "acct-1", Amount: 700, Currency: "JPY",
	}}, now)
	if err != nil || len(acks) != 1 || acks[0].Status != gateway.SettlementDuplicate {
		t.Errorf("resend after reopen: got %+v, %v, want stl-1 duplicate", acks, err)
	}
	if got, err := l.Balance("acct-1"); err != nil || got != 300 {
		t.Errorf("balance after retries: got %d (%v), want 300", got, err)
	}
}

func TestBooks_Totals(t *testing.T) {
	f := newFixture(t)
	held, captured := f.MustBookADay(t)

	books, err := f.Ledger.Books()
	if err != nil {
		t.Fatal(err)
	}
	if err := books.Verify(); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	got := books.Accounts["acct-1"]
	want := central.AccountBooks{
		Currency: "JPY",
		Balance:  10_000 - 1_000 - 2_000,
		Funded:   10_000,
		Debited:  1_000 + 2_000 + 3_000,
		Credited: 3_000,
		Held:     1_000,
		Captured: 2_000,
	}
	if got != want {
		t.Errorf("acct-1 books:\n got %+v\nwant %+v", got, want)
	}
	for id, wantStatus := range map[string]central.AuthStatus{held: central.AuthHeld, captured: central.AuthCaptured} {
		found := false
		for _, a := range books.Authorizations {
			if a.ID == id {
				found = true
				if a.Status != wantStatus {
					t.Errorf("authorization %s: got %s, want %s", id, a.Status, wantStatus)
				}
			}
		}
		if !found {
			t.Errorf("authorization %s missing from the books", id)
		}
	}
	for id, want := range map[string]gateway.SettlementStatus{
		"stl-2": gateway.SettlementAccepted, "stl-3": gateway.SettlementAccepted,
		"rev-3": gateway.SettlementAccepted, "stl-4": gateway.SettlementRefused,
	} {
		s, ok := books.Settlement(id)
		if !ok || s.Status != want {
			t.Errorf("settlement %s: got %v (found %v), want %v", id, s.Status, ok, want)
		}
	}
	if s, _ := books.Settlement("stl-3"); s.ReversedBy != "rev-3" {
		t.Errorf("stl-3 reversed by: got %q, want rev-3", s.ReversedBy)
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
