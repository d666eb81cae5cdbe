package central_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/central"
	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

const (
	reasonReplayed     = storegatev1.DeclineReason_DECLINE_REASON_REPLAYED
	reasonInsufficient = storegatev1.DeclineReason_DECLINE_REASON_INSUFFICIENT_FUNDS
	reasonCentral      = storegatev1.DeclineReason_DECLINE_REASON_CENTRAL_DECLINED
)

func TestAuthorize_Approve(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)

	resp := f.MustApprove(t, sale(f.Mint(t, "acct-1"), "txn-1", 3_000))
	if got := resp.GetAuthorizationId(); !strings.HasPrefix(got, "auth-") || len(got) != len("auth-")+32 {
		t.Errorf("authorization id: got %q, want auth- and 32 hex digits", got)
	}
	if got, want := resp.GetAccount(), "acct-1"; got != want {
		t.Errorf("account: got %q, want %q", got, want)
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}

	books, err := f.Ledger.Books()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(books.Authorizations); got != 1 {
		t.Fatalf("authorizations: got %d, want 1", got)
	}
	a := books.Authorizations[0]
	if a.ID != resp.GetAuthorizationId() || a.Status != central.AuthHeld || a.Amount != 3_000 || a.StoreID != "store-1" {
		t.Errorf("authorization: got %+v, want %s held for 3000 at store-1", a, resp.GetAuthorizationId())
	}
	if got, want := books.Accounts["acct-1"].Held, int64(3_000); got != want {
		t.Errorf("held: got %d, want %d", got, want)
	}
}

func TestAuthorize_Idempotent(t *testing.T) {
	t.Run("SameSale", func(t *testing.T) {
		f := newFixture(t)
		f.MustAccount(t, "acct-1", 10_000)
		tok := f.Mint(t, "acct-1")

		first := f.MustApprove(t, sale(tok, "txn-1", 3_000))
		again := f.MustApprove(t, sale(tok, "txn-1", 3_000))
		if got, want := again.GetAuthorizationId(), first.GetAuthorizationId(); got != want {
			t.Errorf("authorization id on retry: got %q, want %q", got, want)
		}
		if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
			t.Errorf("balance after retry: got %d, want %d (debited once)", got, want)
		}
	})

	t.Run("ErrReplayedOtherAmount", func(t *testing.T) {
		f := newFixture(t)
		f.MustAccount(t, "acct-1", 10_000)
		tok := f.Mint(t, "acct-1")

		f.MustApprove(t, sale(tok, "txn-1", 3_000))
		resp := f.MustAuthorize(t, sale(tok, "txn-1", 4_000))
		if resp.GetApproved() || resp.GetReason() != reasonReplayed {
			t.Errorf("same txn, other amount: got approved=%v reason=%v, want REPLAYED", resp.GetApproved(), resp.GetReason())
		}
		if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
	})
}

func TestAuthorize_Replayed(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	tok := f.Mint(t, "acct-1")
	f.MustApprove(t, sale(tok, "txn-1", 1_000))

	otherStore := sale(tok, "txn-1", 1_000)
	otherStore.StoreId = "store-2"
	otherLane := sale(tok, "txn-1", 1_000)
	otherLane.Lane = "lane-2"
	for name, req := range map[string]*storegatev1.CentralServiceAuthorizeRequest{
		"OtherStore": otherStore,
		"OtherLane":  otherLane,
		"OtherTxn":   sale(tok, "txn-2", 1_000),
	} {
		t.Run(name, func(t *testing.T) {
			resp := f.MustAuthorize(t, req)
			if resp.GetApproved() || resp.GetReason() != reasonReplayed {
				t.Errorf("got approved=%v reason=%v, want REPLAYED", resp.GetApproved(), resp.GetReason())
			}
			if resp.GetAuthorizationId() != "" {
				t.Errorf("authorization id: got %q, want none", resp.GetAuthorizationId())
			}
		})
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(9_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}
}

func TestAuthorize_InsufficientFunds(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 1_000)
	tok := f.Mint(t, "acct-1")

	resp := f.MustAuthorize(t, sale(tok, "txn-1", 1_001))
	if resp.GetApproved() || resp.GetReason() != reasonInsufficient {
		t.Fatalf("got approved=%v reason=%v, want INSUFFICIENT_FUNDS", resp.GetApproved(), resp.GetReason())
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(1_000); got != want {
		t.Errorf("balance: got %d, want %d (untouched)", got, want)
	}

	t.Run("SameSaleSameDecline", func(t *testing.T) {
		resp := f.MustAuthorize(t, sale(tok, "txn-1", 1_001))
		if resp.GetApproved() || resp.GetReason() != reasonInsufficient {
			t.Errorf("retry: got approved=%v reason=%v, want INSUFFICIENT_FUNDS", resp.GetApproved(), resp.GetReason())
		}
	})
	t.Run("ErrReplayedElsewhere", func(t *testing.T) {
		resp := f.MustAuthorize(t, sale(tok, "txn-2", 500))
		if resp.GetApproved() || resp.GetReason() != reasonReplayed {
			t.Errorf("same token, smaller sale: got approved=%v reason=%v, want REPLAYED", resp.GetApproved(), resp.GetReason())
		}
	})
	t.Run("NewTokenApproved", func(t *testing.T) {
		f.MustApprove(t, sale(f.Mint(t, "acct-1"), "txn-3", 1_000))
		if got, want := f.MustBalance(t, "acct-1"), int64(0); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
	})
}

func TestAuthorize_UnknownAccount(t *testing.T) {
	f := newFixture(t)
	resp := f.MustAuthorize(t, sale(f.Mint(t, "nobody"), "txn-1", 100))
	if resp.GetApproved() || resp.GetReason() != reasonCentral {
		t.Errorf("got approved=%v reason=%v, want CENTRAL_DECLINED", resp.GetApproved(), resp.GetReason())
	}
}

func TestAuthorize_TokenDeclines(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)

	_, otherKey, err := gateway.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	badSig := func() string {
		tok := f.Mint(t, "acct-1")
		raw, err := gateway.Base45Decode(strings.TrimPrefix(tok, gateway.TokenPrefix))
		if err != nil {
			t.Fatal(err)
		}
		raw[len(raw)-1] ^= 0x01 // the last byte of the signature
		return gateway.TokenPrefix + gateway.Base45Encode(raw)
	}()

	for _, tt := range []struct {
		name  string
		token string
		want  storegatev1.DeclineReason
	}{
		{"Garbage", "SGP1:NOT-A-TOKEN", storegatev1.DeclineReason_DECLINE_REASON_INVALID_TOKEN},
		{"NoPrefix", "hello", storegatev1.DeclineReason_DECLINE_REASON_INVALID_TOKEN},
		{"BadSignature", badSig, storegatev1.DeclineReason_DECLINE_REASON_BAD_SIGNATURE},
		{"UnknownKey", f.MintAt(t, otherKey, "acct-1", f.Now.Add(-10*time.Second), f.Now.Add(60*time.Second)),
			storegatev1.DeclineReason_DECLINE_REASON_UNKNOWN_KEY},
		{"Expired", f.MintAt(t, f.TokenKey, "acct-1", f.Now.Add(-10*time.Minute), f.Now.Add(-6*time.Minute)),
			storegatev1.DeclineReason_DECLINE_REASON_EXPIRED},
		{"NotYetValid", f.MintAt(t, f.TokenKey, "acct-1", f.Now.Add(5*time.Minute), f.Now.Add(6*time.Minute)),
			storegatev1.DeclineReason_DECLINE_REASON_NOT_YET_VALID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.MustAuthorize(t, sale(tt.token, "txn-"+tt.name, 100))
			if resp.GetApproved() || resp.GetReason() != tt.want {
				t.Errorf("got approved=%v reason=%v (%s), want %v", resp.GetApproved(), resp.GetReason(), resp.GetMessage(), tt.want)
			}
		})
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
		t.Errorf("balance: got %d, want %d (untouched by declines)", got, want)
	}
}

func TestAuthorize_PaymentCode(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 5_000)
	code, err := f.Ledger.IssueCode("acct-1")
	if err != nil {
		t.Fatalf("IssueCode: %v", err)
	}

	first := f.MustApprove(t, sale(code, "txn-1", 2_000))
	if got, want := first.GetAccount(), "acct-1"; got != want {
		t.Errorf("account: got %q, want %q", got, want)
	}
	t.Run("SameSale", func(t *testing.T) {
		again := f.MustApprove(t, sale(code, "txn-1", 2_000))
		if got, want := again.GetAuthorizationId(), first.GetAuthorizationId(); got != want {
			t.Errorf("authorization id: got %q, want %q", got, want)
		}
	})
	t.Run("ErrReplayed", func(t *testing.T) {
		resp := f.MustAuthorize(t, sale(code, "txn-2", 2_000))
		if resp.GetApproved() || resp.GetReason() != reasonReplayed {
			t.Errorf("got approved=%v reason=%v, want REPLAYED", resp.GetApproved(), resp.GetReason())
		}
	})
	t.Run("ErrUnknownCode", func(t *testing.T) {
		resp := f.MustAuthorize(t, sale("12345678901234567890", "txn-3", 100))
		if resp.GetApproved() || resp.GetReason() != reasonCentral {
			t.Errorf("got approved=%v reason=%v, want CENTRAL_DECLINED", resp.GetApproved(), resp.GetReason())
		}
		if resp.GetMessage() == "" {
			t.Errorf("message: got none, want a reason for the store")
		}
	})
	if got, want := f.MustBalance(t, "acct-1"), int64(3_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}
}

func TestAuthorize_Malformed(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 10_000)
	tok := f.Mint(t, "acct-1")

	for _, tt := range []struct {
		name string
		edit func(*storegatev1.CentralServiceAuthorizeRequest)
	}{
		{"NoStore", func(r *storegatev1.CentralServiceAuthorizeRequest) { r.StoreId = "" }},
		{"BadLane", func(r *storegatev1.CentralServiceAuthorizeRequest) { r.Lane = "lane 1" }},
		{"NoTxn", func(r *storegatev1.CentralServiceAuthorizeRequest) { r.PosTransactionId = "" }},
		{"ZeroAmount", func(r *storegatev1.CentralServiceAuthorizeRequest) { r.Amount = 0 }},
		{"NegativeAmount", func(r *storegatev1.CentralServiceAuthorizeRequest) { r.Amount = -100 }},
		{"OtherCurrency", func(r *storegatev1.CentralServiceAuthorizeRequest) { r.Currency = "USD" }},
		{"NoToken", func(r *storegatev1.CentralServiceAuthorizeRequest) { r.Token = "" }},
		{"LinesDoNotAddUp", func(r *storegatev1.CentralServiceAuthorizeRequest) {
			r.Lines = []*storegatev1.BasketLine{{Sku: "4901234567894", Quantity: 1, UnitPrice: 99}}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := sale(tok, "txn-1", 100)
			tt.edit(req)
			_, err := f.Client.Authorize(context.Background(), req)
			if got := status.Code(err); got != codes.InvalidArgument {
				t.Errorf("got %v (%v), want InvalidArgument", got, err)
			}
		})
	}
	// The token was never used by a malformed request.
	f.MustApprove(t, sale(tok, "txn-1", 100))
}

func TestAuthorize_ConcurrentOneToken(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 100_000)
	tok := f.Mint(t, "acct-1")

	const n = 50
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		approved int
		replayed int
		failures []error
		start    = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			resp, err := f.Client.Authorize(context.Background(), sale(tok, txn(i), 1_000))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures = append(failures, err)
				return
			}
			switch {
			case resp.GetApproved():
				approved++
			case resp.GetReason() == reasonReplayed:
				replayed++
			}
		})
	}
	close(start)
	wg.Wait()

	if len(failures) > 0 {
		t.Fatalf("%d calls failed, first: %v", len(failures), failures[0])
	}
	if approved != 1 || replayed != n-1 {
		t.Errorf("got %d approved and %d replayed, want 1 and %d", approved, replayed, n-1)
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(99_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}
}

// TestAuthorize_ConcurrentTokens decides many sales at once, which the
// ledger commits in shared transactions: each is approved and debited once.
func TestAuthorize_ConcurrentTokens(t *testing.T) {
	f := newFixture(t)
	f.MustAccount(t, "acct-1", 100_000)
	const n = 40
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = f.Mint(t, "acct-1")
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ids   = map[string]bool{}
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			resp, err := f.Client.Authorize(context.Background(), sale(tokens[i], txn(i), 1_000))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("sale %d: %v", i, err)
			case !resp.GetApproved():
				t.Errorf("sale %d: declined %v (%s)", i, resp.GetReason(), resp.GetMessage())
			default:
				ids[resp.GetAuthorizationId()] = true
			}
		})
	}
	close(start)
	wg.Wait()
	if len(ids) != n {
		t.Errorf("distinct authorization ids: got %d, want %d", len(ids), n)
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(100_000-n*1_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}
}
