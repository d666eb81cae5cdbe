package central_test

import (
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"storegate/central"
	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// MintWithID returns a fresh token for account and its token id.
func (f *fixture) MintWithID(t testing.TB, account string) (string, []byte) {
	t.Helper()
	id, err := gateway.NewTokenID()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := gateway.MintToken(f.TokenKey, gateway.Claims{
		Issuer: "hq", Account: account, IssuedAt: f.Now.Add(-10 * time.Second), Expires: f.Now.Add(60 * time.Second),
		TokenID: id, Device: "phone-1", Assurance: gateway.AssuranceDeviceBound, OfflineAllowance: 10_000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok, id
}

// offlineSale returns the offline capture a store sends for a sale it
// approved offline at store-1, lane-1, txn, with the token id.
func offlineSale(id, txn, account string, tokenID []byte, amount int64) *storegatev1.Settlement {
	s := offlineCapture(id, account, amount)
	s.PosTransactionId, s.TokenId = txn, tokenID
	return s
}

// authorization returns the recorded use of a token id.
func authorization(t *testing.T, f *fixture, tokenID []byte) central.Authorization {
	t.Helper()
	books, err := f.Ledger.Books()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range books.Authorizations {
		if a.Credential == "token:"+hex.EncodeToString(tokenID) {
			return a
		}
	}
	t.Fatalf("no authorization records token %x", tokenID)
	return central.Authorization{}
}

// An offline capture spends its token chain-wide: the same token is then
// declined online at any other sale.
func TestSubmitSettlements_OfflineCaptureSpendsToken(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	tok, id := f.MintWithID(t, "acct-1")

	wantStatus(t, f.MustSubmit(t, offlineSale("stl-1", "txn-1", "acct-1", id, 3_000)), "stl-1", accepted)
	if a := authorization(t, f, id); a.Status != central.AuthOffline || a.CapturedBy != "stl-1" || a.ID != "" {
		t.Errorf("token record: got %+v, want spent offline by stl-1", a)
	}

	res := f.MustAuthorize(t, sale(tok, "txn-2", 1_000))
	if res.GetApproved() || res.GetReason() != storegatev1.DeclineReason_DECLINE_REASON_REPLAYED {
		t.Errorf("online use after the offline capture: got approved=%v %v, want replayed", res.GetApproved(), res.GetReason())
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
		t.Errorf("balance: got %d, want %d (one debit)", got, want)
	}
}

// A token spent online at another sale makes its offline capture refused:
// the store keeps it as disputed.
func TestSubmitSettlements_OfflineCaptureTokenUsedOnline(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	tok, id := f.MintWithID(t, "acct-1")
	f.MustApprove(t, sale(tok, "txn-online", 2_000))

	a := wantStatus(t, f.MustSubmit(t, offlineSale("stl-1", "txn-offline", "acct-1", id, 3_000)), "stl-1", refused)
	if !strings.Contains(a.GetMessage(), "already used") {
		t.Errorf("message: got %q, want it to say the token was already used", a.GetMessage())
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(8_000); got != want {
		t.Errorf("balance: got %d, want %d (the online sale only)", got, want)
	}
}

// Central approved a sale online but the store never heard it (it crashed,
// or the answer came after the deadline) and approved the same sale offline:
// the offline capture captures that authorization, and the account pays
// once.
func TestSubmitSettlements_OfflineCaptureOfHeldSale(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	tok, id := f.MintWithID(t, "acct-1")
	auth := f.MustApprove(t, sale(tok, "txn-1", 3_000)).GetAuthorizationId()

	wantStatus(t, f.MustSubmit(t, offlineSale("stl-1", "txn-1", "acct-1", id, 3_000)), "stl-1", accepted)
	mustAuthStatus(t, f, auth, central.AuthCaptured)
	if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
		t.Errorf("balance: got %d, want %d (one debit)", got, want)
	}
	books, err := f.Ledger.Books()
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := books.Settlement("stl-1"); s.AuthorizationID != auth {
		t.Errorf("booked capture names authorization %q, want %q", s.AuthorizationID, auth)
	}

	t.Run("Reversed", func(t *testing.T) {
		wantStatus(t, f.MustSubmit(t, reversal("rev-1", "stl-1", 3_000)), "rev-1", accepted)
		mustAuthStatus(t, f, auth, central.AuthReversed)
		if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
	})
}

// Central declined the very sale online; the store, not hearing it, approved
// it offline: the capture is refused and kept as disputed.
func TestSubmitSettlements_OfflineCaptureOfDeclinedSale(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 1_000)
	tok, id := f.MintWithID(t, "acct-1")
	if res := f.MustAuthorize(t, sale(tok, "txn-1", 3_000)); res.GetApproved() {
		t.Fatal("sale over the balance approved")
	}
	f.MustAccount(t, "acct-1", 50_000)
	a := wantStatus(t, f.MustSubmit(t, offlineSale("stl-1", "txn-1", "acct-1", id, 3_000)), "stl-1", refused)
	if !strings.Contains(a.GetMessage(), "declined") {
		t.Errorf("message: got %q, want it to say central declined the sale", a.GetMessage())
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(50_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}
}

func TestSubmitSettlements_OfflineCaptureWithoutTokenID(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	s := offlineCapture("stl-1", "acct-1", 100)
	s.TokenId = nil
	a := wantStatus(t, f.MustSubmit(t, s), "stl-1", refused)
	if !strings.Contains(a.GetMessage(), "token id") {
		t.Errorf("message: got %q, want it to ask for the token id", a.GetMessage())
	}
}

func TestLedger_VoidStaleHolds(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	old := f.MustApprove(t, sale(f.Mint(t, "acct-1"), "txn-old", 3_000)).GetAuthorizationId()
	oldTok, _ := f.MintWithID(t, "acct-1")
	oldTwo := f.MustApprove(t, sale(oldTok, "txn-old-2", 2_000)).GetAuthorizationId()
	captured := f.MustApprove(t, sale(f.Mint(t, "acct-1"), "txn-captured", 1_000)).GetAuthorizationId()
	wantStatus(t, f.MustSubmit(t, capture("stl-captured", captured, "acct-1", 1_000)), "stl-captured", accepted)
	f.Now = f.Now.Add(20 * time.Minute)
	young := f.MustApprove(t, sale(f.Mint(t, "acct-1"), "txn-young", 500)).GetAuthorizationId()
	if got, want := f.MustBalance(t, "acct-1"), int64(3_500); got != want {
		t.Fatalf("balance before the void: got %d, want %d", got, want)
	}

	n, err := f.Ledger.VoidStaleHolds(f.Now, 15*time.Minute)
	if err != nil || n != 2 {
		t.Fatalf("VoidStaleHolds: got %d, %v, want the 2 old holds", n, err)
	}
	mustAuthStatus(t, f, old, central.AuthVoided)
	mustAuthStatus(t, f, oldTwo, central.AuthVoided)
	mustAuthStatus(t, f, captured, central.AuthCaptured)
	mustAuthStatus(t, f, young, central.AuthHeld)
	if got, want := f.MustBalance(t, "acct-1"), int64(8_500); got != want {
		t.Errorf("balance after the void: got %d, want %d (both holds given back)", got, want)
	}
	books, err := f.Ledger.Books()
	if err != nil {
		t.Fatal(err)
	}
	if ab := books.Accounts["acct-1"]; ab.Voided != 5_000 || ab.Held != 500 {
		t.Errorf("books: got %+v, want voided 5000, held 500", ab)
	}
	if n, err := f.Ledger.VoidStaleHolds(f.Now, 15*time.Minute); err != nil || n != 0 {
		t.Errorf("second VoidStaleHolds: got %d, %v, want 0", n, err)
	}

	t.Run("RetryDeclined", func(t *testing.T) {
		res := f.MustAuthorize(t, sale(oldTok, "txn-old-2", 2_000))
		if res.GetApproved() {
			t.Errorf("retry of a voided sale approved")
		}
	})
	t.Run("LateCaptureTakesItAgain", func(t *testing.T) {
		wantStatus(t, f.MustSubmit(t, capture("stl-old", old, "acct-1", 3_000)), "stl-old", accepted)
		mustAuthStatus(t, f, old, central.AuthCaptured)
		if got, want := f.MustBalance(t, "acct-1"), int64(5_500); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
	})
	t.Run("ErrLateCaptureUnfunded", func(t *testing.T) {
		f.MustAccount(t, "acct-1", 1_000)
		wantStatus(t, f.MustSubmit(t, capture("stl-old-2", oldTwo, "acct-1", 2_000)), "stl-old-2", refused)
		mustAuthStatus(t, f, oldTwo, central.AuthVoided)
		if got, want := f.MustBalance(t, "acct-1"), int64(1_000); got != want {
			t.Errorf("balance: got %d, want %d (untouched)", got, want)
		}
	})
}
