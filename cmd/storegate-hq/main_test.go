package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"storegate/gateway"
	"storegate/hqkeys"
	"storegate/internal/pgtest"
	storegatev1 "storegate/proto/storegate/v1"
)

func TestHQ_Flags(t *testing.T) {
	parse := func(args ...string) error {
		m := NewMain()
		m.Stdout, m.Stderr = &bytes.Buffer{}, &bytes.Buffer{}
		return m.ParseFlags(args)
	}
	if err := parse("--version"); err != errExitOK {
		t.Fatalf("--version: %v", err)
	}
	if err := parse("--keys", "k"); err == nil || !strings.Contains(err.Error(), "--data") {
		t.Fatalf("missing --data: %v", err)
	}
	if err := parse("--keys", "k", "--db", "mysql://x"); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("--db of another engine: %v", err)
	}
	if err := parse("--keys", "k", "--data", "d", "--migrate"); err == nil || !strings.Contains(err.Error(), "--db") {
		t.Fatalf("--migrate without --db: %v", err)
	}
	if err := parse("--data", "d", "--keys", "k", "--listen", "0.0.0.0:7444"); err == nil || !strings.Contains(err.Error(), "--insecure-listen") {
		t.Fatalf("wide listen: %v", err)
	}
	if err := parse("--data", "d", "--keys", "k", "--account", "acct=-5"); err == nil {
		t.Fatal("a negative opening balance was accepted")
	}
}

// The whole program on a loopback port, keeping its books in bbolt: it
// serves health and authorizes a token against the account it opened.
func TestHQ_Run(t *testing.T) {
	dir := t.TempDir()
	runHQ(t, dir, "--data", filepath.Join(dir, "hq"))
}

// The same on PostgreSQL, migrated at start; `storegate-hq books --db`
// reads the books while it runs, and a second start needs no migration.
func TestHQ_RunPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	t.Run("ErrNotMigrated", func(t *testing.T) {
		m := NewMain()
		m.Stderr = &bytes.Buffer{}
		if _, err := hqkeys.Init(filepath.Join(dir, "keys")); err != nil {
			t.Fatal(err)
		}
		if err := m.ParseFlags([]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--db", dsn, "--keys", filepath.Join(dir, "keys")}); err != nil {
			t.Fatal(err)
		}
		err := m.Run(context.Background())
		m.Close()
		if err == nil || !strings.Contains(err.Error(), "storegate-hq migrate") {
			t.Fatalf("Run on an empty database: %v, want it to say to migrate", err)
		}
		os.RemoveAll(filepath.Join(dir, "keys"))
	})
	m := runHQ(t, dir, "--db", dsn, "--migrate")
	var out, errOut bytes.Buffer
	if code := runBooks([]string{"--db", dsn}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "acct-1 400 JPY") {
		t.Errorf("books --db while HQ runs: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	m.Close()
	if code := runMigrate([]string{"--db", dsn}, &out, &errOut); code != 0 {
		t.Errorf("migrate again: exit %d: %s", code, errOut.String())
	}
	m = NewMain()
	m.Stderr = &bytes.Buffer{}
	if err := m.ParseFlags([]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--db", dsn, "--keys", filepath.Join(dir, "keys")}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Errorf("second start, migrated: %v", err)
	}
	m.Close()
	if code := runMigrate([]string{"--db", "/tmp/x.db"}, &out, &errOut); code != 2 {
		t.Errorf("migrate of a file: exit %d, want 2", code)
	}
}

// runHQ runs storegate-hq with keys made in dir and the storage flags,
// checks it serves health and authorizes one sale of 600 from acct-1
// (opened with 1000) and declines the token's replay, and returns it,
// closed at cleanup.
func runHQ(t *testing.T, dir string, storage ...string) *Main {
	t.Helper()
	keys, err := hqkeys.Init(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMain()
	m.Stderr = &bytes.Buffer{}
	args := append([]string{"--addr-file", filepath.Join(dir, "addr"), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--keys", filepath.Join(dir, "keys"), "--account", "acct-1=1000"}, storage...)
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	addr, err := os.ReadFile(m.AddrFile)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(strings.TrimSpace(string(addr)), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", h, err)
	}
	id, _ := gateway.NewTokenID()
	now := time.Now()
	tok, _ := gateway.MintToken(keys.Token, gateway.Claims{Issuer: "hq", Account: "acct-1", IssuedAt: now, Expires: now.Add(time.Minute), TokenID: id, Device: "d", Assurance: 2})
	res, err := storegatev1.NewCentralServiceClient(conn).Authorize(ctx, &storegatev1.CentralServiceAuthorizeRequest{
		StoreId: "s1", Lane: "1", PosTransactionId: "t1", Token: tok, Amount: 600, Currency: "JPY",
	})
	if err != nil || !res.GetApproved() {
		t.Fatalf("authorize = %v, %v; want approved", res, err)
	}
	res, err = storegatev1.NewCentralServiceClient(conn).Authorize(ctx, &storegatev1.CentralServiceAuthorizeRequest{
		StoreId: "s1", Lane: "1", PosTransactionId: "t2", Token: tok, Amount: 600, Currency: "JPY",
	})
	if err != nil || res.GetApproved() || res.GetReason() != storegatev1.DeclineReason_DECLINE_REASON_REPLAYED {
		t.Fatalf("second sale with the token = %v, %v; want REPLAYED", res, err)
	}
	return m
}
