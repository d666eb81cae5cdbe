package main

import (
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"storegate/gateway"
)

// The documented example parses, is a valid policy, and what `policy show`
// prints of it reads back as the same policy.
func TestPolicyFile_Example(t *testing.T) {
	b, err := os.ReadFile("../../systemd/policy.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := parsePolicyFile(b)
	if err != nil {
		t.Fatalf("parse the example: %v", err)
	}
	m.Version = 1
	if err := gateway.ValidatePolicy(m); err != nil {
		t.Fatalf("the example is not a valid policy: %v", err)
	}
	ids := []string{}
	for _, r := range m.GetRules() {
		ids = append(ids, r.GetId())
	}
	if got := strings.Join(ids, " "); got != "tobacco tobacco-cartons gift-cards" {
		t.Errorf("rules: got %s", got)
	}
	gc := m.GetRules()[2]
	if gc.GetMaxAmountPerAccount() != 30000 || gc.GetAccountWindowSeconds() != 86400 || gc.GetMaxAmountPerStore() != 100000 ||
		gc.GetStoreWindowSeconds() != 3600 || gc.GetMinAssurance() != 2 || gc.GetOfflineAllowed() {
		t.Errorf("gift-cards: got %v", gc)
	}
	out, err := formatPolicyFile(m)
	if err != nil {
		t.Fatal(err)
	}
	again, err := parsePolicyFile(out)
	if err != nil {
		t.Fatalf("parse what format wrote: %v\n%s", err, out)
	}
	if !proto.Equal(again, m) {
		t.Errorf("round trip changed the policy:\n got %v\nwant %v\n%s", again, m, out)
	}
	if !strings.Contains(string(out), "account_window: 24h") || !strings.Contains(string(out), "max_token_lifetime: 2m") {
		t.Errorf("durations are not written as a person would:\n%s", out)
	}
}

func TestPolicyFile_Errors(t *testing.T) {
	for name, c := range map[string]struct{ in, want string }{
		"UnknownField":  {"mode: normal\nrules:\n  - id: t\n    categroies: [x]\n", "field categroies not found"},
		"BadDuration":   {"mode: normal\nmax_token_lifetime: soon\n", `"soon": want a duration`},
		"Fractional":    {"mode: normal\nmax_token_lifetime: 1.5s\n", "not a whole number of seconds"},
		"BadMode":       {"mode: closed\n", `mode: "closed" is not normal, online_only or suspended`},
		"TwoDocuments":  {"mode: normal\n---\nmode: suspended\n", "more than one document"},
		"Empty":         {"", "empty"},
		"NotAMap":       {"- mode\n", "cannot unmarshal"},
		"DurationIsMap": {"mode: normal\nmax_token_lifetime: {a: 1}\n", "want a duration"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parsePolicyFile([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
	t.Run("JSON", func(t *testing.T) {
		m, err := parsePolicyFile([]byte(`{"mode": "suspended", "store_id": "store-7", "rules": [{"id": "g", "categories": ["giftcard"], "max_amount_per_store": 1000, "store_window": "1h"}]}`))
		if err != nil || m.GetStoreId() != "store-7" || m.GetRules()[0].GetStoreWindowSeconds() != 3600 {
			t.Fatalf("JSON policy: got %v, %v", m, err)
		}
	})
}
