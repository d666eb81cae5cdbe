package hqbooks

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

// Write prints the books as text: each account's balance and totals, the
// holds no store has captured, and every booked settlement. Times are in
// the local zone.
func Write(w io.Writer, b *storegatev1.GetBooksResponse) error {
	var werr error
	printf := func(format string, args ...any) {
		if werr == nil {
			_, werr = fmt.Fprintf(w, format, args...)
		}
	}
	printf("accounts (balance, then funded / debited / credited / held / captured / voided):\n")
	for _, a := range b.GetAccounts() {
		printf("  %s %d %s  (%d / %d / %d / %d / %d / %d)\n", a.GetAccount(), a.GetBalance(), a.GetCurrency(),
			a.GetFunded(), a.GetDebited(), a.GetCredited(), a.GetHeld(), a.GetCaptured(), a.GetVoided())
	}
	printf("holds not captured: %d (and %d voided after expiring)\n", len(b.GetHolds()), b.GetVoidedHolds())
	for _, h := range b.GetHolds() {
		printf("  %s %d %s  store %s lane %s txn %s  since %s\n", h.GetAuthorizationId(), h.GetAmount(), h.GetCurrency(),
			h.GetStoreId(), h.GetLane(), h.GetPosTransactionId(), h.GetCreatedAt().AsTime().Local().Format(time.DateTime))
	}
	printf("settlements booked: %d\n", len(b.GetSettlements()))
	for _, bs := range b.GetSettlements() {
		s := bs.GetSettlement()
		st, _ := wire.SettlementStatusFromProto(bs.GetStatus())
		printf("  %-8s %d %s  %s  store %s lane %s txn %s  %s %s\n", wire.SettlementKindFromProto(s.GetKind()), s.GetAmount(), s.GetCurrency(),
			s.GetId(), s.GetStoreId(), s.GetLane(), s.GetPosTransactionId(), st, bs.GetMessage())
	}
	return werr
}

// WriteJSON prints the books as indented JSON, in protobuf's JSON mapping.
func WriteJSON(w io.Writer, b *storegatev1.GetBooksResponse) error {
	out, err := protojson.MarshalOptions{Multiline: true}.Marshal(b)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(out))
	return err
}

// Check returns an error naming every problem in the books, one a line, or
// nil when they add up.
func Check(b *storegatev1.GetBooksResponse) error {
	if len(b.GetProblems()) == 0 {
		return nil
	}
	return fmt.Errorf("books do not add up: %w", errors.New(strings.Join(b.GetProblems(), "\n")))
}
