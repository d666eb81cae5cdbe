package central_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/central"
	storegatev1 "storegate/proto/storegate/v1"
)

const (
	accepted  = storegatev1.SettlementStatus_SETTLEMENT_STATUS_ACCEPTED
	duplicate = storegatev1.SettlementStatus_SETTLEMENT_STATUS_DUPLICATE
	refused   = storegatev1.SettlementStatus_SETTLEMENT_STATUS_REFUSED
)

// mustAuthStatus fails the test unless the authorization id has status want.
func mustAuthStatus(t *testing.T, f *fixture, id string, want central.AuthStatus) {
	t.Helper()
	books, err := f.Ledger.Books()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range books.Authorizations {
		if a.ID == id {
			if a.Status != want {
				t.Errorf("authorization %s: got %s, want %s", id, a.Status, want)
			}
			return
		}
	}
	t.Errorf("authorization %s not found", id)
}

func TestSubmitSettlements_Capture(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	auth := f.MustApprove(t, sale(f.Mint(t, "acct-1"), "txn-1", 3_000)).GetAuthorizationId()

	wantStatus(t, f.MustSubmit(t, capture("stl-1", auth, "acct-1", 3_000)), "stl-1", accepted)
	mustAuthStatus(t, f, auth, central.AuthCaptured)
	if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
		t.Errorf("balance after capture: got %d, want %d (debited once, at authorization)", got, want)
	}

	t.Run("DuplicateOnResend", func(t *testing.T) {
		for range 3 {
			wantStatus(t, f.MustSubmit(t, capture("stl-1", auth, "acct-1", 3_000)), "stl-1", duplicate)
		}
		if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
			t.Errorf("balance after resends: got %d, want %d", got, want)
		}
	})
	t.Run("ErrAlreadyCaptured", func(t *testing.T) {
		a := wantStatus(t, f.MustSubmit(t, capture("stl-2", auth, "acct-1", 3_000)), "stl-2", refused)
		if a.GetMessage() == "" {
			t.Errorf("message: got none, want why")
		}
	})
}

func TestSubmitSettlements_CaptureMismatch(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	f.MustAccount(t, "acct-2", 10_000)
	auth := f.MustApprove(t, sale(f.Mint(t, "acct-1"), "txn-1", 3_000)).GetAuthorizationId()

	for _, tt := range []struct {
		name string
		stl  *storegatev1.Settlement
	}{
		{"ErrAmount", capture("stl-amount", auth, "acct-1", 2_999)},
		{"ErrAccount", capture("stl-account", auth, "acct-2", 3_000)},
		{"ErrUnknownAuthorization", capture("stl-unknown", "auth-00", "acct-1", 3_000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, f.MustSubmit(t, tt.stl), tt.stl.GetId(), refused)
		})
	}
	mustAuthStatus(t, f, auth, central.AuthHeld)
	for acct, want := range map[string]int64{"acct-1": 7_000, "acct-2": 10_000} {
		if got := f.MustBalance(t, acct); got != want {
			t.Errorf("balance %s: got %d, want %d", acct, got, want)
		}
	}
}

func TestSubmitSettlements_Reversal(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	auth := f.MustApprove(t, sale(f.Mint(t, "acct-1"), "txn-1", 3_000)).GetAuthorizationId()
	wantStatus(t, f.MustSubmit(t, capture("stl-1", auth, "acct-1", 3_000)), "stl-1", accepted)

	wantStatus(t, f.MustSubmit(t, reversal("rev-1", "stl-1", 3_000)), "rev-1", accepted)
	if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
		t.Errorf("balance after reversal: got %d, want %d", got, want)
	}
	mustAuthStatus(t, f, auth, central.AuthReversed)

	t.Run("DuplicateOnResend", func(t *testing.T) {
		wantStatus(t, f.MustSubmit(t, reversal("rev-1", "stl-1", 3_000)), "rev-1", duplicate)
		if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
			t.Errorf("balance: got %d, want %d (credited once)", got, want)
		}
	})
	t.Run("ErrSecondReversal", func(t *testing.T) {
		wantStatus(t, f.MustSubmit(t, reversal("rev-2", "stl-1", 3_000)), "rev-2", refused)
		if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
			t.Errorf("balance: got %d, want %d (credited once)", got, want)
		}
	})
}

func TestSubmitSettlements_CaptureAndReversalInOneBatch(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)

	acks := f.MustSubmit(t, offlineCapture("stl-1", "acct-1", 4_000), reversal("rev-1", "stl-1", 4_000))
	wantStatus(t, acks, "stl-1", accepted)
	wantStatus(t, acks, "rev-1", accepted)
	if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}
}

func TestSubmitSettlements_OfflineCapture(t *testing.T) {
	t.Run("Funded", func(t *testing.T) {
		f := newFixture(t)
		f.MustAccount(t, "acct-1", 5_000)
		wantStatus(t, f.MustSubmit(t, offlineCapture("stl-1", "acct-1", 5_000)), "stl-1", accepted)
		if got, want := f.MustBalance(t, "acct-1"), int64(0); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
		wantStatus(t, f.MustSubmit(t, offlineCapture("stl-1", "acct-1", 5_000)), "stl-1", duplicate)
		if got, want := f.MustBalance(t, "acct-1"), int64(0); got != want {
			t.Errorf("balance after resend: got %d, want %d", got, want)
		}
	})

	t.Run("ErrInsufficientFunds", func(t *testing.T) {
		f := newFixture(t)
		f.MustAccount(t, "acct-1", 4_999)
		first := wantStatus(t, f.MustSubmit(t, offlineCapture("stl-1", "acct-1", 5_000)), "stl-1", refused)
		if got, want := first.GetMessage(), "insufficient funds"; got != want {
			t.Errorf("message: got %q, want %q", got, want)
		}
		if got, want := f.MustBalance(t, "acct-1"), int64(4_999); got != want {
			t.Errorf("balance: got %d, want %d (untouched)", got, want)
		}

		// Money arriving later does not change the answer: the store
		// keeps the settlement as disputed.
		f.MustAccount(t, "acct-1", 50_000)
		again := wantStatus(t, f.MustSubmit(t, offlineCapture("stl-1", "acct-1", 5_000)), "stl-1", refused)
		if got, want := again.GetMessage(), first.GetMessage(); got != want {
			t.Errorf("message on resend: got %q, want %q", got, want)
		}
		if got, want := f.MustBalance(t, "acct-1"), int64(50_000); got != want {
			t.Errorf("balance after resend: got %d, want %d", got, want)
		}
	})

	t.Run("ErrUnknownAccount", func(t *testing.T) {
		f := newFixture(t)
		wantStatus(t, f.MustSubmit(t, offlineCapture("stl-1", "nobody", 100)), "stl-1", refused)
	})
}

func TestSubmitSettlements_ReversalBeforeCapture(t *testing.T) {
	t.Run("NotAcked", func(t *testing.T) {
		f := newFixture(t)
		f.MustAccount(t, "acct-1", 10_000)

		acks := f.MustSubmit(t, reversal("rev-1", "stl-1", 1_000))
		if a, ok := acks["rev-1"]; ok {
			t.Fatalf("reversal of an unbooked capture: got ack %v, want none", a.GetStatus())
		}
		books, err := f.Ledger.Books()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := books.Settlement("rev-1"); ok {
			t.Errorf("reversal of an unbooked capture was recorded")
		}

		// Once the capture is booked, the resent reversal goes through.
		acks = f.MustSubmit(t, offlineCapture("stl-1", "acct-1", 1_000))
		wantStatus(t, acks, "stl-1", accepted)
		acks = f.MustSubmit(t, reversal("rev-1", "stl-1", 1_000))
		wantStatus(t, acks, "rev-1", accepted)
		if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
	})

	t.Run("ErrCaptureRefused", func(t *testing.T) {
		f := newFixture(t)
		f.MustAccount(t, "acct-1", 100)
		wantStatus(t, f.MustSubmit(t, offlineCapture("stl-1", "acct-1", 1_000)), "stl-1", refused)
		wantStatus(t, f.MustSubmit(t, reversal("rev-1", "stl-1", 1_000)), "rev-1", refused)
		if got, want := f.MustBalance(t, "acct-1"), int64(100); got != want {
			t.Errorf("balance: got %d, want %d (no credit for a refused capture)", got, want)
		}
	})
}

func TestSubmitSettlements_Malformed(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)

	unknownKind := offlineCapture("stl-kind", "acct-1", 100)
	unknownKind.Kind = storegatev1.SettlementKind_SETTLEMENT_KIND_UNSPECIFIED
	otherCurrency := offlineCapture("stl-currency", "acct-1", 100)
	otherCurrency.Currency = "USD"
	otherStore := offlineCapture("stl-store", "acct-1", 100)
	otherStore.StoreId = "store-2"
	noReverses := reversal("rev-none", "", 100)

	for _, tt := range []struct {
		name string
		stl  *storegatev1.Settlement
	}{
		{"NoID", offlineCapture("", "acct-1", 100)},
		{"ZeroAmount", offlineCapture("stl-zero", "acct-1", 0)},
		{"NegativeAmount", offlineCapture("stl-negative", "acct-1", -100)},
		{"UnknownKind", unknownKind},
		{"OtherCurrency", otherCurrency},
		{"OtherStore", otherStore},
		{"ReversalWithoutCapture", noReverses},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := wantStatus(t, f.MustSubmit(t, tt.stl), tt.stl.GetId(), refused)
			if a.GetMessage() == "" {
				t.Errorf("message: got none, want why")
			}
			// A resend is refused again.
			wantStatus(t, f.MustSubmit(t, tt.stl), tt.stl.GetId(), refused)
		})
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}

	t.Run("ErrNoStore", func(t *testing.T) {
		_, err := f.Client.SubmitSettlements(context.Background(), &storegatev1.SubmitSettlementsRequest{
			Settlements: []*storegatev1.Settlement{offlineCapture("stl-x", "acct-1", 100)},
		})
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Errorf("got %v (%v), want InvalidArgument", got, err)
		}
	})
}
