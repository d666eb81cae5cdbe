package gateway_test

import (
	"strconv"
	"strings"
	"testing"

	"storegate/gateway"
)

func TestQuoteInput(t *testing.T) {
	for _, s := range []string{"", "USD", "application/storegate.keyset+proto", strings.Repeat("x", 64)} {
		if got := gateway.QuoteInput(s); got != strconv.Quote(s) {
			t.Errorf("QuoteInput(%q) = %s, want it quoted whole", s, got)
		}
	}
	long := strings.Repeat("A", 1<<20)
	got := gateway.QuoteInput(long)
	if len(got) > 96 || !strings.Contains(got, "1048576 bytes") {
		t.Fatalf("QuoteInput of 1 MiB = %q, want the first bytes and the length", got)
	}
	// Clipping inside a multi-byte character still quotes cleanly.
	if got := gateway.QuoteInput(strings.Repeat("円", 30)); !strings.HasPrefix(got, `"円`) || strings.ContainsRune(got, '\uFFFD') {
		t.Fatalf("QuoteInput of long Japanese text = %s", got)
	}
}
