package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	storegatev1 "storegate/proto/storegate/v1"
)

// fakeHQ answers GetBooks with the books it holds, as storegate-hq's admin
// service would.
type fakeHQ struct {
	storegatev1.UnimplementedHQAdminServiceServer
	books *storegatev1.GetBooksResponse
}

func (f *fakeHQ) GetBooks(context.Context, *storegatev1.GetBooksRequest) (*storegatev1.GetBooksResponse, error) {
	return f.books, nil
}

func serveHQ(t *testing.T, books *storegatev1.GetBooksResponse) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	storegatev1.RegisterHQAdminServiceServer(s, &fakeHQ{books: books})
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func TestCtl_HQBooks(t *testing.T) {
	books := &storegatev1.GetBooksResponse{
		Accounts: []*storegatev1.AccountBooks{{Account: "acct-0001", Currency: "JPY", Balance: 100000, Funded: 100000}},
		Settlements: []*storegatev1.BookedSettlement{{Settlement: &storegatev1.Settlement{Id: "stl-1", Kind: storegatev1.SettlementKind_SETTLEMENT_KIND_CAPTURE,
			Amount: 1200, Currency: "JPY"}, Status: storegatev1.SettlementStatus_SETTLEMENT_STATUS_ACCEPTED}},
	}
	t.Run("OK", func(t *testing.T) {
		out, errOut, code := runCtl(t, "", "hq", "books", "--hq", serveHQ(t, books))
		if code != exitOK || !strings.Contains(out, "  acct-0001 100000 JPY") || !strings.Contains(out, "settlements booked: 1") {
			t.Fatalf("exit %d:\n%s%s", code, out, errOut)
		}
	})
	t.Run("FromEnvironment", func(t *testing.T) {
		t.Setenv("STOREGATE_HQ", serveHQ(t, books))
		if out, errOut, code := runCtl(t, "", "hq", "books", "--json"); code != exitOK || !strings.Contains(out, `"acct-0001"`) || !strings.Contains(out, `"SETTLEMENT_STATUS_ACCEPTED"`) {
			t.Fatalf("exit %d:\n%s%s", code, out, errOut)
		}
	})
	t.Run("ErrDoNotAddUp", func(t *testing.T) {
		bad := proto.Clone(books).(*storegatev1.GetBooksResponse)
		bad.Problems = []string{"account acct-0001: balance 100000, want 98800"}
		out, errOut, code := runCtl(t, "", "hq", "books", "--hq", serveHQ(t, bad))
		if code != exitError || !strings.Contains(errOut, "books do not add up: account acct-0001") || !strings.Contains(out, "acct-0001") {
			t.Fatalf("exit %d, want %d with the books printed and the problem named:\n%s%s", code, exitError, out, errOut)
		}
	})
	// The reference HQ sends its whole ledger: more than gRPC's default
	// 4 MiB after a long crash test.
	t.Run("LargeLedger", func(t *testing.T) {
		big := proto.Clone(books).(*storegatev1.GetBooksResponse)
		for i := range 60_000 {
			big.Settlements = append(big.Settlements, &storegatev1.BookedSettlement{Settlement: &storegatev1.Settlement{
				Id: fmt.Sprintf("stl-%032x", i), StoreId: "store-0001", Lane: "1", PosTransactionId: fmt.Sprintf("pos-%d", i),
				Kind: storegatev1.SettlementKind_SETTLEMENT_KIND_CAPTURE, Amount: 100, Currency: "JPY"},
				Status: storegatev1.SettlementStatus_SETTLEMENT_STATUS_ACCEPTED})
		}
		if n := proto.Size(big); n <= 4<<20 {
			t.Fatalf("the books are %d bytes; the test needs more than 4 MiB", n)
		}
		out, errOut, code := runCtl(t, "", "hq", "books", "--hq", serveHQ(t, big))
		if code != exitOK || !strings.Contains(out, "settlements booked: 60001") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	t.Run("ErrDBGone", func(t *testing.T) {
		if _, errOut, code := runCtl(t, "", "hq", "books", "--db", "central.db"); code != exitUsage || !strings.Contains(errOut, "storegate-hq books --data") {
			t.Fatalf("--db: exit %d, %q; want %d pointing at storegate-hq books", code, errOut, exitUsage)
		}
	})
}
