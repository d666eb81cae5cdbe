package devices_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"storegate/devices"
)

func TestParseAIM(t *testing.T) {
	for _, tt := range []struct {
		frame     string
		wantAIM   devices.AIM
		wantData  string
		want2D    bool
		wantSymbo string
	}{
		{"]Q1SGP1:ABC", "]Q1", "SGP1:ABC", true, "QR Code"},
		{"]E04901234567894", "]E0", "4901234567894", false, "EAN/UPC"},
		{"]E449123456", "]E4", "49123456", false, "EAN/UPC"},
		{"]C0ABC123", "]C0", "ABC123", false, "Code 128"},
		{"]C1010123456789012815", "]C1", "010123456789012815", false, "Code 128"},
		{"]d2SGP1:ABC", "]d2", "SGP1:ABC", true, "Data Matrix"},
		{"]z0SGP1:ABC", "]z0", "SGP1:ABC", true, "Aztec"},
		{"]L2SGP1:ABC", "]L2", "SGP1:ABC", true, "PDF417"},
		{"]A0CODE39", "]A0", "CODE39", false, "Code 39"},
		{"]I01234567890", "]I0", "1234567890", false, "Interleaved 2 of 5"},
		{"]X0data", "]X0", "data", false, "other"},
		{"]Q1", "]Q1", "", true, "QR Code"},
		{"4901234567894", "", "4901234567894", false, "none"},
		{"]Q", "", "]Q", false, "none"},
		{"]1Q2", "", "]1Q2", false, "none"},
		{"]Q-1", "", "]Q-1", false, "none"},
		{"Q1]ABC", "", "Q1]ABC", false, "none"},
		{"", "", "", false, "none"},
	} {
		t.Run(tt.frame, func(t *testing.T) {
			aim, data := devices.ParseAIM([]byte(tt.frame))
			if aim != tt.wantAIM || string(data) != tt.wantData {
				t.Errorf("got %q, %q; want %q, %q", aim, data, tt.wantAIM, tt.wantData)
			}
			if got := aim.Is2D(); got != tt.want2D {
				t.Errorf("Is2D: got %v, want %v", got, tt.want2D)
			}
			if got := aim.Symbology(); got != tt.wantSymbo {
				t.Errorf("Symbology: got %q, want %q", got, tt.wantSymbo)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	token := "SGP1:6BFOXN*TS0BI$ZD-CH1KSL"
	for _, tt := range []struct {
		name     string
		frame    string
		kind     devices.Kind
		aim      devices.AIM
		text     string
		reason   string
		rejected bool
	}{
		{"Token", token, devices.KindPaymentToken, "", token, "", false},
		{"TokenQR", "]Q1" + token, devices.KindPaymentToken, "]Q1", token, "", false},
		{"TokenDataMatrix", "]d2" + token, devices.KindPaymentToken, "]d2", token, "", false},
		{"TokenAztec", "]z0" + token, devices.KindPaymentToken, "]z0", token, "", false},
		{"TokenPDF417", "]L2" + token, devices.KindPaymentToken, "]L2", token, "", false},
		{"TokenCode128Rejected", "]C0" + token, devices.KindUnknown, "]C0", token, devices.ReasonTokenNot2D, true},
		{"TokenCode39Rejected", "]A0" + token, devices.KindUnknown, "]A0", token, devices.ReasonTokenNot2D, true},
		{"TokenPrefixOnly", "SGP1:", devices.KindUnknown, "", "SGP1:", devices.ReasonUnrecognised, false},
		{"TokenLowercase", "sgp1:abc", devices.KindUnknown, "", "sgp1:abc", devices.ReasonUnrecognised, false},
		{"Code16", "1234567890123456", devices.KindPaymentCode, "", "1234567890123456", "", false},
		{"Code20", "12345678901234567890", devices.KindPaymentCode, "", "12345678901234567890", "", false},
		{"Code18Code128", "]C0123456789012345678", devices.KindPaymentCode, "]C0", "123456789012345678", "", false},
		{"Digits15", "123456789012345", devices.KindUnknown, "", "123456789012345", devices.ReasonUnrecognised, false},
		{"Digits21", "123456789012345678901", devices.KindUnknown, "", "123456789012345678901", devices.ReasonUnrecognised, false},
		{"EAN13", "4901234567894", devices.KindProduct, "", "4901234567894", "", false},
		{"EAN13AIM", "]E04901234567894", devices.KindProduct, "]E0", "4901234567894", "", false},
		{"EAN8", "49123456", devices.KindProduct, "", "49123456", "", false},
		{"EAN8AIM", "]E449123456", devices.KindProduct, "]E4", "49123456", "", false},
		{"UPCA", "036000291452", devices.KindProduct, "", "036000291452", "", false},
		{"EAN13BadCheck", "4901234567890", devices.KindUnknown, "", "4901234567890", devices.ReasonCheckDigit, false},
		{"EAN8BadCheck", "49123457", devices.KindUnknown, "", "49123457", devices.ReasonCheckDigit, false},
		{"UPCABadCheck", "036000291453", devices.KindUnknown, "", "036000291453", devices.ReasonCheckDigit, false},
		{"Digits10", "1234567890", devices.KindUnknown, "", "1234567890", devices.ReasonUnrecognised, false},
		{"Text", "HELLO", devices.KindUnknown, "", "HELLO", devices.ReasonUnrecognised, false},
		{"Empty", "", devices.KindUnknown, "", "", devices.ReasonEmpty, false},
		{"AIMOnly", "]Q1", devices.KindUnknown, "]Q1", "", devices.ReasonEmpty, false},
		{"Binary", "4901234567894\x00", devices.KindUnknown, "", "4901234567894\x00", devices.ReasonBinary, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := devices.Classify([]byte(tt.frame))
			want := devices.Scan{Kind: tt.kind, AIM: tt.aim, Text: tt.text, Reason: tt.reason}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if got.Rejected() != tt.rejected {
				t.Errorf("Rejected: got %v, want %v", got.Rejected(), tt.rejected)
			}
		})
	}
}

func TestValidCheckDigit(t *testing.T) {
	for _, tt := range []struct {
		digits string
		want   bool
	}{
		{"4901234567894", true},  // EAN-13
		{"49123456", true},       // EAN-8
		{"96385074", true},       // EAN-8
		{"036000291452", true},   // UPC-A
		{"0036000291452", true},  // the same UPC-A as an EAN-13
		{"10012345678902", true}, // GTIN-14
		{"4901234567890", false},
		{"4901234567895", false},
		{"49123450", false},
		{"036000291453", false},
		{"0490123456789", false}, // digits shifted
		{"", false},
		{"4", false},
		{"49O1234567894", false},
	} {
		if got := devices.ValidCheckDigit(tt.digits); got != tt.want {
			t.Errorf("ValidCheckDigit(%q): got %v, want %v", tt.digits, got, tt.want)
		}
	}
}

func TestFingerprint(t *testing.T) {
	t.Run("Token", func(t *testing.T) {
		token := "SGP1:6BFOXN*TS0BI$ZD-CH1KSL"
		sum := sha256.Sum256([]byte(token))
		want := "SGP1:…" + hex.EncodeToString(sum[:])[:6]
		if got := devices.Fingerprint(token); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
		if other := devices.Fingerprint(token + "X"); other == want {
			t.Errorf("different tokens share fingerprint %q", other)
		}
	})
	t.Run("Code", func(t *testing.T) {
		if got, want := devices.Fingerprint("12345678901234567890"), "****7890"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("Other", func(t *testing.T) {
		got := devices.Fingerprint("hello")
		if !strings.HasPrefix(got, "…") || strings.Contains(got, "hello") || len([]rune(got)) != 7 {
			t.Errorf("got %q, want … and six hex digits", got)
		}
	})
}
