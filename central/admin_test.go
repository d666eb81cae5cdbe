package central_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/central"
	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// HQ's operators read the books over the admin service, as the ledger
// holds them: the same totals, holds and settlements Books reads.
func TestAdminService_GetBooks(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-2", 500)
	held, _ := f.MustBookADay(t)

	res, err := f.Admin.GetBooks(context.Background(), &storegatev1.GetBooksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetProblems()) != 0 {
		t.Errorf("problems: %q, want none", res.GetProblems())
	}
	var accounts []string
	for _, a := range res.GetAccounts() {
		accounts = append(accounts, a.GetAccount())
	}
	if got := strings.Join(accounts, " "); got != "acct-1 acct-2" {
		t.Fatalf("accounts %q, want acct-1 acct-2 in id order", got)
	}
	a := res.GetAccounts()[0]
	if a.GetCurrency() != "JPY" || a.GetBalance() != 7_000 || a.GetFunded() != 10_000 || a.GetDebited() != 6_000 ||
		a.GetCredited() != 3_000 || a.GetHeld() != 1_000 || a.GetCaptured() != 2_000 || a.GetVoided() != 0 {
		t.Errorf("acct-1: got %v", a)
	}
	if len(res.GetHolds()) != 1 || res.GetHolds()[0].GetAuthorizationId() != held || res.GetHolds()[0].GetAmount() != 1_000 ||
		res.GetHolds()[0].GetPosTransactionId() != "txn-1" || res.GetVoidedHolds() != 0 {
		t.Errorf("holds: got %v (voided %d), want %s of 1000", res.GetHolds(), res.GetVoidedHolds(), held)
	}
	want := map[string]storegatev1.SettlementStatus{"rev-3": accepted, "stl-2": accepted, "stl-3": accepted, "stl-4": refused}
	var ids []string
	for _, s := range res.GetSettlements() {
		id := s.GetSettlement().GetId()
		ids = append(ids, id)
		if s.GetStatus() != want[id] {
			t.Errorf("settlement %s: got %v, want %v", id, s.GetStatus(), want[id])
		}
	}
	if got := strings.Join(ids, " "); got != "rev-3 stl-2 stl-3 stl-4" {
		t.Errorf("settlements %q, want all four in id order", got)
	}
	for _, s := range res.GetSettlements() {
		if s.GetSettlement().GetId() == "stl-3" && (s.GetReversedBy() != "rev-3" || s.GetSettlement().GetKind() != storegatev1.SettlementKind_SETTLEMENT_KIND_CAPTURE) {
			t.Errorf("stl-3: got %v, want a capture reversed by rev-3", s)
		}
		if s.GetSettlement().GetId() == "stl-4" && s.GetMessage() == "" {
			t.Errorf("stl-4: refused without a message")
		}
	}

	t.Run("ErrNoLedger", func(t *testing.T) {
		_, err := central.NewAdminService(nil, nil).GetBooks(context.Background(), &storegatev1.GetBooksRequest{})
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("got %v, want Unimplemented", err)
		}
	})
}

// Books that do not add up travel as problems, one each, with the voided
// holds counted and the settlements in full.
func TestBooksToProto(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	b := &central.Books{
		Accounts: map[string]central.AccountBooks{
			"acct-1": {Currency: "JPY", Balance: 900, Funded: 1_000, Debited: 50},
		},
		Authorizations: []central.Authorization{
			{ID: "auth-1", Account: "acct-1", Amount: 50, Currency: "JPY", Status: central.AuthHeld, StoreID: "s1", Lane: "1", POSTxnID: "t1", Created: at},
			{ID: "auth-2", Account: "acct-1", Amount: 70, Currency: "JPY", Status: central.AuthVoided, Created: at},
		},
		Settlements: []central.BookedSettlement{{
			Settlement: gateway.Settlement{ID: "stl-1", Kind: gateway.SettlementCapture, AuthorizationID: "auth-x", Account: "acct-1", Amount: 10, Mode: gateway.ModeOnline},
			Status:     gateway.SettlementAccepted,
			BookedAt:   at,
		}},
	}
	res := central.BooksToProto(b)
	if len(res.GetHolds()) != 1 || res.GetHolds()[0].GetAuthorizationId() != "auth-1" || !res.GetHolds()[0].GetCreatedAt().AsTime().Equal(at) || res.GetVoidedHolds() != 1 {
		t.Errorf("holds: got %v, voided %d; want auth-1 held and one voided", res.GetHolds(), res.GetVoidedHolds())
	}
	if s := res.GetSettlements(); len(s) != 1 || s[0].GetSettlement().GetAuthorizationId() != "auth-x" ||
		s[0].GetSettlement().GetMode() != storegatev1.DecisionMode_DECISION_MODE_ONLINE || !s[0].GetBookedAt().AsTime().Equal(at) {
		t.Errorf("settlements: got %v", s)
	}
	problems := strings.Join(res.GetProblems(), "\n")
	if want := len(b.Problems()); want < 2 || len(res.GetProblems()) != want {
		t.Errorf("problems: got %d, want %d (one each)", len(res.GetProblems()), want)
	}
	for _, want := range []string{"acct-1", "auth-x"} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems %q do not name %s", problems, want)
		}
	}
	if err := b.Verify(); err == nil || err.Error() != problems {
		t.Errorf("Verify: got %v, want the problems joined:\n%s", err, problems)
	}
}
