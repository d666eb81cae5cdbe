package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"

	"storegate/central"
	"storegate/central/boltstore"
	"storegate/central/pgstore"
)

// ledgerFile is the bbolt ledger's name in --data.
const ledgerFile = "central.db"

// isPostgres reports whether --db names a PostgreSQL database.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// newStorage returns the storage HQ keeps its books in, unopened: the
// PostgreSQL database db names (applying missing migrations at Open when
// migrate is set), or without db the bbolt file in dataDir. It also
// returns a name for logs that holds no password.
func newStorage(db, dataDir string, migrate bool) (central.Storage, string, error) {
	switch {
	case isPostgres(db):
		s := pgstore.New(db)
		s.AutoMigrate = migrate
		return s, redact(db), nil
	case db != "":
		return nil, "", fmt.Errorf("--db %q: want a postgres:// URL (without --db, HQ keeps its books in --data)", redact(db))
	case dataDir == "":
		return nil, "", errors.New("--data or --db is required")
	}
	path := filepath.Join(dataDir, ledgerFile)
	return boltstore.New(path), path, nil
}

// redact is a DSN without its password, for logs and errors.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}

// runMigrate is `storegate-hq migrate --db postgres://…`: it applies the
// schema migrations the database lacks and exits 0, or 1 when it cannot.
func runMigrate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("storegate-hq migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: storegate-hq migrate --db postgres://USER@HOST:PORT/DB\n\n"+
			"Applies the schema migrations built into this storegate-hq that the database lacks, each\n"+
			"in its own transaction; safe to run again, and from several hosts at once. The bbolt\n"+
			"ledger needs no migration.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	db := fs.String("db", "", "the PostgreSQL database (postgres:// URL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if !isPostgres(*db) || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "storegate-hq migrate: want --db postgres://… and nothing else")
		return 2
	}
	s := pgstore.New(*db)
	s.AutoMigrate = true
	ctx := context.Background()
	if err := s.Open(ctx); err != nil {
		fmt.Fprintln(stderr, "storegate-hq migrate:", err)
		return 1
	}
	defer s.Close(ctx)
	fmt.Fprintf(stdout, "%s: schema at version %d\n", redact(*db), pgstore.SchemaVersion())
	return 0
}
