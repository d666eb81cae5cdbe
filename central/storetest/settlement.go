package storetest

import (
	"context"
	"strings"
	"testing"

	"storegate/central"
	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
)

const (
	accepted  = gateway.SettlementAccepted
	duplicate = gateway.SettlementDuplicate
	refused   = gateway.SettlementRefused
)

func frozenEntry(account, reason string) *documentv1.FreezeEntry {
	return &documentv1.FreezeEntry{Account: account, Frozen: true, Reason: reason}
}

func unfrozenEntry(account string) *documentv1.FreezeEntry {
	return &documentv1.FreezeEntry{Account: account}
}

func testSubmitCapture(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)
	auth := f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "txn-1", 3_000)).AuthorizationID

	WantStatus(t, f.MustSubmit(t, Capture("stl-1", auth, "acct-1", 3_000)), "stl-1", accepted)
	f.MustAuthStatus(t, auth, central.AuthCaptured)
	if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
		t.Errorf("balance after capture: got %d, want %d (debited once, at authorization)", got, want)
	}

	t.Run("DuplicateOnResend", func(t *testing.T) {
		for range 3 {
			WantStatus(t, f.MustSubmit(t, Capture("stl-1", auth, "acct-1", 3_000)), "stl-1", duplicate)
		}
		if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
			t.Errorf("balance after resends: got %d, want %d", got, want)
		}
	})
	t.Run("ErrAlreadyCaptured", func(t *testing.T) {
		a := WantStatus(t, f.MustSubmit(t, Capture("stl-2", auth, "acct-1", 3_000)), "stl-2", refused)
		if a.Message == "" {
			t.Errorf("message: got none, want why")
		}
	})
	t.Run("Booked", func(t *testing.T) {
		s, ok := f.MustBooks(t).Settlement("stl-1")
		want := Capture("stl-1", auth, "acct-1", 3_000)
		if !ok || s.Status != accepted || s.AuthorizationID != auth || s.Account != "acct-1" || s.Amount != 3_000 ||
			s.StoreID != want.StoreID || s.Lane != want.Lane || s.POSTxnID != want.POSTxnID || s.Mode != gateway.ModeOnline ||
			!s.BookedAt.Equal(f.Now) {
			t.Errorf("booked stl-1: got %+v (found %v), want the capture as sent, accepted at %v", s, ok, f.Now)
		}
	})
}

func testSubmitCaptureMismatch(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)
	f.MustAccount(t, "acct-2", 10_000)
	auth := f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "txn-1", 3_000)).AuthorizationID
	otherStore := Capture("stl-store", auth, "acct-1", 3_000)

	for _, tt := range []struct {
		name string
		stl  gateway.Settlement
	}{
		{"ErrAmount", Capture("stl-amount", auth, "acct-1", 2_999)},
		{"ErrAccount", Capture("stl-account", auth, "acct-2", 3_000)},
		{"ErrUnknownAuthorization", Capture("stl-unknown", "auth-00", "acct-1", 3_000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			WantStatus(t, f.MustSubmit(t, tt.stl), tt.stl.ID, refused)
		})
	}
	t.Run("ErrOtherStore", func(t *testing.T) {
		otherStore.StoreID = "store-2"
		acks, err := f.Ledger.SubmitSettlements(context.Background(), "store-2", []gateway.Settlement{otherStore}, f.Now)
		if err != nil || len(acks) != 1 || acks[0].Status != refused || !strings.Contains(acks[0].Message, "another store") {
			t.Errorf("store-2 capturing store-1's hold: got %+v, %v, want refused as made at another store", acks, err)
		}
	})
	f.MustAuthStatus(t, auth, central.AuthHeld)
	for acct, want := range map[string]int64{"acct-1": 7_000, "acct-2": 10_000} {
		if got := f.MustBalance(t, acct); got != want {
			t.Errorf("balance %s: got %d, want %d", acct, got, want)
		}
	}
}

func testSubmitReversal(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)
	auth := f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "txn-1", 3_000)).AuthorizationID
	WantStatus(t, f.MustSubmit(t, Capture("stl-1", auth, "acct-1", 3_000)), "stl-1", accepted)

	WantStatus(t, f.MustSubmit(t, Reversal("rev-1", "stl-1", 3_000)), "rev-1", accepted)
	if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
		t.Errorf("balance after reversal: got %d, want %d", got, want)
	}
	f.MustAuthStatus(t, auth, central.AuthReversed)
	if s, _ := f.MustBooks(t).Settlement("stl-1"); s.ReversedBy != "rev-1" {
		t.Errorf("stl-1 reversed by: got %q, want rev-1", s.ReversedBy)
	}

	t.Run("DuplicateOnResend", func(t *testing.T) {
		WantStatus(t, f.MustSubmit(t, Reversal("rev-1", "stl-1", 3_000)), "rev-1", duplicate)
		if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
			t.Errorf("balance: got %d, want %d (credited once)", got, want)
		}
	})
	t.Run("ErrSecondReversal", func(t *testing.T) {
		WantStatus(t, f.MustSubmit(t, Reversal("rev-2", "stl-1", 3_000)), "rev-2", refused)
		if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
			t.Errorf("balance: got %d, want %d (credited once)", got, want)
		}
	})
	t.Run("ErrSecondReversalInOneBatch", func(t *testing.T) {
		WantStatus(t, f.MustSubmit(t, OfflineCapture("stl-9", "acct-1", 500)), "stl-9", accepted)
		acks := f.MustSubmit(t, Reversal("rev-9a", "stl-9", 500), Reversal("rev-9b", "stl-9", 500))
		WantStatus(t, acks, "rev-9a", accepted)
		WantStatus(t, acks, "rev-9b", refused)
		if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
			t.Errorf("balance: got %d, want %d (credited once)", got, want)
		}
	})
}

func testSubmitCaptureAndReversalInOneBatch(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)

	acks := f.MustSubmit(t, OfflineCapture("stl-1", "acct-1", 4_000), Reversal("rev-1", "stl-1", 4_000))
	WantStatus(t, acks, "stl-1", accepted)
	WantStatus(t, acks, "rev-1", accepted)
	if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}
	if s, _ := f.MustBooks(t).Settlement("stl-1"); s.ReversedBy != "rev-1" {
		t.Errorf("stl-1 reversed by: got %q, want rev-1", s.ReversedBy)
	}
}

func testSubmitOfflineCapture(t *testing.T, ns NewStorage) {
	t.Run("Funded", func(t *testing.T) {
		f := NewFixture(t, ns)
		f.MustAccount(t, "acct-1", 5_000)
		WantStatus(t, f.MustSubmit(t, OfflineCapture("stl-1", "acct-1", 5_000)), "stl-1", accepted)
		if got, want := f.MustBalance(t, "acct-1"), int64(0); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
		WantStatus(t, f.MustSubmit(t, OfflineCapture("stl-1", "acct-1", 5_000)), "stl-1", duplicate)
		if got, want := f.MustBalance(t, "acct-1"), int64(0); got != want {
			t.Errorf("balance after resend: got %d, want %d", got, want)
		}
	})

	t.Run("ErrInsufficientFunds", func(t *testing.T) {
		f := NewFixture(t, ns)
		f.MustAccount(t, "acct-1", 4_999)
		first := WantStatus(t, f.MustSubmit(t, OfflineCapture("stl-1", "acct-1", 5_000)), "stl-1", refused)
		if got, want := first.Message, "insufficient funds"; got != want {
			t.Errorf("message: got %q, want %q", got, want)
		}
		if got, want := f.MustBalance(t, "acct-1"), int64(4_999); got != want {
			t.Errorf("balance: got %d, want %d (untouched)", got, want)
		}

		// Money arriving later does not change the answer: the store
		// keeps the settlement as disputed.
		f.MustAccount(t, "acct-1", 50_000)
		again := WantStatus(t, f.MustSubmit(t, OfflineCapture("stl-1", "acct-1", 5_000)), "stl-1", refused)
		if got, want := again.Message, first.Message; got != want {
			t.Errorf("message on resend: got %q, want %q", got, want)
		}
		if got, want := f.MustBalance(t, "acct-1"), int64(50_000); got != want {
			t.Errorf("balance after resend: got %d, want %d", got, want)
		}
	})

	t.Run("ErrUnknownAccount", func(t *testing.T) {
		f := NewFixture(t, ns)
		WantStatus(t, f.MustSubmit(t, OfflineCapture("stl-1", "nobody", 100)), "stl-1", refused)
	})
}

func testSubmitReversalBeforeCapture(t *testing.T, ns NewStorage) {
	t.Run("NotAcked", func(t *testing.T) {
		f := NewFixture(t, ns)
		f.MustAccount(t, "acct-1", 10_000)

		acks := f.MustSubmit(t, Reversal("rev-1", "stl-1", 1_000))
		if a, ok := acks["rev-1"]; ok {
			t.Fatalf("reversal of an unbooked capture: got ack %v, want none", a.Status)
		}
		if _, ok := f.MustBooks(t).Settlement("rev-1"); ok {
			t.Errorf("reversal of an unbooked capture was recorded")
		}

		// Once the capture is booked, the resent reversal goes through.
		WantStatus(t, f.MustSubmit(t, OfflineCapture("stl-1", "acct-1", 1_000)), "stl-1", accepted)
		WantStatus(t, f.MustSubmit(t, Reversal("rev-1", "stl-1", 1_000)), "rev-1", accepted)
		if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
	})

	t.Run("ErrCaptureRefused", func(t *testing.T) {
		f := NewFixture(t, ns)
		f.MustAccount(t, "acct-1", 100)
		WantStatus(t, f.MustSubmit(t, OfflineCapture("stl-1", "acct-1", 1_000)), "stl-1", refused)
		WantStatus(t, f.MustSubmit(t, Reversal("rev-1", "stl-1", 1_000)), "rev-1", refused)
		if got, want := f.MustBalance(t, "acct-1"), int64(100); got != want {
			t.Errorf("balance: got %d, want %d (no credit for a refused capture)", got, want)
		}
	})
}

func testSubmitMalformed(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)

	unknownKind := OfflineCapture("stl-kind", "acct-1", 100)
	unknownKind.Kind = ""
	otherCurrency := OfflineCapture("stl-currency", "acct-1", 100)
	otherCurrency.Currency = "USD"
	otherStore := OfflineCapture("stl-store", "acct-1", 100)
	otherStore.StoreID = "store-2"
	noReverses := Reversal("rev-none", "", 100)
	noToken := OfflineCapture("stl-token", "acct-1", 100)
	noToken.TokenID = nil
	selfReversal := Reversal("rev-self", "rev-self", 100)

	for _, tt := range []struct {
		name string
		stl  gateway.Settlement
	}{
		{"NoID", OfflineCapture("", "acct-1", 100)},
		{"ZeroAmount", OfflineCapture("stl-zero", "acct-1", 0)},
		{"NegativeAmount", OfflineCapture("stl-negative", "acct-1", -100)},
		{"UnknownKind", unknownKind},
		{"OtherCurrency", otherCurrency},
		{"OtherStore", otherStore},
		{"ReversalWithoutCapture", noReverses},
		{"SelfReversal", selfReversal},
		{"OfflineWithoutTokenID", noToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := WantStatus(t, f.MustSubmit(t, tt.stl), tt.stl.ID, refused)
			if a.Message == "" {
				t.Errorf("message: got none, want why")
			}
			// A resend is refused again.
			WantStatus(t, f.MustSubmit(t, tt.stl), tt.stl.ID, refused)
		})
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}
	if _, ok := f.MustBooks(t).Settlement(""); ok {
		t.Errorf("a settlement without an id was recorded")
	}

	t.Run("Unstorable", func(t *testing.T) {
		nul := OfflineCapture("stl-nul", "acct-1", 100)
		nul.Lane = "lane\x00one"
		latin1 := OfflineCapture("stl-latin1", "acct-\xe9", 100)
		for range 2 {
			acks := f.MustSubmit(t, nul, latin1, OfflineCapture("stl-fine", "acct-1", 100))
			WantStatus(t, acks, "stl-nul", refused)
			WantStatus(t, acks, "stl-latin1", refused)
		}
		books := f.MustBooks(t)
		for _, id := range []string{"stl-nul", "stl-latin1"} {
			if _, ok := books.Settlement(id); ok {
				t.Errorf("%s was recorded", id)
			}
		}
		if s, ok := books.Settlement("stl-fine"); !ok || s.Status != accepted {
			t.Errorf("stl-fine, in the same batch: got %+v (found %v), want accepted", s, ok)
		}
		if got, want := f.MustBalance(t, "acct-1"), int64(9_900); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
	})
	t.Run("ErrNoStore", func(t *testing.T) {
		_, err := f.Ledger.SubmitSettlements(context.Background(), "", []gateway.Settlement{OfflineCapture("stl-x", "acct-1", 100)}, f.Now)
		if got := gateway.ErrorCode(err); got != gateway.EINVALID {
			t.Errorf("got %q (%v), want %q", got, err, gateway.EINVALID)
		}
	})
	t.Run("ErrBatchTooLarge", func(t *testing.T) {
		batch := make([]gateway.Settlement, central.MaxSettlementBatch+1)
		for i := range batch {
			batch[i] = OfflineCapture(Txn(i), "acct-1", 1)
		}
		if _, err := f.Submit(context.Background(), batch...); gateway.ErrorCode(err) != gateway.EINVALID {
			t.Errorf("got %v, want %q", err, gateway.EINVALID)
		}
		if got, want := f.MustBalance(t, "acct-1"), int64(9_900); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
	})
}
