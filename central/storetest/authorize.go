package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"storegate/central"
	"storegate/gateway"
)

func testAuthorizeApprove(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)

	res := f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "txn-1", 3_000))
	if got := res.AuthorizationID; !strings.HasPrefix(got, "auth-") || len(got) != len("auth-")+32 {
		t.Errorf("authorization id: got %q, want auth- and 32 hex digits", got)
	}
	if got, want := res.Account, "acct-1"; got != want {
		t.Errorf("account: got %q, want %q", got, want)
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}

	books := f.MustBooks(t)
	if got := len(books.Authorizations); got != 1 {
		t.Fatalf("authorizations: got %d, want 1", got)
	}
	a := books.Authorizations[0]
	if a.ID != res.AuthorizationID || a.Status != central.AuthHeld || a.Amount != 3_000 || a.StoreID != "store-1" ||
		a.Lane != "lane-1" || a.POSTxnID != "txn-1" || a.Currency != "JPY" || !a.Created.Equal(f.Now) ||
		!strings.HasPrefix(a.Credential, "token:") {
		t.Errorf("authorization: got %+v, want %s held for 3000 at store-1, lane-1, txn-1, made at %v", a, res.AuthorizationID, f.Now)
	}
	if got, want := books.Accounts["acct-1"].Held, int64(3_000); got != want {
		t.Errorf("held: got %d, want %d", got, want)
	}
}

func testAuthorizeIdempotent(t *testing.T, ns NewStorage) {
	t.Run("SameSale", func(t *testing.T) {
		f := NewFixture(t, ns)
		f.MustAccount(t, "acct-1", 10_000)
		tok := f.Mint(t, "acct-1")

		first := f.MustApprove(t, Sale(tok, "txn-1", 3_000))
		again := f.MustApprove(t, Sale(tok, "txn-1", 3_000))
		if got, want := again.AuthorizationID, first.AuthorizationID; got != want {
			t.Errorf("authorization id on retry: got %q, want %q", got, want)
		}
		if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
			t.Errorf("balance after retry: got %d, want %d (debited once)", got, want)
		}
	})

	t.Run("ErrReplayedOtherAmount", func(t *testing.T) {
		f := NewFixture(t, ns)
		f.MustAccount(t, "acct-1", 10_000)
		tok := f.Mint(t, "acct-1")

		f.MustApprove(t, Sale(tok, "txn-1", 3_000))
		res := f.MustAuthorize(t, Sale(tok, "txn-1", 4_000))
		if res.Approved || res.Reason != gateway.ReasonReplayed {
			t.Errorf("same txn, other amount: got approved=%v reason=%v, want replayed", res.Approved, res.Reason)
		}
		if got, want := f.MustBalance(t, "acct-1"), int64(7_000); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
	})
}

func testAuthorizeReplayed(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)
	tok := f.Mint(t, "acct-1")
	f.MustApprove(t, Sale(tok, "txn-1", 1_000))

	otherStore := Sale(tok, "txn-1", 1_000)
	otherStore.StoreID = "store-2"
	otherLane := Sale(tok, "txn-1", 1_000)
	otherLane.Lane = "lane-2"
	for name, req := range map[string]*gateway.CentralRequest{
		"OtherStore": otherStore,
		"OtherLane":  otherLane,
		"OtherTxn":   Sale(tok, "txn-2", 1_000),
	} {
		t.Run(name, func(t *testing.T) {
			res := f.MustAuthorize(t, req)
			if res.Approved || res.Reason != gateway.ReasonReplayed {
				t.Errorf("got approved=%v reason=%v, want replayed", res.Approved, res.Reason)
			}
			if res.AuthorizationID != "" {
				t.Errorf("authorization id: got %q, want none", res.AuthorizationID)
			}
		})
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(9_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}
}

func testAuthorizeInsufficientFunds(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 1_000)
	tok := f.Mint(t, "acct-1")

	res := f.MustAuthorize(t, Sale(tok, "txn-1", 1_001))
	if res.Approved || res.Reason != gateway.ReasonInsufficientFunds {
		t.Fatalf("got approved=%v reason=%v, want insufficient funds", res.Approved, res.Reason)
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(1_000); got != want {
		t.Errorf("balance: got %d, want %d (untouched)", got, want)
	}

	t.Run("SameSaleSameDecline", func(t *testing.T) {
		res := f.MustAuthorize(t, Sale(tok, "txn-1", 1_001))
		if res.Approved || res.Reason != gateway.ReasonInsufficientFunds {
			t.Errorf("retry: got approved=%v reason=%v, want insufficient funds", res.Approved, res.Reason)
		}
	})
	t.Run("ErrReplayedElsewhere", func(t *testing.T) {
		res := f.MustAuthorize(t, Sale(tok, "txn-2", 500))
		if res.Approved || res.Reason != gateway.ReasonReplayed {
			t.Errorf("same token, smaller sale: got approved=%v reason=%v, want replayed", res.Approved, res.Reason)
		}
	})
	t.Run("NewTokenApproved", func(t *testing.T) {
		f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "txn-3", 1_000))
		if got, want := f.MustBalance(t, "acct-1"), int64(0); got != want {
			t.Errorf("balance: got %d, want %d", got, want)
		}
	})
}

func testAuthorizeUnknownAccount(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	res := f.MustAuthorize(t, Sale(f.Mint(t, "nobody"), "txn-1", 100))
	if res.Approved || res.Reason != gateway.ReasonCentralDeclined {
		t.Errorf("got approved=%v reason=%v, want central declined", res.Approved, res.Reason)
	}
}

func testAuthorizeTokenDeclines(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
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
		want  gateway.Reason
	}{
		{"Garbage", "SGP1:NOT-A-TOKEN", gateway.ReasonInvalidToken},
		{"NoPrefix", "hello", gateway.ReasonInvalidToken},
		{"BadSignature", badSig, gateway.ReasonBadSignature},
		{"UnknownKey", f.MintAt(t, otherKey, "acct-1", f.Now.Add(-10*time.Second), f.Now.Add(60*time.Second)), gateway.ReasonUnknownKey},
		{"Expired", f.MintAt(t, f.TokenKey, "acct-1", f.Now.Add(-10*time.Minute), f.Now.Add(-6*time.Minute)), gateway.ReasonExpired},
		{"NotYetValid", f.MintAt(t, f.TokenKey, "acct-1", f.Now.Add(5*time.Minute), f.Now.Add(6*time.Minute)), gateway.ReasonNotYetValid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := f.MustAuthorize(t, Sale(tt.token, "txn-"+tt.name, 100))
			if res.Approved || res.Reason != tt.want {
				t.Errorf("got approved=%v reason=%v (%s), want %v", res.Approved, res.Reason, res.Message, tt.want)
			}
		})
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
		t.Errorf("balance: got %d, want %d (untouched by declines)", got, want)
	}
	if got := len(f.MustBooks(t).Authorizations); got != 0 {
		t.Errorf("authorizations: got %d, want none recorded for tokens that do not verify", got)
	}
}

func testAuthorizePaymentCode(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 5_000)
	code, err := f.Ledger.IssueCode(context.Background(), "acct-1")
	if err != nil {
		t.Fatalf("IssueCode: %v", err)
	}

	first := f.MustApprove(t, Sale(code, "txn-1", 2_000))
	if got, want := first.Account, "acct-1"; got != want {
		t.Errorf("account: got %q, want %q", got, want)
	}
	t.Run("SameSale", func(t *testing.T) {
		again := f.MustApprove(t, Sale(code, "txn-1", 2_000))
		if got, want := again.AuthorizationID, first.AuthorizationID; got != want {
			t.Errorf("authorization id: got %q, want %q", got, want)
		}
	})
	t.Run("ErrReplayed", func(t *testing.T) {
		res := f.MustAuthorize(t, Sale(code, "txn-2", 2_000))
		if res.Approved || res.Reason != gateway.ReasonReplayed {
			t.Errorf("got approved=%v reason=%v, want replayed", res.Approved, res.Reason)
		}
	})
	t.Run("ErrUnknownCode", func(t *testing.T) {
		res := f.MustAuthorize(t, Sale("12345678901234567890", "txn-3", 100))
		if res.Approved || res.Reason != gateway.ReasonCentralDeclined {
			t.Errorf("got approved=%v reason=%v, want central declined", res.Approved, res.Reason)
		}
		if res.Message == "" {
			t.Errorf("message: got none, want a reason for the store")
		}
	})
	t.Run("NotInTheBooks", func(t *testing.T) {
		for _, a := range f.MustBooks(t).Authorizations {
			if strings.Contains(a.Credential, code) {
				t.Errorf("authorization %s names the code itself: %q", a.ID, a.Credential)
			}
		}
	})
	if got, want := f.MustBalance(t, "acct-1"), int64(3_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}
}

func testAuthorizeMalformed(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)
	tok := f.Mint(t, "acct-1")

	for _, tt := range []struct {
		name string
		edit func(*gateway.CentralRequest)
	}{
		{"NoStore", func(r *gateway.CentralRequest) { r.StoreID = "" }},
		{"BadLane", func(r *gateway.CentralRequest) { r.Lane = "lane 1" }},
		{"NoTxn", func(r *gateway.CentralRequest) { r.POSTxnID = "" }},
		{"ZeroAmount", func(r *gateway.CentralRequest) { r.Amount = 0 }},
		{"NegativeAmount", func(r *gateway.CentralRequest) { r.Amount = -100 }},
		{"OtherCurrency", func(r *gateway.CentralRequest) { r.Currency = "USD" }},
		{"NoToken", func(r *gateway.CentralRequest) { r.Credential = "" }},
		{"LinesDoNotAddUp", func(r *gateway.CentralRequest) {
			r.Lines = []gateway.Line{{SKU: "4901234567894", Quantity: 1, UnitPrice: 99}}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := Sale(tok, "txn-1", 100)
			tt.edit(req)
			_, err := f.Authorize(context.Background(), req)
			if got := gateway.ErrorCode(err); got != gateway.EINVALID {
				t.Errorf("got %q (%v), want %q", got, err, gateway.EINVALID)
			}
		})
	}
	// The token was never used by a malformed request.
	f.MustApprove(t, Sale(tok, "txn-1", 100))
}

// A caller whose context has ended is answered with its context's error,
// and nothing is recorded: the token still pays.
func testAuthorizeCanceled(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 10_000)
	tok := f.Mint(t, "acct-1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Authorize(ctx, Sale(tok, "txn-1", 100)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Authorize with an ended context: got %v, want context.Canceled", err)
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(10_000); got != want {
		t.Errorf("balance: got %d, want %d", got, want)
	}
	f.MustApprove(t, Sale(tok, "txn-2", 100))
}

// testAuthorizeConcurrentOneToken: 100 callers authorize one token at
// once, each for its own sale. Exactly one is approved and debited; the
// rest are replays.
func testAuthorizeConcurrentOneToken(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 1_000_000)
	tok := f.Mint(t, "acct-1")

	const n = 100
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		approved []string
		replayed int
		failures []error
		start    = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			res, err := f.Authorize(context.Background(), Sale(tok, Txn(i), 1_000))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failures = append(failures, err)
			case res.Approved:
				approved = append(approved, res.AuthorizationID)
			case res.Reason == gateway.ReasonReplayed:
				replayed++
			default:
				failures = append(failures, errors.New("declined "+res.Reason.String()+": "+res.Message))
			}
		})
	}
	close(start)
	wg.Wait()

	if len(failures) > 0 {
		t.Fatalf("%d calls failed, first: %v", len(failures), failures[0])
	}
	if len(approved) != 1 || replayed != n-1 {
		t.Errorf("got %d approved and %d replayed, want 1 and %d", len(approved), replayed, n-1)
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(999_000); got != want {
		t.Errorf("balance: got %d, want %d (one debit)", got, want)
	}
	if got := len(f.MustBooks(t).Authorizations); got != 1 {
		t.Errorf("authorizations recorded: got %d, want 1", got)
	}
}

// testAuthorizeConcurrentTokens decides many sales of one account at once:
// each is approved and debited once.
func testAuthorizeConcurrentTokens(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
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
			res, err := f.Authorize(context.Background(), Sale(tokens[i], Txn(i), 1_000))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				t.Errorf("sale %d: %v", i, err)
			case !res.Approved:
				t.Errorf("sale %d: declined %v (%s)", i, res.Reason, res.Message)
			default:
				ids[res.AuthorizationID] = true
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

// testAuthorizeFrozenAccount: central applies the freeze lists it
// publishes to its own books, so a frozen account is refused by central
// too, whichever store asks and whether or not the store has heard yet.
func testAuthorizeFrozenAccount(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	s := NewSigner(f.RootKey)
	f.MustAccount(t, "acct-1", 100000)
	f.MustAccount(t, "acct-2", 100000)
	f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "pos-1", 1000))

	MustPublish(t, f.Publisher, gateway.DocumentFreeze, s.Freeze(t, 1, false, frozenEntry("acct-1", "takeover")))
	tok := f.Mint(t, "acct-1")
	res := f.MustAuthorize(t, Sale(tok, "pos-2", 1000))
	if res.Approved || res.Reason != gateway.ReasonAccountFrozen {
		t.Fatalf("frozen account: got approved %v reason %v, want declined account frozen", res.Approved, res.Reason)
	}
	if got := f.MustBalance(t, "acct-1"); got != 99000 {
		t.Errorf("balance: got %d, want 99000 (nothing debited while frozen)", got)
	}
	f.MustApprove(t, Sale(f.Mint(t, "acct-2"), "pos-3", 1000))

	// Unfrozen: a new token pays again; the declined one stays used.
	MustPublish(t, f.Publisher, gateway.DocumentFreeze, s.Freeze(t, 2, false, unfrozenEntry("acct-1")))
	if res := f.MustAuthorize(t, Sale(tok, "pos-4", 1000)); res.Reason != gateway.ReasonReplayed {
		t.Errorf("the token declined while frozen, again: got %v, want replayed", res.Reason)
	}
	f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "pos-5", 1000))
}
