package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"storegate/central"
	"storegate/central/boltstore"
	"storegate/cmd/internal/hqbooks"
)

// ledgerFile is the ledger's name in --data, where Run opens it.
const ledgerFile = "central.db"

// runBooks is `storegate-hq books --data DIR [--json]`: HQ's books read
// from the ledger file with storegate-hq stopped, printed as
// `storegatectl hq books` prints them from a running one. It returns the
// exit status: 0 when the books add up, 1 when they do not or cannot be
// read, 2 for a bad command line.
func runBooks(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("storegate-hq books", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: storegate-hq books --data DIR [--json]\n\n"+
			"Shows HQ's books from the ledger file in DIR, with storegate-hq stopped (or a copy): each\n"+
			"account's balance and totals, the holds no store has captured yet, and every booked\n"+
			"settlement. Checks the books add up and exits 1 if not. A running storegate-hq holds\n"+
			"the file: read it with `storegatectl hq books --hq ADDR` instead.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	dir := fs.String("data", "", "storegate-hq's --data directory, holding "+ledgerFile)
	asJSON := fs.Bool("json", false, "print the books as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "storegate-hq books: want --data DIR and nothing else")
		return 2
	}
	if err := printBooks(filepath.Join(*dir, ledgerFile), *asJSON, stdout); err != nil {
		fmt.Fprintln(stderr, "storegate-hq books:", err)
		return 1
	}
	return 0
}

// printBooks prints the books of the ledger at path and checks they add up.
func printBooks(path string, asJSON bool, stdout io.Writer) error {
	// Opening a ledger creates it: look first, so that a mistyped --data
	// leaves no empty ledger behind.
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no ledger: %w", err)
	}
	ctx := context.Background()
	st := boltstore.New(path)
	st.Timeout = 2 * time.Second
	l := central.NewLedger(st)
	if err := l.Open(ctx); err != nil {
		return err
	}
	defer l.Close(ctx)
	b, err := l.Books(ctx)
	if err != nil {
		return err
	}
	books := central.BooksToProto(b)
	if asJSON {
		err = hqbooks.WriteJSON(stdout, books)
	} else {
		err = hqbooks.Write(stdout, books)
	}
	if err != nil {
		return err
	}
	return hqbooks.Check(books)
}
