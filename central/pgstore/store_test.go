package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/goleak"

	"storegate/central"
	"storegate/central/pgstore"
	"storegate/central/storetest"
	"storegate/gateway"
	"storegate/internal/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newStorage makes a schema of its own for t, migrated, on the test server.
func newStorage(t testing.TB) func() central.Storage {
	dsn := pgtest.DSN(t)
	mustOpen(t, dsn, true).Close(context.Background())
	return func() central.Storage { return pgstore.New(dsn) }
}

// mustOpen opens a store on dsn, migrating it first when migrate is set,
// and closes it at cleanup.
func mustOpen(t testing.TB, dsn string, migrate bool) *pgstore.Store {
	t.Helper()
	s := pgstore.New(dsn)
	s.AutoMigrate = migrate
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestStorage_Contract(t *testing.T) {
	storetest.Run(t, newStorage)
}

// Two transactions that each read two balances and write one of them
// (write skew) cannot both commit under SERIALIZABLE: PostgreSQL fails one
// with 40001, the store runs it again, and both end up applied as if one
// after the other.
func TestUpdate_RetriesSerializationFailure(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, pgtest.DSN(t), true)
	err := s.Update(ctx, func(tx central.Tx) error {
		return tx.PutAccounts([]*central.Account{{ID: "a", Currency: "JPY", Balance: 100}, {ID: "b", Currency: "JPY", Balance: 100}})
	})
	if err != nil {
		t.Fatal(err)
	}
	before := s.Stats()

	// Each transaction moves the sum of both balances into its own account
	// and empties the other: run serially, the second sees the first's
	// write. Both read before either writes (on their first attempt), so
	// they conflict.
	var read sync.WaitGroup
	read.Add(2)
	move := func(to, from string) error {
		first := true
		return s.Update(ctx, func(tx central.Tx) error {
			accts, err := tx.Accounts([]string{to, from})
			if err != nil {
				return err
			}
			if first {
				first = false
				read.Done()
				read.Wait()
			}
			sum := accts[to].Balance + accts[from].Balance
			return tx.PutAccounts([]*central.Account{{ID: to, Currency: "JPY", Balance: sum}, {ID: from, Currency: "JPY", Balance: 0}})
		})
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = move("a", "b") })
	wg.Go(func() { errs[1] = move("b", "a") })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	var a, b int64
	err = s.View(ctx, func(tx central.Tx) error {
		accts, err := tx.Accounts([]string{"a", "b"})
		a, b = accts["a"].Balance, accts["b"].Balance
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if a+b != 200 || (a != 0 && b != 0) {
		t.Errorf("balances a=%d b=%d: want 200 in one account, as after two moves one after the other", a, b)
	}
	st := s.Stats()
	if st.Retries-before.Retries < 1 {
		t.Errorf("retries: got %d, want at least 1", st.Retries-before.Retries)
	}
	t.Logf("stats: %+v", st)
}

// A transaction that keeps failing to serialize is given up on after
// MaxAttempts runs, with the failure in the error.
func TestUpdate_GivesUp(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t), true)
	s.MaxAttempts = 3
	runs := 0
	err := s.Update(context.Background(), func(central.Tx) error {
		runs++
		return &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
	})
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "40001" || runs != 3 {
		t.Errorf("got %v after %d runs, want the serialization failure after 3", err, runs)
	}
	t.Run("OtherErrorsNotRetried", func(t *testing.T) {
		runs := 0
		sentinel := errors.New("declined")
		if err := s.Update(context.Background(), func(central.Tx) error { runs++; return sentinel }); !errors.Is(err, sentinel) || runs != 1 {
			t.Errorf("got %v after %d runs, want fn's error after 1", err, runs)
		}
	})
}

// Open refuses a database whose schema is not migrated and says what to
// run; migrating twice, or from two processes at once, applies each
// migration once.
func TestOpen_Schema(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	err := pgstore.New(dsn).Open(ctx)
	if err == nil || !errorContains(err, "storegate-hq migrate") {
		t.Fatalf("Open of an empty database: got %v, want it to say to migrate", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() {
			s := pgstore.New(dsn)
			s.AutoMigrate = true
			if errs[i] = s.Open(ctx); errs[i] == nil {
				s.Close(ctx)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
	mustOpen(t, dsn, false)
	t.Run("ErrUnreachable", func(t *testing.T) {
		err := pgstore.New("postgres://nobody@127.0.0.1:1/none?connect_timeout=2").Open(ctx)
		if gateway.ErrorCode(err) != gateway.EUNAVAILABLE {
			t.Errorf("got %v, want %s", err, gateway.EUNAVAILABLE)
		}
	})
	t.Run("ErrBadDSN", func(t *testing.T) {
		err := pgstore.New("postgres://user:secret@[::1").Open(ctx)
		if gateway.ErrorCode(err) != gateway.EINVALID || errorContains(err, "secret") {
			t.Errorf("got %v, want %s without the password", err, gateway.EINVALID)
		}
	})
}

func errorContains(err error, s string) bool {
	return err != nil && strings.Contains(err.Error(), s)
}

func BenchmarkIntake(b *testing.B) {
	storetest.BenchmarkIntake(b, newStorage)
}
