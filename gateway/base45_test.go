package gateway_test

import (
	"bytes"
	"errors"
	"testing"

	"storegate/gateway"
)

// The examples of RFC 9285, sections 4.3 and 4.4.
var rfc9285 = []struct{ raw, enc string }{
	{"AB", "BB8"},
	{"Hello!!", "%69 VD92EX0"},
	{"base-45", "UJCLQE7W581"},
	{"ietf!", "QED8WEX0"},
	{"", ""},
}

func TestBase45_RFCExamples(t *testing.T) {
	for _, c := range rfc9285 {
		if got := gateway.Base45Encode([]byte(c.raw)); got != c.enc {
			t.Errorf("encode %q = %q, want %q", c.raw, got, c.enc)
		}
		got, err := gateway.Base45Decode(c.enc)
		if err != nil || string(got) != c.raw {
			t.Errorf("decode %q = %q, %v; want %q", c.enc, got, err, c.raw)
		}
	}
}

func TestBase45_Invalid(t *testing.T) {
	for _, s := range []string{
		"GGW",     // 65536: past 16 bits (RFC 9285 section 6)
		":::",     // past 65535
		"A",       // a dangling character
		"bb8",     // lowercase is not in the alphabet
		"BB8\n",   // a control byte
		"ZZ",      // final pair past 255
		"%69 VD!", // '!' is not in the alphabet
	} {
		if got, err := gateway.Base45Decode(s); !errors.Is(err, gateway.ErrBase45) {
			t.Errorf("decode %q = %q, %v; want ErrBase45", s, got, err)
		}
	}
}

func FuzzBase45(f *testing.F) {
	for _, c := range rfc9285 {
		f.Add([]byte(c.raw))
	}
	f.Add([]byte{0, 0, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		enc := gateway.Base45Encode(b)
		dec, err := gateway.Base45Decode(enc)
		if err != nil || !bytes.Equal(dec, b) {
			t.Fatalf("round trip of %x: %x, %v", b, dec, err)
		}
		// Decoding arbitrary text must not panic, and what decodes must
		// encode back to the same text (base45 has one encoding per input).
		if d, err := gateway.Base45Decode(string(b)); err == nil {
			if re := gateway.Base45Encode(d); re != string(b) {
				t.Fatalf("%q decodes to %x, which encodes to %q", b, d, re)
			}
		}
	})
}
