package hqbooks_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/cmd/internal/hqbooks"
	storegatev1 "storegate/proto/storegate/v1"
)

var since = time.Date(2026, 3, 1, 10, 0, 0, 0, time.Local)

func books() *storegatev1.GetBooksResponse {
	return &storegatev1.GetBooksResponse{
		Accounts: []*storegatev1.AccountBooks{
			{Account: "acct-0001", Currency: "JPY", Balance: 98800, Funded: 100000, Debited: 1200, Captured: 1200},
			{Account: "acct-0002", Currency: "JPY", Balance: 500, Funded: 500},
		},
		Holds: []*storegatev1.Hold{{AuthorizationId: "auth-1", StoreId: "store-0001", Lane: "2", PosTransactionId: "pos-2",
			Amount: 600, Currency: "JPY", CreatedAt: timestamppb.New(since)}},
		VoidedHolds: 3,
		Settlements: []*storegatev1.BookedSettlement{
			{Settlement: &storegatev1.Settlement{Id: "stl-1", Kind: storegatev1.SettlementKind_SETTLEMENT_KIND_CAPTURE, StoreId: "store-0001",
				Lane: "1", PosTransactionId: "pos-1", Amount: 1200, Currency: "JPY"}, Status: storegatev1.SettlementStatus_SETTLEMENT_STATUS_ACCEPTED},
			{Settlement: &storegatev1.Settlement{Id: "stl-2", Kind: storegatev1.SettlementKind_SETTLEMENT_KIND_REVERSAL, StoreId: "store-0001",
				Lane: "1", PosTransactionId: "pos-9", Amount: 50, Currency: "JPY"}, Status: storegatev1.SettlementStatus_SETTLEMENT_STATUS_REFUSED,
				Message: "no such capture"},
		},
	}
}

func TestWrite(t *testing.T) {
	var out bytes.Buffer
	if err := hqbooks.Write(&out, books()); err != nil {
		t.Fatal(err)
	}
	want := "accounts (balance, then funded / debited / credited / held / captured / voided):\n" +
		"  acct-0001 98800 JPY  (100000 / 1200 / 0 / 0 / 1200 / 0)\n" +
		"  acct-0002 500 JPY  (500 / 0 / 0 / 0 / 0 / 0)\n" +
		"holds not captured: 1 (and 3 voided after expiring)\n" +
		"  auth-1 600 JPY  store store-0001 lane 2 txn pos-2  since 2026-03-01 10:00:00\n" +
		"settlements booked: 2\n" +
		"  capture  1200 JPY  stl-1  store store-0001 lane 1 txn pos-1  accepted \n" +
		"  reversal 50 JPY  stl-2  store store-0001 lane 1 txn pos-9  refused no such capture\n"
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteJSON(t *testing.T) {
	var out bytes.Buffer
	if err := hqbooks.WriteJSON(&out, books()); err != nil {
		t.Fatal(err)
	}
	var back storegatev1.GetBooksResponse
	if err := protojson.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatalf("the JSON does not read back: %v\n%s", err, out.String())
	}
	if !proto.Equal(&back, books()) {
		t.Errorf("read back %v, want %v", &back, books())
	}
}

func TestCheck(t *testing.T) {
	if err := hqbooks.Check(books()); err != nil {
		t.Errorf("balanced books: %v", err)
	}
	b := books()
	b.Problems = []string{"account acct-0001: balance 98800, want 99400", "capture stl-1: authorization auth-x not approved or missing"}
	err := hqbooks.Check(b)
	if err == nil || !strings.HasPrefix(err.Error(), "books do not add up: ") ||
		!strings.Contains(err.Error(), b.Problems[0]+"\n"+b.Problems[1]) {
		t.Errorf("got %v, want both problems, one a line", err)
	}
}
