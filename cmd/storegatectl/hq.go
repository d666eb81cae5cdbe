package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"storegate/central"
)

func runHQBooks(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "hq books", "--db FILE [--json]",
		"Shows the reference central service's books from its ledger file (storegate-hq\nstopped, or a copy): each account's balance and totals, the holds no store has\ncaptured yet, and every booked settlement. Checks the books add up (funded −\ndebited + credited = balance) and exits 1 if not.")
	db := fs.String("db", "", "ledger file (central.db)")
	asJSON := fs.Bool("json", false, "print the books as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *db == "" {
		return usagef("--db is required")
	}
	l, err := central.OpenLedger(*db, central.LedgerOptions{Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer l.Close()
	books, err := l.Books()
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(books); err != nil {
			return err
		}
	} else {
		ids := make([]string, 0, len(books.Accounts))
		for id := range books.Accounts {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		fmt.Fprintln(e.stdout, "accounts (balance, then funded / debited / credited / held / captured / voided):")
		for _, id := range ids {
			a := books.Accounts[id]
			fmt.Fprintf(e.stdout, "  %s %d %s  (%d / %d / %d / %d / %d / %d)\n", id, a.Balance, a.Currency, a.Funded, a.Debited, a.Credited, a.Held, a.Captured, a.Voided)
		}
		var held []central.Authorization
		voided := 0
		for _, a := range books.Authorizations {
			switch a.Status {
			case central.AuthHeld:
				held = append(held, a)
			case central.AuthVoided:
				voided++
			}
		}
		fmt.Fprintf(e.stdout, "holds not captured: %d (and %d voided after expiring)\n", len(held), voided)
		for _, a := range held {
			fmt.Fprintf(e.stdout, "  %s %d %s  store %s lane %s txn %s  since %s\n", a.ID, a.Amount, a.Currency, a.StoreID, a.Lane, a.POSTxnID, a.Created.Local().Format(time.DateTime))
		}
		fmt.Fprintf(e.stdout, "settlements booked: %d\n", len(books.Settlements))
		for _, s := range books.Settlements {
			status := s.Status.String()
			fmt.Fprintf(e.stdout, "  %-8s %d %s  %s  store %s lane %s txn %s  %s %s\n", s.Kind, s.Amount, s.Currency, s.ID, s.StoreID, s.Lane, s.POSTxnID, status, s.Message)
		}
	}
	if err := books.Verify(); err != nil {
		return fmt.Errorf("books do not add up: %w", err)
	}
	return nil
}
