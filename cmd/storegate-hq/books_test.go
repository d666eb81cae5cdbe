package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"storegate/cmd/internal/hqbooks"
	"storegate/gateway"
	"storegate/hqkeys"
	storegatev1 "storegate/proto/storegate/v1"
)

// The books a running HQ serves on its admin address are the books
// `storegate-hq books` prints from the file once it is stopped; a ledger
// whose books do not add up exits 1.
func TestHQ_Books(t *testing.T) {
	dir := t.TempDir()
	keys, err := hqkeys.Init(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "hq")
	m := NewMain()
	m.Stderr = &bytes.Buffer{}
	if err := m.ParseFlags([]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--admin-addr-file", filepath.Join(dir, "admin"),
		"--addr-file", filepath.Join(dir, "addr"), "--data", data, "--keys", filepath.Join(dir, "keys"), "--account", "acct-1=1000"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dialFile := func(name string) *grpc.ClientConn {
		addr, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := grpc.NewClient(strings.TrimSpace(string(addr)), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	id, _ := gateway.NewTokenID()
	now := time.Now()
	tok, _ := gateway.MintToken(keys.Token, gateway.Claims{Issuer: "hq", Account: "acct-1", IssuedAt: now, Expires: now.Add(time.Minute), TokenID: id, Device: "d", Assurance: 2})
	auth, err := storegatev1.NewCentralServiceClient(dialFile("addr")).Authorize(ctx, &storegatev1.CentralServiceAuthorizeRequest{
		StoreId: "s1", Lane: "1", PosTransactionId: "t1", Token: tok, Amount: 600, Currency: "JPY",
	})
	if err != nil || !auth.GetApproved() {
		t.Fatalf("authorize = %v, %v; want approved", auth, err)
	}
	online, err := storegatev1.NewHQAdminServiceClient(dialFile("admin")).GetBooks(ctx, &storegatev1.GetBooksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(online.GetHolds()) != 1 || online.GetHolds()[0].GetAuthorizationId() != auth.GetAuthorizationId() || len(online.GetProblems()) != 0 {
		t.Fatalf("GetBooks = %v, want the hold %s and no problem", online, auth.GetAuthorizationId())
	}
	var want bytes.Buffer
	if err := hqbooks.Write(&want, online); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	if code := runBooks([]string{"--data", data}, &out, &errOut); code != 0 || out.String() != want.String() {
		t.Fatalf("books: exit %d, %s\ngot:\n%s\nwant what the running HQ served:\n%s", code, errOut.String(), out.String(), want.String())
	}

	t.Run("ErrDoNotAddUp", func(t *testing.T) {
		setBalance(t, filepath.Join(data, ledgerFile), "acct-1", 1000)
		var out, errOut bytes.Buffer
		if code := runBooks([]string{"--data", data}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "books do not add up") ||
			!strings.Contains(errOut.String(), "acct-1") || !strings.Contains(out.String(), "acct-1 1000 JPY") {
			t.Fatalf("exit %d, want 1 naming acct-1\n%s%s", code, out.String(), errOut.String())
		}
	})
	t.Run("ErrNoLedger", func(t *testing.T) {
		empty := t.TempDir()
		if code := runBooks([]string{"--data", empty}, &bytes.Buffer{}, &bytes.Buffer{}); code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		if _, err := os.Stat(filepath.Join(empty, ledgerFile)); !os.IsNotExist(err) {
			t.Errorf("a ledger was created in the wrong --data: %v", err)
		}
	})
	t.Run("ErrUsage", func(t *testing.T) {
		if code := runBooks(nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("no --data: exit %d, want 2", code)
		}
	})
}

// setBalance changes an account's stored balance behind the ledger's back,
// as a broken or tampered file would hold it.
func setBalance(t *testing.T, path, account string, balance int64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("accounts"))
		var acct map[string]any
		if err := json.Unmarshal(b.Get([]byte(account)), &acct); err != nil {
			return err
		}
		acct["balance"] = balance
		raw, err := json.Marshal(acct)
		if err != nil {
			return err
		}
		return b.Put([]byte(account), raw)
	})
	if err != nil {
		t.Fatal(err)
	}
}
