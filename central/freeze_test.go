package central_test

import (
	"testing"

	documentv1 "storegate/proto/storegate/document/v1"
	storegatev1 "storegate/proto/storegate/v1"
)

// TestAuthorize_FrozenAccount: central applies the freeze lists it
// publishes to its own books, so a frozen account is refused by central
// too, whichever store asks and whether or not the store has heard yet.
func TestAuthorize_FrozenAccount(t *testing.T) {
	f := newFixture(t)
	s := newSigner(f.RootKey)
	f.MustAccount(t, "acct-1", 100000)
	f.MustAccount(t, "acct-2", 100000)
	f.MustApprove(t, sale(f.Mint(t, "acct-1"), "pos-1", 1000))

	mustPublishRaw(t, f.Publisher, kindFreeze, s.freeze(t, 1, false, &documentv1.FreezeEntry{Account: "acct-1", Frozen: true, Reason: "takeover"}))
	tok := f.Mint(t, "acct-1")
	res := f.MustAuthorize(t, sale(tok, "pos-2", 1000))
	if res.GetApproved() || res.GetReason() != storegatev1.DeclineReason_DECLINE_REASON_ACCOUNT_FROZEN {
		t.Fatalf("frozen account: got approved %v reason %v, want declined ACCOUNT_FROZEN", res.GetApproved(), res.GetReason())
	}
	if got := f.MustBalance(t, "acct-1"); got != 99000 {
		t.Errorf("balance: got %d, want 99000 (nothing debited while frozen)", got)
	}
	f.MustApprove(t, sale(f.Mint(t, "acct-2"), "pos-3", 1000))

	// Unfrozen: a new token pays again; the declined one stays used.
	mustPublishRaw(t, f.Publisher, kindFreeze, s.freeze(t, 2, false, &documentv1.FreezeEntry{Account: "acct-1"}))
	if res := f.MustAuthorize(t, sale(tok, "pos-4", 1000)); res.GetReason() != storegatev1.DeclineReason_DECLINE_REASON_REPLAYED {
		t.Errorf("the token declined while frozen, again: got %v, want REPLAYED", res.GetReason())
	}
	f.MustApprove(t, sale(f.Mint(t, "acct-1"), "pos-5", 1000))
}
