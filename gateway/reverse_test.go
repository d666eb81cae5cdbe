package gateway_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"storegate/gateway"
)

// Callers of the harness's store, as grpcserver fills them from
// certificates.
var (
	posLane1 = gateway.Caller{Kind: gateway.CallerPOS, Store: "store-0001", Lane: "1", ID: "spiffe://t.example/store/store-0001/lane/1"}
	posLane2 = gateway.Caller{Kind: gateway.CallerPOS, Store: "store-0001", Lane: "2", ID: "spiffe://t.example/store/store-0001/lane/2"}
	manager  = gateway.Caller{Kind: gateway.CallerSupervisor, Store: "store-0001", Name: "manager", ID: "spiffe://t.example/store/store-0001/supervisor/manager"}
)

func TestCaller_MayActOn(t *testing.T) {
	for _, c := range []struct {
		caller      gateway.Caller
		store, lane string
		want        bool
	}{
		{posLane1, "store-0001", "1", true},
		{posLane1, "store-0001", "2", false},
		{posLane1, "store-0002", "1", false},
		{gateway.Caller{Kind: gateway.CallerPOS, Store: "store-0001"}, "store-0001", "", false},
		{manager, "store-0001", "1", true},
		{manager, "store-0001", "9", true},
		{manager, "store-0002", "1", false},
		{gateway.Caller{Kind: gateway.CallerSupervisor}, "", "1", false},
		{gateway.Caller{Kind: gateway.CallerOperator, Name: "uid=0", ID: "unix:uid=0"}, "store-0001", "1", false},
		{gateway.Caller{}, "store-0001", "1", false},
	} {
		if got := c.caller.MayActOn(c.store, c.lane); got != c.want {
			t.Errorf("%+v.MayActOn(%s, %s) = %v, want %v", c.caller, c.store, c.lane, got, c.want)
		}
	}
}

// reversals returns the reversal audit records, decoded.
func (h *harness) reversals(t *testing.T) []gateway.AuditRecord {
	t.Helper()
	var out []gateway.AuditRecord
	err := h.store.ScanAudit(context.Background(), 1, func(_ uint64, raw []byte) error {
		var rec gateway.AuditRecord
		if err := json.Unmarshal(raw, &rec); err != nil {
			return err
		}
		if rec.Event == gateway.AuditReverse {
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (h *harness) outboxDepth(t *testing.T) int64 {
	t.Helper()
	st, err := h.store.OutboxStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Depth
}

func TestReverse_WhoMayAsk(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	sell := func(lane, txn string) {
		req := basket(lane, txn, h.mint(t, "acct-0001"))
		req.Caller = posLane1
		if lane == "2" {
			req.Caller = posLane2
		}
		if res := h.authorize(t, req); !res.Decision.Approved {
			t.Fatalf("sale %s/%s declined: %+v", lane, txn, res.Decision)
		}
	}
	sell("1", "t1")
	sell("2", "t2")
	sell("2", "t3")

	for name, c := range map[string]gateway.Caller{
		"ErrOtherLanesPOS":        posLane1,
		"ErrOtherStoresPOS":       {Kind: gateway.CallerPOS, Store: "store-0002", Lane: "2", ID: "spiffe://t.example/store/store-0002/lane/2"},
		"ErrOtherStoreSupervisor": {Kind: gateway.CallerSupervisor, Store: "store-0002", Name: "manager", ID: "spiffe://t.example/store/store-0002/supervisor/manager"},
		"ErrOperator":             {Kind: gateway.CallerOperator, Name: "uid=0", ID: "unix:uid=0"},
		"ErrNobody":               {},
	} {
		t.Run(name, func(t *testing.T) {
			depth, audits := h.outboxDepth(t), h.auditCount(t)
			_, err := h.gw.Reverse(ctx, &gateway.ReverseRequest{Lane: "2", POSTxnID: "t2", Reason: "refund", Caller: c})
			if gateway.ErrorCode(err) != gateway.EPERMISSION {
				t.Fatalf("err = %v, want EPERMISSION", err)
			}
			if got := h.outboxDepth(t); got != depth {
				t.Errorf("outbox depth %d, want %d: a refused reversal queued something", got, depth)
			}
			if got := h.auditCount(t); got != audits {
				t.Errorf("audit records %d, want %d: a refused reversal was recorded", got, audits)
			}
			sd, err := h.store.LookupDecision(ctx, gateway.IdempotencyKey{Lane: "2", POSTxnID: "t2"})
			if err != nil || sd == nil || sd.Reversal != nil {
				t.Fatalf("sale 2/t2 after a refused reversal: %+v, %v; want it stored and not reversed", sd, err)
			}
		})
	}
	t.Run("SellingLane", func(t *testing.T) {
		res, err := h.gw.Reverse(ctx, &gateway.ReverseRequest{Lane: "2", POSTxnID: "t2", Reason: "goods returned", Caller: posLane2})
		if err != nil || res.AlreadyReversed || res.Reversal.By != posLane2.ID {
			t.Fatalf("reverse by the selling lane = %+v, %v; want a new reversal by %s", res, err, posLane2.ID)
		}
	})
	t.Run("Supervisor", func(t *testing.T) {
		res, err := h.gw.Reverse(ctx, &gateway.ReverseRequest{Lane: "2", POSTxnID: "t3", Reason: "wrong basket", Caller: manager})
		if err != nil || res.AlreadyReversed || res.Reversal.By != manager.ID {
			t.Fatalf("reverse by a supervisor = %+v, %v; want a new reversal by %s", res, err, manager.ID)
		}
	})
	t.Run("AuditNamesWhoAsked", func(t *testing.T) {
		recs := h.reversals(t)
		if len(recs) != 2 {
			t.Fatalf("%d reversal audit records, want 2", len(recs))
		}
		for i, want := range []struct{ caller, reason string }{{posLane2.ID, "goods returned"}, {manager.ID, "wrong basket"}} {
			if recs[i].Caller != want.caller || recs[i].ReversalReason != want.reason {
				t.Errorf("reversal record %d: caller %q reason %q, want %q %q", i, recs[i].Caller, recs[i].ReversalReason, want.caller, want.reason)
			}
		}
	})
	t.Run("SaleAuditNamesTheCaller", func(t *testing.T) {
		var callers []string
		err := h.store.ScanAudit(ctx, 1, func(_ uint64, raw []byte) error {
			var rec gateway.AuditRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				return err
			}
			if rec.Event == gateway.AuditAuthorize {
				callers = append(callers, rec.Caller)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(callers) != 3 || callers[0] != posLane1.ID || callers[1] != posLane2.ID {
			t.Fatalf("sales' audit callers = %q, want lane 1's then lane 2's", callers)
		}
	})
}

func TestReverse_ErrNoReason(t *testing.T) {
	h := newHarness(t)
	h.authorize(t, basket("1", "t1", h.mint(t, "acct-0001")))
	for _, reason := range []string{"", "   ", "\t\n"} {
		_, err := h.gw.Reverse(context.Background(), &gateway.ReverseRequest{Lane: "1", POSTxnID: "t1", Reason: reason, Caller: posLane1})
		if gateway.ErrorCode(err) != gateway.EINVALID {
			t.Errorf("reason %q: err = %v, want EINVALID", reason, err)
		}
	}
	if got := h.outboxDepth(t); got != 1 {
		t.Fatalf("outbox depth %d, want 1: only the sale", got)
	}
}

func TestReverse_Window(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	for _, c := range []struct {
		name       string
		window     gateway.ReversalWindow
		sold, asks time.Time
		ok         bool
	}{
		{"SameDay", gateway.ReversalWindow{Location: tokyo},
			time.Date(2026, 11, 3, 9, 0, 0, 0, tokyo), time.Date(2026, 11, 3, 23, 59, 59, 999999999, tokyo), true},
		{"ErrNextDay", gateway.ReversalWindow{Location: tokyo},
			time.Date(2026, 11, 3, 23, 59, 59, 0, tokyo), time.Date(2026, 11, 4, 0, 0, 0, 0, tokyo), false},
		{"DayStartsAt4", gateway.ReversalWindow{Location: tokyo, DayStart: 4 * time.Hour},
			time.Date(2026, 11, 4, 2, 0, 0, 0, tokyo), time.Date(2026, 11, 4, 3, 59, 59, 0, tokyo), true},
		{"ErrDayStartsAt4", gateway.ReversalWindow{Location: tokyo, DayStart: 4 * time.Hour},
			time.Date(2026, 11, 4, 2, 0, 0, 0, tokyo), time.Date(2026, 11, 4, 4, 0, 0, 0, tokyo), false},
		{"Within", gateway.ReversalWindow{Within: 30 * time.Minute},
			time.Date(2026, 11, 3, 23, 50, 0, 0, tokyo), time.Date(2026, 11, 4, 0, 19, 59, 0, tokyo), true},
		{"ErrWithin", gateway.ReversalWindow{Within: 30 * time.Minute},
			time.Date(2026, 11, 3, 9, 0, 0, 0, tokyo), time.Date(2026, 11, 3, 9, 30, 0, 0, tokyo), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.gw.ReversalWindow = c.window
			h.now = c.sold
			h.authorize(t, basket("1", "t1", h.mint(t, "acct-0001")))
			h.now = c.asks
			_, err := h.gw.Reverse(context.Background(), &gateway.ReverseRequest{Lane: "1", POSTxnID: "t1", Reason: "returned", Caller: posLane1})
			switch {
			case c.ok && err != nil:
				t.Fatalf("reverse at %s of a sale at %s: %v", c.asks, c.sold, err)
			case !c.ok && gateway.ErrorCode(err) != gateway.ECONFLICT:
				t.Fatalf("reverse at %s of a sale at %s: err = %v, want ECONFLICT", c.asks, c.sold, err)
			case !c.ok && h.outboxDepth(t) != 1:
				t.Fatal("a reversal refused as too late was queued")
			}
		})
	}
	t.Run("AlreadyReversedAfterTheWindow", func(t *testing.T) {
		// A POS retrying a reversal it made in time hears the reversal,
		// not a refusal.
		h := newHarness(t)
		h.gw.ReversalWindow = gateway.ReversalWindow{Within: time.Minute}
		h.authorize(t, basket("1", "t1", h.mint(t, "acct-0001")))
		req := &gateway.ReverseRequest{Lane: "1", POSTxnID: "t1", Reason: "returned", Caller: posLane1}
		first, err := h.gw.Reverse(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		h.now = h.now.Add(time.Hour)
		again, err := h.gw.Reverse(context.Background(), req)
		if err != nil || !again.AlreadyReversed || again.Reversal.ID != first.Reversal.ID {
			t.Fatalf("retry after the window = %+v, %v; want the first reversal", again, err)
		}
	})
}

func TestReversalWindow_Deadline(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, tokyo) }
	for _, c := range []struct {
		window gateway.ReversalWindow
		sold   time.Time
		want   time.Time
	}{
		{gateway.ReversalWindow{Location: tokyo}, at(3, 0, 0), at(4, 0, 0)},
		{gateway.ReversalWindow{Location: tokyo}, at(3, 23, 59), at(4, 0, 0)},
		{gateway.ReversalWindow{Location: tokyo, DayStart: 4*time.Hour + 30*time.Minute}, at(3, 4, 30), at(4, 4, 30)},
		{gateway.ReversalWindow{Location: tokyo, DayStart: 4*time.Hour + 30*time.Minute}, at(4, 4, 29), at(4, 4, 30)},
		{gateway.ReversalWindow{Location: tokyo}, time.Date(2026, 11, 3, 15, 30, 0, 0, time.UTC), at(5, 0, 0)},
		{gateway.ReversalWindow{Within: 2 * time.Hour, Location: tokyo}, at(3, 23, 0), at(4, 1, 0)},
	} {
		if got := c.window.Deadline(c.sold); !got.Equal(c.want) {
			t.Errorf("%+v.Deadline(%s) = %s, want %s", c.window, c.sold, got, c.want)
		}
	}
}
