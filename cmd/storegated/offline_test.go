package main_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"storegate/gateway"
	"storegate/hqkeys"
	storegatev1 "storegate/proto/storegate/v1"
	"storegate/storecache"
)

// offlineConfig is a storegated configuration with offline caps and a short
// breaker cool-down.
const offlineConfig = `store_id: store-0001
central:
  timeout: 300ms
  breaker_failures: 2
  breaker_cooldown: 500ms
offline:
  max_amount_per_transaction: 2000
  max_amount_per_account: 3000
  max_store_exposure: 5000
forward:
  batch_wait: 10ms
  interval: 200ms
  max_backoff: 300ms
`

func mintOfl(t *testing.T, key ed25519.PrivateKey, account string, ofl int64) string {
	t.Helper()
	id, _ := gateway.NewTokenID()
	now := time.Now()
	tok, err := gateway.MintToken(key, gateway.Claims{
		Issuer: "storegate-hq", Account: account, IssuedAt: now, Expires: now.Add(2 * time.Minute),
		TokenID: id, Device: "phone-1", Assurance: 2, OfflineAllowance: ofl,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func oneLine(lane, txn, token string, amount int64) *storegatev1.AuthorizeRequest {
	return sale(lane, txn, token, &storegatev1.BasketLine{Sku: "4901234567894", Category: "food", Quantity: 1, UnitPrice: amount})
}

// HQ goes down: the gateway approves within the offline caps, declines
// beyond them, shows it all in storegatectl status and outbox, and once HQ
// is back the offline sales reach its books exactly once.
func TestStoregated_Offline(t *testing.T) {
	w := &world{t: t, keysDir: t.TempDir(), hqData: t.TempDir(), gwData: t.TempDir()}
	var err error
	if w.keys, err = hqkeys.Init(w.keysDir); err != nil {
		t.Fatal(err)
	}
	hqArgs := []string{"--admin-listen", "127.0.0.1:0", "--data", w.hqData, "--keys", w.keysDir, "--account", "acct-0001=100000", "--account", "acct-0002=100000"}
	w.hq = startDaemon(t, "storegate-hq", append([]string{"--listen", "127.0.0.1:0"}, hqArgs...)...)
	hqAddr := w.hq.addr
	cfg := filepath.Join(t.TempDir(), "storegated.yaml")
	if err := os.WriteFile(cfg, []byte(offlineConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	w.gw = startDaemon(t, "storegated", "--config", cfg, "--listen", "127.0.0.1:0", "--metrics-listen", "off", "--data", w.gwData, "--central", hqAddr,
		"--root-key", filepath.Join(w.keysDir, "root.pub"), "--keyset", filepath.Join(w.keysDir, "keyset.cose"), "--insecure-callers")
	w.payments = storegatev1.NewPaymentServiceClient(dial(t, w.gw.addr))
	ctx := context.Background()

	online := w.authorize(t, oneLine("1", "on-1", mintOfl(t, w.keys.Token, "acct-0001", 3000), 1500))
	if d := online.GetDecision(); d.GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED || d.GetMode() != storegatev1.DecisionMode_DECISION_MODE_ONLINE {
		t.Fatalf("with HQ up: %v, want APPROVED ONLINE", d)
	}
	w.waitDrained(t)
	w.hq.stop()

	var approved []string
	t.Run("ApprovedOffline", func(t *testing.T) {
		for i, c := range []struct {
			account string
			amount  int64
		}{{"acct-0001", 1500}, {"acct-0001", 1500}, {"acct-0002", 2000}} {
			d := w.authorize(t, oneLine("2", fmt.Sprint("off-", i), mintOfl(t, w.keys.Token, c.account, 3000), c.amount)).GetDecision()
			if d.GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED || d.GetMode() != storegatev1.DecisionMode_DECISION_MODE_OFFLINE || d.GetAuthorizationId() != "" {
				t.Fatalf("sale %d: %v, want APPROVED OFFLINE without an authorization", i, d)
			}
			approved = append(approved, d.GetSettlementId())
		}
	})
	t.Run("DeclinedBeyondCaps", func(t *testing.T) {
		for i, c := range []struct {
			account string
			ofl     int64
			amount  int64
			want    storegatev1.DeclineReason
			rule    string
		}{
			{"acct-0002", 3000, 2001, storegatev1.DeclineReason_DECLINE_REASON_OFFLINE_LIMIT, "offline.max_amount_per_transaction"},
			{"acct-0001", 3000, 100, storegatev1.DeclineReason_DECLINE_REASON_OFFLINE_LIMIT, "offline.max_amount_per_account"},
			{"acct-0003", 3000, 100, storegatev1.DeclineReason_DECLINE_REASON_OFFLINE_LIMIT, "offline.max_store_exposure"},
			{"acct-0002", 500, 600, storegatev1.DeclineReason_DECLINE_REASON_OFFLINE_LIMIT, "offline.token_allowance"},
			{"acct-0002", 0, 100, storegatev1.DeclineReason_DECLINE_REASON_OFFLINE_NOT_ALLOWED, "offline.token"},
		} {
			res := w.authorize(t, oneLine("3", fmt.Sprint("over-", i), mintOfl(t, w.keys.Token, c.account, c.ofl), c.amount))
			wantReason(t, res, c.want)
			if got := res.GetDecision().GetRule(); got != c.rule {
				t.Errorf("case %d: rule %q, want %q", i, got, c.rule)
			}
		}
		code := oneLine("3", "code-1", "12345678901234567890", 100)
		wantReason(t, w.authorize(t, code), storegatev1.DeclineReason_DECLINE_REASON_ONLINE_ONLY_CODE)
	})
	t.Run("Visible", func(t *testing.T) {
		out, code := ctl(t, "status", "--addr", w.gw.addr)
		for _, want := range []string{"central          offline since", "3 settlements waiting", "offline exposure 5000 of 5000", "caps 2000 per sale, 3000 per account"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("storegatectl status (exit %d) lacks %q:\n%s", code, want, out)
			}
		}
		out, code = ctl(t, "outbox", "--admin-socket", w.adminSocket())
		if code != 0 || !strings.Contains(out, "waiting for central: 3") || strings.Count(out, " offline ") != 3 || !strings.Contains(out, approved[0]) {
			t.Errorf("storegatectl outbox (exit %d), want the 3 offline captures:\n%s", code, out)
		}
	})

	w.hq = startDaemon(t, "storegate-hq", append([]string{"--listen", hqAddr}, hqArgs...)...)
	t.Run("BackOnline", func(t *testing.T) {
		w.waitDrained(t)
		// The forwarder reached HQ: before any sale probes it, status says
		// online and reachable, not "offline since …; reachable".
		out, code := ctl(t, "status", "--addr", w.gw.addr)
		if code != 0 || !strings.Contains(out, "central          online since") || !strings.Contains(out, "every sale asks it; last contact") {
			t.Errorf("storegatectl status (exit %d) after HQ came back, before any sale:\n%s", code, out)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			d := w.authorize(t, oneLine("4", fmt.Sprint("back-", time.Now().UnixNano()), mintOfl(t, w.keys.Token, "acct-0002", 3000), 100)).GetDecision()
			if d.GetMode() == storegatev1.DecisionMode_DECISION_MODE_ONLINE {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still deciding offline 20s after HQ came back: %v", d)
			}
			time.Sleep(100 * time.Millisecond)
		}
		st, err := w.payments.GetStatus(ctx, &storegatev1.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetCentralState() != storegatev1.CentralState_CENTRAL_STATE_ONLINE || st.GetOfflineExposure() != 0 || st.GetBreakerOpened() == 0 {
			t.Errorf("status = %v, want online again, exposure released", st)
		}
	})
	w.waitDrained(t)
	w.gw.stop()
	w.hq.stop()

	t.Run("BooksOnce", func(t *testing.T) {
		books := mustHQBooks(t, w.hqData)
		for _, id := range approved {
			s, ok := books.Settlement(id)
			if !ok || s.Status != gateway.SettlementAccepted || s.Mode != gateway.ModeOffline {
				t.Errorf("offline sale %s: booked %+v (%v), want accepted", id, s, ok)
			}
		}
		if a := books.Accounts["acct-0001"]; a.Balance != 100000-4500 {
			t.Errorf("acct-0001 balance %d, want %d: one online and two offline sales, each once", a.Balance, 100000-4500)
		}
	})
	t.Run("OutboxFromFile", func(t *testing.T) {
		out, code := ctl(t, "outbox", "--db", filepath.Join(w.gwData, "storegate.db"))
		if code != 0 || !strings.Contains(out, "waiting for central: 0") || !strings.Contains(out, "disputed (refused by central, kept for a person to resolve): 0") {
			t.Errorf("storegatectl outbox --db (exit %d):\n%s", code, out)
		}
		st := storecache.NewStore(filepath.Join(w.gwData, "storegate.db"))
		st.ReadOnly, st.Timeout = true, time.Second
		if err := st.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer st.Close(context.Background())
		if err := st.Check(); err != nil {
			t.Error(err)
		}
	})
}

// Before any call to HQ has ended, status says so plainly, rather than
// "online; reachable=false, last contact never". HQ here is a listener that
// takes connections and never answers, so the gateway's first calls are
// still waiting (for up to centralclient's 10s connect timeout) when the
// test asks.
func TestStoregated_StatusBeforeContact(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-accepted
		for _, c := range held {
			c.Close()
		}
	})
	keys := t.TempDir()
	if _, err := hqkeys.Init(keys); err != nil {
		t.Fatal(err)
	}
	gw := startDaemon(t, "storegated", "--listen", "127.0.0.1:0", "--metrics-listen", "off", "--data", t.TempDir(), "--store-id", "store-0001",
		"--central", ln.Addr().String(), "--root-key", filepath.Join(keys, "root.pub"), "--insecure-callers")
	out, code := ctl(t, "status", "--addr", gw.addr)
	if code != 0 || !strings.Contains(out, "central          not contacted yet") || strings.Contains(out, "online") {
		t.Errorf("storegatectl status (exit %d) before any call to HQ ended:\n%s", code, out)
	}
	gw.stop()
}

// With nothing to sell and nothing new at HQ, the policy stream alone tells
// the gateway that HQ is reachable: HQ sends the stream's headers when it
// takes it, before any document.
func TestStoregated_StatusByPolicyStream(t *testing.T) {
	w := newWorld(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := w.payments.GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if st.GetCentralReachable() && st.GetLastCentralContact() != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after start, no sale made: status %v, want central reachable through the policy stream\n%s", st, w.gw.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, code := ctl(t, "status", "--addr", w.gw.addr)
	if code != 0 || !strings.Contains(out, "every sale asks it; last contact") {
		t.Errorf("storegatectl status (exit %d):\n%s", code, out)
	}
	w.gw.stop()
	w.hq.stop()
}

// runStoregated runs storegated to its end and returns its output and exit
// code.
func runStoregated(t *testing.T, args ...string) (string, int) {
	t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "storegated"), args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func TestStoregated_OfflineConfig(t *testing.T) {
	run := func(cfg string) (string, int) {
		path := filepath.Join(t.TempDir(), "storegated.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return runStoregated(t, "--config", path, "--check-config")
	}
	// --check-config reads the root key, so the config names a real one.
	// (The example file names /etc/storegate's files; systemd's tests
	// validate it.)
	keys := t.TempDir()
	if _, err := hqkeys.Init(keys); err != nil {
		t.Fatal(err)
	}
	base := "store_id: s1\nroot_public_key: " + filepath.Join(keys, "root.pub") + "\ncentral:\n  address: 127.0.0.1:1\n"
	t.Run("OK", func(t *testing.T) {
		if out, code := run(base + "offline:\n  max_amount_per_transaction: 1\n  max_amount_per_account: 2\n  max_store_exposure: 3\n"); code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
	})
	for _, tt := range []struct {
		name, offline, field string
	}{
		{"ErrPartial", "  max_amount_per_transaction: 1000\n", "offline.max_store_exposure"},
		{"ErrNegative", "  max_amount_per_transaction: -1\n", "offline.max_amount_per_transaction"},
		{"ErrWiderThanNext", "  max_amount_per_transaction: 5000\n  max_amount_per_account: 3000\n  max_store_exposure: 10000\n", "offline.max_amount_per_transaction"},
		{"ErrUnknownField", "  max_amount: 1\n", "max_amount"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if out, code := run(base + "offline:\n" + tt.offline); code != 2 || !strings.Contains(out, tt.field) {
				t.Fatalf("exit %d: %s; want 2 naming %s", code, out, tt.field)
			}
		})
	}
	t.Run("ErrBreaker", func(t *testing.T) {
		if out, code := run(base[:len(base)-1] + "\n  breaker_failures: 0\n"); code != 2 || !strings.Contains(out, "central.breaker_failures") {
			t.Fatalf("exit %d: %s; want 2 naming central.breaker_failures", code, out)
		}
	})
}
