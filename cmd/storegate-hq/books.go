package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"storegate/central"
	"storegate/central/boltstore"
	"storegate/cmd/internal/hqbooks"
)

// runBooks is `storegate-hq books --data DIR|--db URL [--json]`: HQ's
// books read from the ledger file with storegate-hq stopped, or from its
// PostgreSQL database at any time, printed as
// `storegatectl hq books` prints them from a running one. It returns the
// exit status: 0 when the books add up, 1 when they do not or cannot be
// read, 2 for a bad command line.
func runBooks(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("storegate-hq books", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: storegate-hq books --data DIR|--db postgres://… [--json]\n\n"+
			"Shows HQ's books from the ledger file in DIR, with storegate-hq stopped (or a copy), or\n"+
			"from its PostgreSQL database: each account's balance and totals, the holds no store has\n"+
			"captured yet, and every booked settlement. Checks the books add up and exits 1 if not.\n"+
			"A running storegate-hq holds the file: read it with `storegatectl hq books --hq ADDR`.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	dir := fs.String("data", "", "storegate-hq's --data directory, holding "+ledgerFile)
	db := fs.String("db", "", "storegate-hq's --db: its PostgreSQL database")
	asJSON := fs.Bool("json", false, "print the books as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if (*dir == "") == (*db == "") || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "storegate-hq books: want --data DIR or --db postgres://…, and nothing else")
		return 2
	}
	if err := printBooks(*db, *dir, *asJSON, stdout); err != nil {
		fmt.Fprintln(stderr, "storegate-hq books:", err)
		return 1
	}
	return 0
}

// printBooks prints the books of the ledger in db or dir (see newStorage)
// and checks they add up.
func printBooks(db, dir string, asJSON bool, stdout io.Writer) error {
	st, _, err := newStorage(db, dir, false)
	if err != nil {
		return err
	}
	if file, ok := st.(*boltstore.Store); ok {
		// Opening a ledger creates it: look first, so that a mistyped
		// --data leaves no empty ledger behind.
		if _, err := os.Stat(file.Path()); err != nil {
			return fmt.Errorf("no ledger: %w", err)
		}
		file.Timeout = 2 * time.Second
	}
	ctx := context.Background()
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
