package grpcserver_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"storegate/central"
	"storegate/gateway"
	"storegate/hqkeys"
	"storegate/storecache"
)

// ledgerCentral is the reference central service called in process, which
// a test can take down.
type ledgerCentral struct {
	ledger *central.Ledger
	keys   *gateway.Keyring
	down   atomic.Bool
}

var errDown = errors.New("connection refused")

func (c *ledgerCentral) Authorize(ctx context.Context, req *gateway.CentralRequest) (*gateway.CentralResult, error) {
	if c.down.Load() {
		return nil, errDown
	}
	return c.ledger.Authorize(ctx, req, c.keys, time.Now())
}

func (c *ledgerCentral) SubmitSettlements(ctx context.Context, storeID string, batch []gateway.Settlement) ([]gateway.SettlementAck, error) {
	if c.down.Load() {
		return nil, errDown
	}
	return c.ledger.SubmitSettlements(ctx, storeID, batch, time.Now())
}

// dyingStore is a store whose process dies before the next decision is
// committed: central has answered, the POS hears nothing.
type dyingStore struct {
	gateway.Store
	dead atomic.Bool
}

func (s *dyingStore) CommitDecision(ctx context.Context, c *gateway.DecisionCommit) error {
	if s.dead.Load() {
		return errors.New("killed")
	}
	return s.Store.CommitDecision(ctx, c)
}

// recovery is a store's gateway and the reference central service, where the
// gateway can die between central's approval and its own commit.
type recovery struct {
	ledger  *central.Ledger
	central *ledgerCentral
	store   *storecache.Store
	keys    *hqkeys.Keys
}

func newRecovery(t *testing.T) *recovery {
	t.Helper()
	dir := t.TempDir()
	keys := mustInitKeys(t, dir)
	ledger := mustOpenLedger(t, dir)
	if err := ledger.EnsureAccount(context.Background(), "acct-0001", 100000); err != nil {
		t.Fatal(err)
	}
	st := mustOpenStore(t, dir)
	return &recovery{ledger: ledger, central: &ledgerCentral{ledger: ledger, keys: keys.Keyring}, store: st, keys: keys}
}

// gateway starts a gateway on the store, as storegated does at each start.
func (r *recovery) gateway(t *testing.T, store gateway.Store) *gateway.Gateway {
	t.Helper()
	gw := gateway.NewGateway("store-0001", store, r.central, r.keys.RootPublic)
	gw.CentralTimeout, gw.Offline = time.Second, gateway.FixedOffline{Caps: offlineCaps}
	if err := gw.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := gw.ApplyKeyset(context.Background(), r.keys.Keyset); err != nil {
		t.Fatal(err)
	}
	return gw
}

func (r *recovery) mint(t *testing.T) string {
	t.Helper()
	id, _ := gateway.NewTokenID()
	now := time.Now()
	tok, err := gateway.MintToken(r.keys.Token, gateway.Claims{Issuer: "hq", Account: "acct-0001", IssuedAt: now, Expires: now.Add(time.Minute),
		TokenID: id, Device: "d", Assurance: 2, OfflineAllowance: 2000})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (r *recovery) flush(t *testing.T) {
	t.Helper()
	f := gateway.NewForwarder("store-0001", r.store, r.central)
	if _, err := f.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, _ := r.store.OutboxStats(context.Background()); st.Depth != 0 || st.Disputed != 0 {
		t.Fatalf("outbox after the flush: %+v, want everything booked", st)
	}
}

func (r *recovery) balance(t *testing.T) int64 {
	t.Helper()
	b, err := r.ledger.Balance(context.Background(), "acct-0001")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The gateway dies after central approved a sale and before its own commit:
// the POS heard nothing and central holds the money. What the POS does next
// decides what happens to the hold; in no case is the customer charged
// twice, or charged for a sale no POS was told was approved.
func TestRecovery_DiedBetweenCentralAndCommit(t *testing.T) {
	ctx := context.Background()
	basket := func(tok string) *gateway.AuthorizeRequest {
		return &gateway.AuthorizeRequest{Lane: "1", POSTxnID: "t1", Currency: "JPY", Token: tok, Total: 580,
			Lines: []gateway.Line{{SKU: "4901234567894", Category: "tobacco", Quantity: 1, UnitPrice: 580}}}
	}
	die := func(t *testing.T, r *recovery, tok string) {
		t.Helper()
		dying := &dyingStore{Store: r.store}
		dying.dead.Store(true)
		if _, err := r.gateway(t, dying).Authorize(ctx, basket(tok)); err == nil {
			t.Fatal("a gateway that died before committing answered")
		}
		if got := r.balance(t); got != 100000-580 {
			t.Fatalf("balance after central's approval = %d, want the amount held", got)
		}
	}

	t.Run("RetryOnline", func(t *testing.T) {
		r := newRecovery(t)
		tok := r.mint(t)
		die(t, r, tok)
		res, err := r.gateway(t, r.store).Authorize(ctx, basket(tok))
		if err != nil || !res.Decision.Approved || res.Decision.Mode != gateway.ModeOnline || res.Decision.AuthorizationID == "" {
			t.Fatalf("retry after the restart = %+v, %v; want central's approval, now committed", res, err)
		}
		r.flush(t)
		if got := r.balance(t); got != 100000-580 {
			t.Errorf("balance = %d, want one debit", got)
		}
	})
	t.Run("RetryOfflineCapturesTheHold", func(t *testing.T) {
		r := newRecovery(t)
		tok := r.mint(t)
		die(t, r, tok)
		r.central.down.Store(true)
		res, err := r.gateway(t, r.store).Authorize(ctx, basket(tok))
		if err != nil || !res.Decision.Approved || res.Decision.Mode != gateway.ModeOffline {
			t.Fatalf("retry with central down = %+v, %v; want an offline approval", res, err)
		}
		r.central.down.Store(false)
		r.flush(t)
		if got := r.balance(t); got != 100000-580 {
			t.Errorf("balance = %d, want one debit: the offline capture takes central's hold", got)
		}
		books, _ := r.ledger.Books(context.Background())
		if s, _ := books.Settlement(res.Decision.SettlementID); s.AuthorizationID == "" {
			t.Errorf("booked offline capture %+v names no authorization, want the held one", s)
		}
	})
	t.Run("GivenUpHoldVoided", func(t *testing.T) {
		r := newRecovery(t)
		die(t, r, r.mint(t))
		if n, err := r.ledger.VoidStaleHolds(context.Background(), time.Now().Add(time.Hour), time.Minute); err != nil || n != 1 {
			t.Fatalf("VoidStaleHolds = %d, %v; want the one hold", n, err)
		}
		if got := r.balance(t); got != 100000 {
			t.Errorf("balance = %d, want the hold given back", got)
		}
	})
}
