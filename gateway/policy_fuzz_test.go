package gateway_test

import (
	"crypto/ed25519"
	"testing"

	"google.golang.org/protobuf/proto"

	"storegate/gateway"
	documentv1 "storegate/proto/storegate/document/v1"
)

// policyFuzzRoot is a fixed root key, so that fuzz inputs replay.
var policyFuzzRoot = ed25519.NewKeyFromSeed([]byte("storegate fuzz root key 32 bytes"))

func policyFuzzRootPub() ed25519.PublicKey { return policyFuzzRoot.Public().(ed25519.PublicKey) }

// FuzzOpenPolicy feeds arbitrary payloads, signed by the root key, and
// arbitrary documents to OpenPolicy: it must never panic, refuse with
// EINVALID, and whatever it accepts must be a valid policy that survives a
// round trip.
func FuzzOpenPolicy(f *testing.F) {
	seeds := []*documentv1.Policy{
		policyDoc(1),
		policyDoc(3, &documentv1.Rule{Id: "tobacco", Categories: []string{"tobacco"}, SkuPrefixes: []string{"4901777"},
			MaxQuantityPerTransaction: 10, MaxQuantityPerAccount: 20, AccountWindowSeconds: 86400}),
		policyDoc(9, &documentv1.Rule{Id: "gift-cards", Categories: []string{"giftcard"}, MaxAmountPerAccount: 30000,
			AccountWindowSeconds: 86400, MaxAmountPerStore: 100000, StoreWindowSeconds: 3600, MinAssurance: 2}),
		{Version: 2, StoreId: "store-0001", Mode: modeSuspended, MaxTokenLifetimeSeconds: 120,
			Offline: &documentv1.OfflineCaps{MaxAmountPerTransaction: 5000, MaxAmountPerAccount: 10000, MaxStoreExposure: 300000}},
		{Version: 1, Mode: 7, Rules: []*documentv1.Rule{{Id: "x", MaxAmountPerAccount: -1}}},
	}
	for _, m := range seeds {
		payload, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(payload)
		if raw, err := gateway.SignDocument(policyFuzzRoot, gateway.ContentTypePolicy, payload); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte{})
	f.Add([]byte("\xd2\x84\x43\xa1\x01\x27\xa0\x40\x40"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := policyFuzzRootPub()
		// data as a whole document: almost always refused, never a panic.
		if p, err := gateway.OpenPolicy(data, root, nil); err == nil {
			checkPolicy(t, p)
		} else if gateway.ErrorCode(err) != gateway.EINVALID {
			t.Fatalf("OpenPolicy(document): error code %q (%v), want %q", gateway.ErrorCode(err), err, gateway.EINVALID)
		}
		// data as a signed payload: the decoder and the checks see it.
		raw, err := gateway.SignDocument(policyFuzzRoot, gateway.ContentTypePolicy, data)
		if err != nil {
			return
		}
		p, err := gateway.OpenPolicy(raw, root, nil)
		if err != nil {
			if gateway.ErrorCode(err) != gateway.EINVALID {
				t.Fatalf("OpenPolicy(payload): error code %q (%v), want %q", gateway.ErrorCode(err), err, gateway.EINVALID)
			}
			return
		}
		checkPolicy(t, p)
	})
}

// checkPolicy checks what OpenPolicy accepted: valid, and the same after a
// round trip through its message.
func checkPolicy(t *testing.T, p *gateway.Policy) {
	t.Helper()
	m := p.Proto()
	if err := gateway.ValidatePolicy(m); err != nil {
		t.Fatalf("accepted policy does not validate: %v", err)
	}
	raw, err := gateway.SignPolicy(policyFuzzRoot, m)
	if err != nil {
		t.Fatalf("accepted policy does not sign: %v", err)
	}
	again, err := gateway.OpenPolicy(raw, policyFuzzRootPub(), nil)
	if err != nil {
		t.Fatalf("accepted policy does not reopen: %v", err)
	}
	if !proto.Equal(again.Proto(), m) {
		t.Fatalf("round trip changed the policy:\n got %v\nwant %v", again.Proto(), m)
	}
	if p.Mode < gateway.StoreNormal || p.Mode > gateway.StoreSuspended || p.Version == 0 {
		t.Fatalf("accepted policy has mode %v version %d", p.Mode, p.Version)
	}
}

// FuzzOpenFreezeList is FuzzOpenPolicy for freeze lists: whatever is
// accepted validates, and applying it to a freeze set does what it says.
func FuzzOpenFreezeList(f *testing.F) {
	seeds := []*documentv1.FreezeList{
		freezeDoc(1, false, freezeOf("acct-1", "takeover")),
		freezeDoc(2, false, unfreezeOf("acct-1"), freezeOf("acct-2", "")),
		freezeDoc(10, true, freezeOf("acct-3", "chargebacks"), freezeOf("acct-4", "")),
		freezeDoc(5, true),
		freezeDoc(1, false, freezeOf("acct-1", ""), freezeOf("acct-1", "")),
	}
	for _, m := range seeds {
		payload, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(payload)
		if raw, err := gateway.SignDocument(policyFuzzRoot, gateway.ContentTypeFreeze, payload); err == nil {
			f.Add(raw)
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		root := policyFuzzRootPub()
		if _, err := gateway.OpenFreezeList(data, root, nil); err != nil && gateway.ErrorCode(err) != gateway.EINVALID {
			t.Fatalf("OpenFreezeList(document): error code %q (%v), want %q", gateway.ErrorCode(err), err, gateway.EINVALID)
		}
		raw, err := gateway.SignDocument(policyFuzzRoot, gateway.ContentTypeFreeze, data)
		if err != nil {
			return
		}
		l, err := gateway.OpenFreezeList(raw, root, nil)
		if err != nil {
			if gateway.ErrorCode(err) != gateway.EINVALID {
				t.Fatalf("OpenFreezeList(payload): error code %q (%v), want %q", gateway.ErrorCode(err), err, gateway.EINVALID)
			}
			return
		}
		if l.Version == 0 {
			t.Fatal("accepted a freeze list at version 0")
		}
		base := gateway.NewFreezeSet(l.Version-1, map[string]gateway.FrozenAccount{"acct-base": {Version: 1}})
		if ok, err := gateway.FreezeFollows(base.Version, l); !ok || err != nil {
			t.Fatalf("FreezeFollows(v%d, v%d): got %v, %v, want it to follow", base.Version, l.Version, ok, err)
		}
		next := base.Apply(l)
		for _, e := range l.Entries {
			if _, frozen := next.Lookup(e.Account); frozen != e.Frozen {
				t.Fatalf("after applying: %s frozen %v, want %v", e.Account, frozen, e.Frozen)
			}
		}
		if _, kept := next.Lookup("acct-base"); kept == l.Snapshot && !containsAccount(l, "acct-base") {
			t.Fatalf("acct-base kept %v after a list with snapshot %v", kept, l.Snapshot)
		}
		if base.Len() != 1 {
			t.Fatal("Apply changed the set it was applied to")
		}
	})
}

func containsAccount(l *gateway.FreezeList, account string) bool {
	for _, e := range l.Entries {
		if e.Account == account {
			return true
		}
	}
	return false
}
