package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"storegate/central"
	"storegate/gateway"
)

// NewStorage makes a fresh, empty place for HQ's records (a file, a
// database schema), to be removed at t's cleanup, and returns a function
// that returns a new, unopened central.Storage on it. Every call of that
// function gives another handle on the same records, so that the suite can
// close one and open the next, as a restarted HQ would.
type NewStorage func(t testing.TB) func() central.Storage

// Fixture is HQ's domain over a real storage: an opened ledger and
// publisher, a token-signing key the ledger trusts and HQ's root key.
type Fixture struct {
	Ledger    *central.Ledger
	Publisher *central.Publisher
	// TokenKey signs the tokens Mint makes; Keyring trusts it.
	TokenKey ed25519.PrivateKey
	Keyring  *gateway.Keyring
	// RootKey is HQ's root key, which the publisher trusts.
	RootKey ed25519.PrivateKey
	// Now is the ledger's clock, fixed for the test.
	Now time.Time
	// Handle returns another handle on the fixture's records.
	Handle func() central.Storage
}

// NewFixture opens a ledger and a publisher over a fresh storage. At
// cleanup it checks that the books add up, then closes both.
func NewFixture(t testing.TB, ns NewStorage) *Fixture {
	t.Helper()
	f := &Fixture{Now: time.Now().Truncate(time.Second), Handle: ns(t)}
	pub, priv, err := gateway.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f.TokenKey = priv
	f.Keyring, err = gateway.NewKeyring(1, []gateway.TrustedKey{{ID: gateway.KeyID(pub), Public: pub, Use: gateway.KeyUseToken}})
	if err != nil {
		t.Fatal(err)
	}
	if _, f.RootKey, err = gateway.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	f.Ledger = MustOpenLedger(t, f.Handle())
	f.Publisher = central.NewPublisher(f.Ledger, f.RootKey.Public().(ed25519.PublicKey))
	if err := f.Publisher.Open(context.Background()); err != nil {
		t.Fatalf("Publisher.Open: %v", err)
	}
	t.Cleanup(func() { f.Publisher.Close(context.Background()) })
	return f
}

// MustOpenLedger opens a ledger over st and, at cleanup, checks that its
// books balance, then closes it.
func MustOpenLedger(t testing.TB, st central.Storage) *central.Ledger {
	t.Helper()
	l := central.NewLedger(st)
	if err := l.Open(context.Background()); err != nil {
		t.Fatalf("Ledger.Open: %v", err)
	}
	t.Cleanup(func() { MustClose(t, l) })
	return l
}

// MustClose checks that a ledger's books balance, then closes it. Closing
// it twice is no error.
func MustClose(t testing.TB, l *central.Ledger) {
	t.Helper()
	books, err := l.Books(context.Background())
	switch {
	case gateway.ErrorCode(err) == gateway.EUNAVAILABLE:
		return // closed already
	case err != nil:
		t.Errorf("Books: %v", err)
	default:
		if err := books.Verify(); err != nil {
			t.Errorf("books do not balance:\n%v", err)
		}
	}
	if err := l.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// MustAccount sets an account's balance, creating it.
func (f *Fixture) MustAccount(t testing.TB, id string, balance int64) {
	t.Helper()
	if err := f.Ledger.SetAccount(context.Background(), id, balance); err != nil {
		t.Fatalf("SetAccount(%s): %v", id, err)
	}
}

// MustBalance returns an account's balance.
func (f *Fixture) MustBalance(t testing.TB, id string) int64 {
	t.Helper()
	b, err := f.Ledger.Balance(context.Background(), id)
	if err != nil {
		t.Fatalf("Balance(%s): %v", id, err)
	}
	return b
}

// MustBooks reads the books.
func (f *Fixture) MustBooks(t testing.TB) *central.Books {
	t.Helper()
	b, err := f.Ledger.Books(context.Background())
	if err != nil {
		t.Fatalf("Books: %v", err)
	}
	return b
}

// Mint returns a fresh token for account, issued 10 s ago and valid for
// 60 s more, signed by the fixture's token key.
func (f *Fixture) Mint(t testing.TB, account string) string {
	t.Helper()
	return f.MintAt(t, f.TokenKey, account, f.Now.Add(-10*time.Second), f.Now.Add(60*time.Second))
}

// MintAt returns a token for account with the given key and times.
func (f *Fixture) MintAt(t testing.TB, key ed25519.PrivateKey, account string, iat, exp time.Time) string {
	t.Helper()
	id, err := gateway.NewTokenID()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := gateway.MintToken(key, gateway.Claims{
		Issuer: "hq", Account: account, IssuedAt: iat, Expires: exp,
		TokenID: id, Device: "phone-1", Assurance: gateway.AssuranceDeviceBound,
	})
	if err != nil {
		t.Fatalf("MintToken: %v", err)
	}
	return tok
}

// MintWithID returns a fresh token for account and its token id.
func (f *Fixture) MintWithID(t testing.TB, account string) (string, []byte) {
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

// Sale returns a well-formed request for amount at store-1, lane-1.
func Sale(token, txn string, amount int64) *gateway.CentralRequest {
	return &gateway.CentralRequest{StoreID: "store-1", Lane: "lane-1", POSTxnID: txn, Credential: token, Amount: amount, Currency: "JPY"}
}

// Authorize asks the ledger at the fixture's time with its keys.
func (f *Fixture) Authorize(ctx context.Context, req *gateway.CentralRequest) (*gateway.CentralResult, error) {
	return f.Ledger.Authorize(ctx, req, f.Keyring, f.Now)
}

// MustAuthorize authorizes req and fails the test on an error.
func (f *Fixture) MustAuthorize(t testing.TB, req *gateway.CentralRequest) *gateway.CentralResult {
	t.Helper()
	res, err := f.Authorize(context.Background(), req)
	if err != nil {
		t.Fatalf("Authorize(%s/%s): %v", req.Lane, req.POSTxnID, err)
	}
	return res
}

// MustApprove authorizes req and fails the test unless it is approved.
func (f *Fixture) MustApprove(t testing.TB, req *gateway.CentralRequest) *gateway.CentralResult {
	t.Helper()
	res := f.MustAuthorize(t, req)
	if !res.Approved {
		t.Fatalf("Authorize(%s): declined %v (%s), want approved", req.POSTxnID, res.Reason, res.Message)
	}
	return res
}

// Submit books settlements from store-1 at the fixture's time.
func (f *Fixture) Submit(ctx context.Context, stls ...gateway.Settlement) ([]gateway.SettlementAck, error) {
	return f.Ledger.SubmitSettlements(ctx, "store-1", stls, f.Now)
}

// MustSubmit submits settlements from store-1 and returns the acks by
// settlement id.
func (f *Fixture) MustSubmit(t testing.TB, stls ...gateway.Settlement) map[string]gateway.SettlementAck {
	t.Helper()
	list, err := f.Submit(context.Background(), stls...)
	if err != nil {
		t.Fatalf("SubmitSettlements: %v", err)
	}
	acks := make(map[string]gateway.SettlementAck)
	for _, a := range list {
		if _, dup := acks[a.ID]; dup {
			t.Fatalf("SubmitSettlements: two acks for %q", a.ID)
		}
		acks[a.ID] = a
	}
	return acks
}

// WantStatus fails the test unless the ack for id has the status want, and
// returns the ack.
func WantStatus(t testing.TB, acks map[string]gateway.SettlementAck, id string, want gateway.SettlementStatus) gateway.SettlementAck {
	t.Helper()
	a, ok := acks[id]
	if !ok {
		t.Fatalf("no ack for %s, want %v", id, want)
	}
	if a.Status != want {
		t.Fatalf("ack %s: got %v (%q), want %v", id, a.Status, a.Message, want)
	}
	return a
}

// Capture returns a capture settlement of store-1.
func Capture(id, authID, account string, amount int64) gateway.Settlement {
	return gateway.Settlement{
		ID: id, StoreID: "store-1", Kind: gateway.SettlementCapture,
		Lane: "lane-1", POSTxnID: "txn-" + id, AuthorizationID: authID,
		Account: account, Amount: amount, Currency: "JPY", Mode: gateway.ModeOnline,
	}
}

// OfflineCapture returns a capture the store approved offline, with a token
// id derived from its id (a resend carries the same one).
func OfflineCapture(id, account string, amount int64) gateway.Settlement {
	s := Capture(id, "", account, amount)
	s.Mode = gateway.ModeOffline
	sum := sha256.Sum256([]byte("token of " + id))
	s.TokenID = sum[:gateway.TokenIDSize]
	return s
}

// OfflineSale returns the offline capture a store sends for a sale it
// approved offline at store-1, lane-1, txn, with the token id.
func OfflineSale(id, txn, account string, tokenID []byte, amount int64) gateway.Settlement {
	s := OfflineCapture(id, account, amount)
	s.POSTxnID, s.TokenID = txn, tokenID
	return s
}

// Reversal returns a reversal of the capture capID.
func Reversal(id, capID string, amount int64) gateway.Settlement {
	return gateway.Settlement{
		ID: id, StoreID: "store-1", Kind: gateway.SettlementReversal,
		Lane: "lane-1", POSTxnID: "txn-" + capID, Amount: amount, Currency: "JPY",
		ReversesID: capID,
	}
}

// MustBookADay opens acct-1 with 10000 and books a day of its sales: a hold
// of 1000 never captured (txn-1), a sale of 2000 captured as stl-2, an
// offline capture of 3000 reversed (stl-3 by rev-3), and an offline capture
// refused for want of funds (stl-4). It returns the held and the captured
// authorization ids.
func (f *Fixture) MustBookADay(t testing.TB) (held, captured string) {
	t.Helper()
	f.MustAccount(t, "acct-1", 10_000)
	held = f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "txn-1", 1_000)).AuthorizationID
	captured = f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "txn-2", 2_000)).AuthorizationID
	WantStatus(t, f.MustSubmit(t, Capture("stl-2", captured, "acct-1", 2_000)), "stl-2", gateway.SettlementAccepted)
	WantStatus(t, f.MustSubmit(t, OfflineCapture("stl-3", "acct-1", 3_000)), "stl-3", gateway.SettlementAccepted)
	WantStatus(t, f.MustSubmit(t, Reversal("rev-3", "stl-3", 3_000)), "rev-3", gateway.SettlementAccepted)
	WantStatus(t, f.MustSubmit(t, OfflineCapture("stl-4", "acct-1", 1_000_000)), "stl-4", gateway.SettlementRefused)
	return held, captured
}

// MustAuthStatus fails the test unless the authorization id has status
// want.
func (f *Fixture) MustAuthStatus(t testing.TB, id string, want central.AuthStatus) {
	t.Helper()
	for _, a := range f.MustBooks(t).Authorizations {
		if a.ID == id {
			if a.Status != want {
				t.Errorf("authorization %s: got %s, want %s", id, a.Status, want)
			}
			return
		}
	}
	t.Errorf("authorization %s not found", id)
}

// Txn returns the i-th POS transaction id.
func Txn(i int) string { return fmt.Sprintf("txn-%04d", i) }
