package storecache_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"storegate/gateway"
	"storegate/storecache"
)

func TestStore_AckSettlements(t *testing.T) {
	ctx := context.Background()
	// setup commits five approvals: stl-lane-1-txn-1 ... txn-5.
	setup := func(t *testing.T) (*storecache.Store, []string) {
		s := MustOpenStore(t)
		var ids []string
		for i := 1; i <= 5; i++ {
			c := newCommit("lane-1", fmt.Sprintf("txn-%d", i), tokenID(i), gateway.ModeOnline, 100)
			mustCommit(t, s, c)
			ids = append(ids, c.Settlement.ID)
		}
		return s, ids
	}

	t.Run("OK", func(t *testing.T) {
		s, ids := setup(t)
		err := s.AckSettlements(ctx, []gateway.SettlementAck{
			{ID: ids[0], Status: gateway.SettlementAccepted},
			{ID: ids[1], Status: gateway.SettlementDuplicate},
			{ID: ids[2], Status: gateway.SettlementRefused, Message: "account closed"},
			{ID: "stl-unknown", Status: gateway.SettlementAccepted},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := settlementIDs(t, s); !equalStrings(got, ids[3:]) {
			t.Errorf("pending after acks: got %q, want %q", got, ids[3:])
		}
		disputed, err := s.DisputedSettlements(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(disputed) != 1 || disputed[0].Settlement.ID != ids[2] || disputed[0].Message != "account closed" || !disputed[0].RefusedAt.Equal(t0) || disputed[0].Settlement.Amount != 100 {
			t.Errorf("disputed: got %+v, want %s refused at t0 with central's message", disputed, ids[2])
		}
		if st := outboxStats(t, s); st.Depth != 2 || st.Disputed != 1 {
			t.Errorf("stats: got %+v, want depth 2, disputed 1", st)
		}
		// Acknowledged twice: ignored.
		if err := s.AckSettlements(ctx, []gateway.SettlementAck{{ID: ids[0], Status: gateway.SettlementAccepted}, {ID: ids[2], Status: gateway.SettlementRefused}}); err != nil {
			t.Errorf("repeated acks: %v", err)
		}
		if st := outboxStats(t, s); st.Depth != 2 || st.Disputed != 1 {
			t.Errorf("stats after repeated acks: got %+v, want depth 2, disputed 1", st)
		}
	})

	t.Run("Partial", func(t *testing.T) {
		s, ids := setup(t)
		if err := s.AckSettlements(ctx, []gateway.SettlementAck{{ID: ids[1], Status: gateway.SettlementAccepted}, {ID: ids[3], Status: gateway.SettlementAccepted}}); err != nil {
			t.Fatal(err)
		}
		want := []string{ids[0], ids[2], ids[4]}
		if got := settlementIDs(t, s); !equalStrings(got, want) {
			t.Errorf("pending after partial acks: got %q, want %q", got, want)
		}
		pending, err := s.PendingSettlements(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 2 || pending[0].ID != ids[0] || pending[1].ID != ids[2] {
			t.Errorf("PendingSettlements(2): got %d records, want %s and %s", len(pending), ids[0], ids[2])
		}
	})

	t.Run("UnknownStatus", func(t *testing.T) {
		s, ids := setup(t)
		err := s.AckSettlements(ctx, []gateway.SettlementAck{{ID: ids[0], Status: gateway.SettlementAccepted}, {ID: ids[1], Status: 99}})
		wantCode(t, err, gateway.EINVALID)
		if got := settlementIDs(t, s); !equalStrings(got, ids) {
			t.Errorf("pending after a refused ack batch: got %q, want all %q", got, ids)
		}
	})

	t.Run("InvalidLimit", func(t *testing.T) {
		s, _ := setup(t)
		_, err := s.PendingSettlements(ctx, 0)
		wantCode(t, err, gateway.EINVALID)
	})
}

func TestStore_OutboxStats(t *testing.T) {
	ctx := context.Background()

	t.Run("Empty", func(t *testing.T) {
		s := MustOpenStore(t)
		if st := outboxStats(t, s); st != (gateway.OutboxStats{}) {
			t.Errorf("stats of an empty store: got %+v, want zero", st)
		}
	})

	t.Run("OK", func(t *testing.T) {
		s := MustOpenStore(t)
		commit := func(txn string, mode gateway.Mode, amount int64, created time.Time) *gateway.DecisionCommit {
			c := newCommit("lane-1", txn, tokenID(len(txn)*1000+int(amount)), mode, amount)
			c.Stored.Decision.Mode = mode
			c.Settlement.CreatedAt = created
			mustCommit(t, s, c)
			return c
		}
		reverse := func(c *gateway.DecisionCommit, amount int64) *gateway.Settlement {
			id := "stl-rev-" + c.Key.POSTxnID
			stl := &gateway.Settlement{ID: id, Kind: gateway.SettlementReversal, Lane: c.Key.Lane, POSTxnID: c.Key.POSTxnID, Amount: amount, Currency: "JPY", Mode: c.Settlement.Mode, CreatedAt: t0.Add(time.Hour), ReversesID: c.Settlement.ID}
			if _, _, err := s.CommitReversal(ctx, c.Key, gateway.Reversal{ID: id, Amount: amount, Currency: "JPY"}, stl, gateway.AuditEntry{Event: gateway.AuditReverse}); err != nil {
				t.Fatal(err)
			}
			return stl
		}
		ack := func(id string, status gateway.SettlementStatus) {
			if err := s.AckSettlements(ctx, []gateway.SettlementAck{{ID: id, Status: status, Message: "no"}}); err != nil {
				t.Fatal(err)
			}
		}
		want := func(step string, depth int64, oldest time.Time, exposure, disputed int64) {
			t.Helper()
			st := outboxStats(t, s)
			if st.Depth != depth || !st.Oldest.Equal(oldest) || st.OfflineExposure != exposure || st.Disputed != disputed {
				t.Errorf("%s: got depth %d, oldest %v, exposure %d, disputed %d; want %d, %v, %d, %d",
					step, st.Depth, st.Oldest, st.OfflineExposure, st.Disputed, depth, oldest, exposure, disputed)
			}
		}

		c1 := commit("txn-1", gateway.ModeOffline, 1000, t0.Add(1*time.Minute))
		c2 := commit("txn-2", gateway.ModeOnline, 700, t0.Add(2*time.Minute))
		c3 := commit("txn-3", gateway.ModeOffline, 300, t0.Add(3*time.Minute))
		want("three captures", 3, t0.Add(time.Minute), 1300, 0)

		r3 := reverse(c3, 300)
		want("offline capture reversed", 4, t0.Add(time.Minute), 1000, 0)

		ack(c1.Settlement.ID, gateway.SettlementAccepted)
		want("offline capture acknowledged", 3, t0.Add(2*time.Minute), 0, 0)

		ack(c2.Settlement.ID, gateway.SettlementRefused)
		want("online capture refused", 2, t0.Add(3*time.Minute), 0, 1)

		ack(c3.Settlement.ID, gateway.SettlementAccepted)
		ack(r3.ID, gateway.SettlementAccepted)
		want("all acknowledged", 0, time.Time{}, 0, 1)

		// A reversal larger than its capture, and one of a capture already
		// acknowledged, never take exposure below zero.
		c4 := commit("txn-4", gateway.ModeOffline, 500, t0.Add(4*time.Minute))
		c5 := commit("txn-5", gateway.ModeOffline, 200, t0.Add(5*time.Minute))
		reverse(c5, 999)
		want("reversal over its capture", 3, t0.Add(4*time.Minute), 500, 1)
		ack(c4.Settlement.ID, gateway.SettlementDuplicate)
		reverse(c4, 500)
		want("reversal of an acknowledged capture", 3, t0.Add(5*time.Minute), 0, 1)
	})
}
