package gateway_test

import (
	"testing"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
)

// HQ's policy and the store's configured caps together decide what is
// approved offline: each cap is the lower of the two, HQ's rules for
// restricted goods and its store mode may forbid offline approval, and a cap
// only one of them sets applies as set.
func TestOffline_UnderPolicy(t *testing.T) {
	down := func(c *fakeCentral) { c.down = true }
	giftcards := &documentv1.Rule{Id: "giftcards", Categories: []string{"giftcard"}, MaxAmountPerTransaction: 50000, OfflineAllowed: false}
	snacks := &documentv1.Rule{Id: "snacks", Categories: []string{"snack"}, MaxQuantityPerTransaction: 50, OfflineAllowed: true}

	t.Run("RuleForbidsOffline", func(t *testing.T) {
		h := offlineHarness(t, caps)
		h.central.set(down)
		h.applyPolicy(t, policyDoc(1, giftcards, snacks))
		wantRule(t, h.authorize(t, offlineSale("1", "g1", h.mintOfl(t, "acct-1", 5000), 1000, "giftcard")), gateway.ReasonOfflineNotAllowed, "giftcards")
		wantOfflineApproval(t, h.authorize(t, offlineSale("1", "s1", h.mintOfl(t, "acct-1", 5000), 1000, "snack")))
		// Goods no rule names are not restricted: offline within the caps.
		wantOfflineApproval(t, h.authorize(t, offlineSale("1", "f1", h.mintOfl(t, "acct-2", 5000), 1000, "food")))
	})
	t.Run("PolicyCapLowerThanConfig", func(t *testing.T) {
		h := offlineHarness(t, caps) // 2000 per sale in the configuration
		h.central.set(down)
		p := policyDoc(1)
		p.Offline = &documentv1.OfflineCaps{MaxAmountPerTransaction: 1500}
		h.applyPolicy(t, p)
		wantOfflineApproval(t, h.authorize(t, offlineSale("1", "c1", h.mintOfl(t, "acct-1", 5000), 1500, "food")))
		wantRule(t, h.authorize(t, offlineSale("1", "c2", h.mintOfl(t, "acct-2", 5000), 1501, "food")), gateway.ReasonOfflineLimit, "offline."+gateway.CapPerTransaction)
	})
	t.Run("PolicyAloneSetsCaps", func(t *testing.T) {
		h := offlineHarness(t, gateway.OfflineCaps{}) // nothing configured at the store
		h.central.set(down)
		wantRule(t, h.authorize(t, offlineSale("1", "n1", h.mintOfl(t, "acct-1", 5000), 500, "food")), gateway.ReasonCentralUnavailable, "central.unavailable")
		p := policyDoc(1)
		p.Offline = &documentv1.OfflineCaps{MaxAmountPerTransaction: 1000, MaxAmountPerAccount: 2000, MaxStoreExposure: 4000}
		h.applyPolicy(t, p)
		wantOfflineApproval(t, h.authorize(t, offlineSale("1", "n2", h.mintOfl(t, "acct-1", 5000), 1000, "food")))
		wantRule(t, h.authorize(t, offlineSale("1", "n3", h.mintOfl(t, "acct-1", 5000), 1001, "food")), gateway.ReasonOfflineLimit, "offline."+gateway.CapPerTransaction)
	})
	t.Run("OnlineOnlyMode", func(t *testing.T) {
		h := offlineHarness(t, caps)
		h.central.set(down)
		p := policyDoc(1)
		p.Mode = modeOnlineOnly
		h.applyPolicy(t, p)
		res := h.authorize(t, offlineSale("1", "o1", h.mintOfl(t, "acct-1", 5000), 500, "food"))
		if res.Decision.Approved || res.Decision.Reason != gateway.ReasonOfflineNotAllowed {
			t.Fatalf("online-only store with central down: %+v, want offline_not_allowed", res.Decision)
		}
	})
}
