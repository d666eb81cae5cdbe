package pgstore

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// migrationFiles are the schema's migrations, NNNN_name.sql, numbered from
// 0001 without gaps and applied in order, each once.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

var migrationName = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. It fails
// when a file is misnamed or a number is missing or repeated, which a test
// catches before any database sees it.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", e.Name())
		}
		raw, err := migrationFiles.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		v, _ := strconv.Atoi(m[1])
		out = append(out, migration{version: v, name: m[2], sql: string(raw)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: want version %d (no gaps, no repeats)", m.version, m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version this build's migrations make: the
// number of the last migration.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// createMigrations records which migrations a database has had.
const createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`

// migrate applies the migrations the database lacks, each with its row in
// schema_migrations in one transaction, and returns the versions it
// applied. Several processes may migrate at once: the version's primary key
// makes all but one of them fail and retry, and a retry finds the
// migration applied.
func (s *Store) migrate(ctx context.Context) ([]int, error) {
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	if err := s.retryDDL(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, createMigrations)
		return err
	}); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var applied []int
	for _, m := range ms {
		done := false
		err := s.retryDDL(ctx, func(tx pgx.Tx) error {
			done = false
			var have bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.version).Scan(&have); err != nil {
				return err
			}
			if have {
				return nil
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
				return err
			}
			done = true
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
		}
		if done {
			applied = append(applied, m.version)
		}
	}
	return applied, nil
}

// retryDDL runs fn in a transaction, retried as every transaction is, and
// also when a concurrent migrator created the same object first (a unique
// violation in the catalog, which PostgreSQL raises for two concurrent
// CREATE … IF NOT EXISTS): the retry sees what the other created.
func (s *Store) retryDDL(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for range 3 {
		err = s.run(ctx, pgx.ReadWrite, fn)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23505" {
			return err
		}
	}
	return err
}

// checkSchema fails unless the database has every migration this build
// knows and none it does not.
func (s *Store) checkSchema(ctx context.Context) error {
	var have int
	err := s.run(ctx, pgx.ReadOnly, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&have)
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
		have, err = 0, nil
	}
	if err != nil {
		return fmt.Errorf("read the schema version: %w", err)
	}
	switch want := SchemaVersion(); {
	case have < want:
		return fmt.Errorf("the database's schema is at version %d, this build needs %d: run `storegate-hq migrate --db …` (or start with --migrate)", have, want)
	case have > want:
		return fmt.Errorf("the database's schema is at version %d, newer than this build knows (%d): run a newer storegate-hq", have, want)
	}
	return nil
}
