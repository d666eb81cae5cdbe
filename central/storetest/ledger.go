package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"storegate/central"
	"storegate/gateway"
)

func testAccounts(t *testing.T, ns NewStorage) {
	ctx := context.Background()
	f := NewFixture(t, ns)
	l := f.Ledger

	t.Run("EnsureCreatesOnce", func(t *testing.T) {
		if err := l.EnsureAccount(ctx, "acct-1", 1_000); err != nil {
			t.Fatal(err)
		}
		if err := l.EnsureAccount(ctx, "acct-1", 9_999); err != nil {
			t.Fatal(err)
		}
		if got, err := l.Balance(ctx, "acct-1"); err != nil || got != 1_000 {
			t.Errorf("balance: got %d (%v), want 1000", got, err)
		}
	})
	t.Run("SetOverrides", func(t *testing.T) {
		if err := l.SetAccount(ctx, "acct-1", 250); err != nil {
			t.Fatal(err)
		}
		if got, err := l.Balance(ctx, "acct-1"); err != nil || got != 250 {
			t.Errorf("balance: got %d (%v), want 250", got, err)
		}
		ab := f.MustBooks(t).Accounts["acct-1"]
		if ab.Funded != 250 || ab.Currency != "JPY" {
			t.Errorf("books: got %+v, want funded 250 in JPY", ab)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := l.Balance(ctx, "nobody")
		if got := gateway.ErrorCode(err); got != gateway.ENOTFOUND {
			t.Errorf("got %q (%v), want %q", got, err, gateway.ENOTFOUND)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		for name, err := range map[string]error{
			"EmptyID":         l.SetAccount(ctx, "", 1),
			"SpaceInID":       l.EnsureAccount(ctx, "acct 1", 1),
			"NegativeBalance": l.SetAccount(ctx, "acct-2", -1),
		} {
			if got := gateway.ErrorCode(err); got != gateway.EINVALID {
				t.Errorf("%s: got %q (%v), want %q", name, got, err, gateway.EINVALID)
			}
		}
	})
}

func testIssueCode(t *testing.T, ns NewStorage) {
	ctx := context.Background()
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 100)
	seen := make(map[string]bool)
	for range 20 {
		code, err := f.Ledger.IssueCode(ctx, "acct-1")
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
		_, err := f.Ledger.IssueCode(ctx, "nobody")
		if got := gateway.ErrorCode(err); got != gateway.ENOTFOUND {
			t.Errorf("got %q (%v), want %q", got, err, gateway.ENOTFOUND)
		}
	})
}

// The books, the spent tokens and the dedupe of settlements survive
// closing the storage and opening it again.
func testPersistsAcrossReopen(t *testing.T, ns NewStorage) {
	ctx := context.Background()
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 1_000)
	tok := f.Mint(t, "acct-1")
	req := Sale(tok, "txn-1", 700)
	first := f.MustApprove(t, req)
	WantStatus(t, f.MustSubmit(t, Capture("stl-1", first.AuthorizationID, "acct-1", 700)), "stl-1", accepted)
	f.Publisher.Close(ctx)
	MustClose(t, f.Ledger)

	f.Ledger = MustOpenLedger(t, f.Handle())
	if got := f.MustBalance(t, "acct-1"); got != 300 {
		t.Errorf("balance after reopen: got %d, want 300", got)
	}
	again := f.MustApprove(t, req)
	if again.AuthorizationID != first.AuthorizationID {
		t.Errorf("retry after reopen: got %+v, want approved as %s", again, first.AuthorizationID)
	}
	if res := f.MustAuthorize(t, Sale(tok, "txn-2", 100)); res.Reason != gateway.ReasonReplayed {
		t.Errorf("the token at another sale after reopen: got %v, want replayed", res.Reason)
	}
	WantStatus(t, f.MustSubmit(t, Capture("stl-1", first.AuthorizationID, "acct-1", 700)), "stl-1", duplicate)
	if got := f.MustBalance(t, "acct-1"); got != 300 {
		t.Errorf("balance after retries: got %d, want 300", got)
	}
}

// Settlements submitted while the ledger closes are either booked (and in
// the books after a reopen) or refused as unavailable and not booked; after
// Close every call is refused so.
func testClose(t *testing.T, ns NewStorage) {
	ctx := context.Background()
	const n = 40
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 1_000_000)
	f.Publisher.Close(ctx)
	stl := func(i int) gateway.Settlement { return OfflineCapture(fmt.Sprintf("stl-%02d", i), "acct-1", 100) }
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = f.Submit(ctx, stl(i)) })
		if i == n/2 {
			wg.Go(func() {
				if err := f.Ledger.Close(ctx); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
	}
	wg.Wait()
	if _, err := f.Submit(ctx, stl(n)); gateway.ErrorCode(err) != gateway.EUNAVAILABLE {
		t.Errorf("SubmitSettlements after Close: got %v, want %s", err, gateway.EUNAVAILABLE)
	}
	if _, err := f.Ledger.Balance(ctx, "acct-1"); gateway.ErrorCode(err) != gateway.EUNAVAILABLE {
		t.Errorf("Balance after Close: got %v, want %s", err, gateway.EUNAVAILABLE)
	}
	if err := f.Ledger.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}

	f.Ledger = MustOpenLedger(t, f.Handle())
	books := f.MustBooks(t)
	booked := map[string]bool{}
	for _, b := range books.Settlements {
		booked[b.ID] = true
	}
	for i, err := range errs {
		id := stl(i).ID
		switch {
		case err == nil && !booked[id]:
			t.Errorf("settlement %s was answered but is not booked", id)
		case err != nil && gateway.ErrorCode(err) != gateway.EUNAVAILABLE:
			t.Errorf("settlement %s: got %v, want nil or %s", id, err, gateway.EUNAVAILABLE)
		case err != nil && booked[id]:
			t.Errorf("settlement %s was refused but is booked", id)
		}
	}
	if booked[stl(n).ID] {
		t.Errorf("the settlement submitted after Close is booked")
	}
	if got, want := f.MustBalance(t, "acct-1"), int64(1_000_000-100*len(booked)); got != want {
		t.Errorf("balance: got %d, want %d (%d captures booked)", got, want, len(booked))
	}
	t.Logf("%d of %d settlements booked before Close", len(booked), n)
}

func testOpenTwice(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	if err := f.Ledger.Storage().Open(context.Background()); err == nil {
		t.Error("second Open of an open storage: got no error")
	}
}

func testBooksTotals(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	held, captured := f.MustBookADay(t)

	books := f.MustBooks(t)
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
		f.MustAuthStatus(t, id, wantStatus)
	}
	for id, want := range map[string]gateway.SettlementStatus{
		"stl-2": accepted, "stl-3": accepted, "rev-3": accepted, "stl-4": refused,
	} {
		s, ok := books.Settlement(id)
		if !ok || s.Status != want {
			t.Errorf("settlement %s: got %v (found %v), want %v", id, s.Status, ok, want)
		}
	}
	if s, _ := books.Settlement("stl-3"); s.ReversedBy != "rev-3" {
		t.Errorf("stl-3 reversed by: got %q, want rev-3", s.ReversedBy)
	}
	var ids []string
	for _, s := range books.Settlements {
		ids = append(ids, s.ID)
	}
	if got := fmt.Sprint(ids); got != "[rev-3 stl-2 stl-3 stl-4]" {
		t.Errorf("settlements: got %s, want them in id order", got)
	}
}

// testOverlappingBatches: stores' forwarders resend batches that overlap
// (a batch was booked but its answer lost), many at once. Every settlement
// is booked once, and each account is debited once per settlement.
func testOverlappingBatches(t *testing.T, ns NewStorage) {
	f := NewFixture(t, ns)
	const (
		accounts   = 8
		perBatch   = 50
		batches    = 12
		overlap    = 25
		submitters = 3
	)
	for a := range accounts {
		f.MustAccount(t, fmt.Sprintf("acct-%d", a), 1_000_000)
	}
	stl := func(i int) gateway.Settlement {
		return OfflineCapture(fmt.Sprintf("stl-%04d", i), fmt.Sprintf("acct-%d", i%accounts), int64(1+i%7))
	}
	// Batch b holds settlements [b*overlap, b*overlap+perBatch): each
	// overlaps the next by half. Every batch is sent by several
	// submitters at once.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acks  = make(map[string]map[gateway.SettlementStatus]int)
		start = make(chan struct{})
	)
	for b := range batches {
		batch := make([]gateway.Settlement, 0, perBatch)
		for i := b * overlap; i < b*overlap+perBatch; i++ {
			batch = append(batch, stl(i))
		}
		for range submitters {
			wg.Go(func() {
				<-start
				list, err := f.Submit(context.Background(), batch...)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("batch %d: %v", b, err)
					return
				}
				for _, a := range list {
					if acks[a.ID] == nil {
						acks[a.ID] = make(map[gateway.SettlementStatus]int)
					}
					acks[a.ID][a.Status]++
				}
			})
		}
	}
	close(start)
	wg.Wait()

	total := (batches-1)*overlap + perBatch
	want := make(map[string]int64)
	for i := range total {
		s := stl(i)
		want[s.Account] += s.Amount
		got := acks[s.ID]
		if got[accepted] != 1 || got[refused] != 0 {
			t.Errorf("%s: answered %v, want accepted once, then duplicates", s.ID, got)
		}
	}
	books := f.MustBooks(t)
	if len(books.Settlements) != total {
		t.Errorf("settlements booked: got %d, want %d", len(books.Settlements), total)
	}
	for a := range accounts {
		id := fmt.Sprintf("acct-%d", a)
		if got := books.Accounts[id].Balance; got != 1_000_000-want[id] {
			t.Errorf("%s: balance %d, want %d", id, got, 1_000_000-want[id])
		}
	}
}

// A storage hands out copies: changing what a transaction read changes
// nothing stored.
func testReadsAreCopies(t *testing.T, ns NewStorage) {
	ctx := context.Background()
	f := NewFixture(t, ns)
	f.MustAccount(t, "acct-1", 500)
	err := f.Ledger.Storage().View(ctx, func(tx central.Tx) error {
		accts, err := tx.Accounts([]string{"acct-1", "nobody"})
		if err != nil {
			return err
		}
		if len(accts) != 1 || accts["acct-1"].Balance != 500 || accts["acct-1"].ID != "acct-1" {
			return fmt.Errorf("Accounts: got %v, want acct-1 alone with 500", accts)
		}
		accts["acct-1"].Balance = 1
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.MustBalance(t, "acct-1"); got != 500 {
		t.Errorf("balance: got %d, want 500", got)
	}
	t.Run("ErrWriteInView", func(t *testing.T) {
		err := f.Ledger.Storage().View(ctx, func(tx central.Tx) error {
			return tx.PutAccounts([]*central.Account{{ID: "acct-1", Balance: 2, Currency: "JPY"}})
		})
		if err == nil {
			t.Error("PutAccounts in a View: got no error")
		}
		if got := f.MustBalance(t, "acct-1"); got != 500 {
			t.Errorf("balance: got %d, want 500", got)
		}
	})
	t.Run("FnErrorUnchanged", func(t *testing.T) {
		sentinel := errors.New("no thanks")
		err := f.Ledger.Storage().Update(ctx, func(tx central.Tx) error {
			if err := tx.PutAccounts([]*central.Account{{ID: "acct-1", Balance: 3, Currency: "JPY"}}); err != nil {
				return err
			}
			return sentinel
		})
		if !errors.Is(err, sentinel) {
			t.Errorf("Update: got %v, want fn's error", err)
		}
		if got := f.MustBalance(t, "acct-1"); got != 500 {
			t.Errorf("balance: got %d, want 500 (fn's writes rolled back)", got)
		}
	})
	t.Run("Times", func(t *testing.T) {
		at := time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)
		f.Now = at
		f.MustApprove(t, Sale(f.Mint(t, "acct-1"), "txn-time", 1))
		for _, a := range f.MustBooks(t).Authorizations {
			if a.POSTxnID == "txn-time" && (!a.Created.Equal(at) || a.Created.Location() != time.UTC) {
				t.Errorf("created: got %v, want %v in UTC", a.Created, at)
			}
		}
	})
}
