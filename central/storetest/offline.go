package storetest

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"storegate/central"
	"storegate/gateway"
)

// authorization returns the recorded use of a token id.
func (f *Fixture) authorization(t *testing.T, tokenID []byte) central.Authorization {
	t.Helper()
	for _, a := range f.MustBooks(t).Authorizations {
		if a.Credential == "token:"+hex.EncodeToString(tokenID) {
			return a
		}
	}
	t.Fatalf("no authorization records token %x", tokenID)
	return central.Authorization{}
}

// An offline capture spends its token chain-wide: the same token is then
// declined online at any other sale.
func testOfflineCaptureSpendsToken(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)
	tok, id := f.MintWithID(t, "acct-1")

	WantStatus(t, f.MustSubmit(t, OfflineSale("stl-1", "txn-1", "acct-1", id, 3_000)), "stl-1", accepted)
	if a := f.authorization(t, id); a.Status != central.AuthOffline || a.CapturedBy != "stl-1" || a.ID != "" {
		t.Errorf("token record: got %+v, want spent offline by stl-1", a)
	}

	res := f.MustAuthorize(t, Sale(tok, "txn-2", 1_000))
	if res.Approved || res.Reason != gateway.ReasonReplayed {
		t.Errorf("online use after the offline capture: got approved=%v %v, want replayed", res.Approved, res.Reason)
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
		t.Errorf("balance: got %d, want %d (one debit)", got, want)
	}
}

// A token spent online at another sale makes its offline capture refused:
// the store keeps it as disputed.
func testOfflineCaptureTokenUsedOnline(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)
	tok, id := f.MintWithID(t, "acct-1")
	f.MustApprove(t, Sale(tok, "txn-online", 2_000))

	a := WantStatus(t, f.MustSubmit(t, OfflineSale("stl-1", "txn-offline", "acct-1", id, 3_000)), "stl-1", refused)
	if !strings.Contains(a.Message, "already used") {
		t.Errorf("message: got %q, want it to say the token was already used", a.Message)
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(8_000); got != want {
		t.Errorf("balance: got %d, want %d (the online sale only)", got, want)
	}
}

// Central approved a sale online but the store never heard it (it crashed,
// or the answer came after the deadline) and approved the same sale offline:
// the offline capture captures that authorization, and the account pays
// once.
func testOfflineCaptureOfHeldSale(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)
	tok, id := f.MintWithID(t, "acct-1")
	auth := f.MustApprove(t, Sale(tok, "txn-1", 3_000)).AuthorizationID

	WantStatus(t, f.MustSubmit(t, OfflineSale("stl-1", "txn-1", "acct-1", id, 3_000)), "stl-1", accepted)
	f.MustAuthStatus(t, auth, central.AuthCaptured)
	if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
		t.Errorf("balance: got %d, want %d (one debit)", got, want)
	}
	if s, _ := f.MustBooks(t).Settlement("stl-1"); s.AuthorizationID != auth {
		t.Errorf("booked capture names authorization %q, want %q", s.AuthorizationID, auth)
	}

	t.Run("Reversed", func(t *testing.T) {
		WantStatus(t, f.MustSubmit(t, Reversal("rev-1", "stl-1", 3_000)), "rev-1", accepted)
		f.MustAuthStatus(t, auth, central.AuthReversed)
		if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
	})
}

// Central declined the very sale online; the store, not hearing it, approved
// it offline: the capture is refused and kept as disputed.
func testOfflineCaptureOfDeclinedSale(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 1_000)
	tok, id := f.MintWithID(t, "acct-1")
	if res := f.MustAuthorize(t, Sale(tok, "txn-1", 3_000)); res.Approved {
		t.Fatal("sale over the balance approved")
	}
	f.MustAccount(t, "acct-1", 50_000)
	a := WantStatus(t, f.MustSubmit(t, OfflineSale("stl-1", "txn-1", "acct-1", id, 3_000)), "stl-1", refused)
	if !strings.Contains(a.Message, "declined") {
		t.Errorf("message: got %q, want it to say central declined the sale", a.Message)
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(50_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}
}

func testOfflineCaptureWithoutTokenID(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)
	s := OfflineCapture("stl-1", "acct-1", 100)
	s.TokenID = nil
	a := WantStatus(t, f.MustSubmit(t, s), "stl-1", refused)
	if !strings.Contains(a.Message, "token id") {
		t.Errorf("message: got %q, want it to ask for the token id", a.Message)
	}
}

// Two offline captures of one token in one batch: the first spends it, the
// second is refused.
func testOfflineCaptureTokenTwiceInOneBatch(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)
	_, id := f.MintWithID(t, "acct-1")
	acks := f.MustSubmit(t, OfflineSale("stl-1", "txn-1", "acct-1", id, 1_000), OfflineSale("stl-2", "txn-2", "acct-1", id, 1_000))
	WantStatus(t, acks, "stl-1", accepted)
	WantStatus(t, acks, "stl-2", refused)
	if got, want := f.MustBalance(t, "acct-1"), int64(9_000); got != want {
		t.Errorf("balance: got %d, want %d (one debit)", got, want)
	}
}

func testVoidStaleHolds(t *testing.T, ns NewStorage) {
	ctx := context.Background()
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)
	old := f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "txn-old", 3_000)).AuthorizationID
	oldTok, _ := f.MintWithID(t, "acct-1")
	oldTwo := f.MustApprove(t, Sale(oldTok, "txn-old-2", 2_000)).AuthorizationID
	captured := f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "txn-captured", 1_000)).AuthorizationID
	WantStatus(t, f.MustSubmit(t, Capture("stl-captured", captured, "acct-1", 1_000)), "stl-captured", accepted)
	f.Now = f.Now.Add(20 * time.Minute)
	young := f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "txn-young", 500)).AuthorizationID
	if got, want := f.MustBalance(t, "acct-1"), int64(3_500); got != want {
		t.Fatalf("balance before the void: got %d, want %d", got, want)
	}

	n, err := f.Ledger.VoidStaleHolds(ctx, f.Now, 15*time.Minute)
	if err != nil || n != 2 {
		t.Fatalf("VoidStaleHolds: got %d, %v, want the 2 old holds", n, err)
	}
	f.MustAuthStatus(t, old, central.AuthVoided)
	f.MustAuthStatus(t, oldTwo, central.AuthVoided)
	f.MustAuthStatus(t, captured, central.AuthCaptured)
	f.MustAuthStatus(t, young, central.AuthHeld)
	if got, want := f.MustBalance(t, "acct-1"), int64(8_500); got != want {
		t.Errorf("balance after the void: got %d, want %d (both holds given back)", got, want)
	}
	books := f.MustBooks(t)
	if ab := books.Accounts["acct-1"]; ab.Voided != 5_000 || ab.Held != 500 {
		t.Errorf("books: got %+v, want voided 5000, held 500", ab)
	}
	for _, a := range books.Authorizations {
		if a.ID == old && (!a.VoidedAt.Equal(f.Now) || a.Message == "") {
			t.Errorf("voided %s: got voided at %v, message %q; want %v and why", old, a.VoidedAt, a.Message, f.Now)
		}
	}
	if n, err := f.Ledger.VoidStaleHolds(ctx, f.Now, 15*time.Minute); err != nil || n != 0 {
		t.Errorf("second VoidStaleHolds: got %d, %v, want 0", n, err)
	}

	t.Run("RetryDeclined", func(t *testing.T) {
		res := f.MustAuthorize(t, Sale(oldTok, "txn-old-2", 2_000))
		if res.Approved {
			t.Errorf("retry of a voided sale approved")
		}
	})
	t.Run("LateCaptureTakesItAgain", func(t *testing.T) {
		WantStatus(t, f.MustSubmit(t, Capture("stl-old", old, "acct-1", 3_000)), "stl-old", accepted)
		f.MustAuthStatus(t, old, central.AuthCaptured)
		if got, want := f.MustBalance(t, "acct-1"), int64(5_500); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
	})
	t.Run("ErrLateCaptureUnfunded", func(t *testing.T) {
		f.MustAccount(t, "acct-1", 1_000)
		WantStatus(t, f.MustSubmit(t, Capture("stl-old-2", oldTwo, "acct-1", 2_000)), "stl-old-2", refused)
		f.MustAuthStatus(t, oldTwo, central.AuthVoided)
		if got, want := f.MustBalance(t, "acct-1"), int64(1_000); got != want {
			t.Errorf("balance: got %d, want %d (untouched)", got, want)
		}
	})
}

// More stale holds than one transaction voids are all voided.
func testVoidStaleHoldsMany(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	const n, workers = 1_050, 10
	for w := range workers {
		f.MustAccount(t, fmt.Sprintf("acct-%d", w), n)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			acct := fmt.Sprintf("acct-%d", w)
			for i := w; i < n; i += workers {
				if res, err := f.Authorize(context.Background(), Sale(f.Mint(t, acct), Txn(i), 1)); err != nil || !res.Approved {
					t.Errorf("sale %d: got %+v, %v, want approved", i, res, err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := f.Ledger.VoidStaleHolds(context.Background(), f.Now.Add(time.Hour), time.Minute)
	if err != nil || got != n {
		t.Fatalf("VoidStaleHolds: got %d, %v, want %d", got, err, n)
	}
	for w := range workers {
		if got, want := f.MustBalance(t, fmt.Sprintf("acct-%d", w)), int64(n); got != want {
			t.Errorf("acct-%d balance: got %d, want %d", w, got, want)
		}
	}
}
