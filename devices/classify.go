package devices

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// TokenPrefix starts the text of every signed payment token.
const TokenPrefix = "SGP1:"

// Payment codes are the 16 to 20 digit numeric references that payment apps
// show as 1D barcodes; no GS1 product code has that many digits.
const (
	minPaymentCodeDigits = 16
	maxPaymentCodeDigits = 20
)

// Kind is what a scanned frame holds.
type Kind int

const (
	// KindUnknown is a frame that is none of the others, or one that was
	// refused; Scan.Reason says which.
	KindUnknown Kind = iota
	// KindPaymentToken is a signed payment token, text starting with "SGP1:".
	KindPaymentToken
	// KindPaymentCode is a 16 to 20 digit numeric payment reference.
	KindPaymentCode
	// KindProduct is an EAN-13, EAN-8 or UPC-A product code whose GS1 check
	// digit is right.
	KindProduct
)

// String returns the kind as it appears in logs.
func (k Kind) String() string {
	switch k {
	case KindUnknown:
		return "unknown"
	case KindPaymentToken:
		return "payment-token"
	case KindPaymentCode:
		return "payment-code"
	case KindProduct:
		return "product"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// IsCredential reports whether the kind is a payment credential, which the
// ScanHub holds under a scan id and never shows in full.
func (k Kind) IsCredential() bool {
	return k == KindPaymentToken || k == KindPaymentCode
}

// Reasons a frame is classified KindUnknown.
const (
	// ReasonEmpty is a frame with no data after its AIM identifier.
	ReasonEmpty = "empty"
	// ReasonBinary is a frame with a control byte or a byte outside ASCII.
	ReasonBinary = "binary"
	// ReasonTokenNot2D is a payment token read from a symbology that is not
	// two-dimensional: phones show tokens as QR codes, so a token in a linear
	// barcode was printed or re-encoded by someone and is refused.
	ReasonTokenNot2D = "token-not-2d"
	// ReasonCheckDigit is an 8, 12 or 13 digit code whose GS1 check digit is
	// wrong.
	ReasonCheckDigit = "bad-check-digit"
	// ReasonUnrecognised is any other text.
	ReasonUnrecognised = "unrecognised"
)

// Scan is a classified frame.
type Scan struct {
	// Kind is what the frame holds.
	Kind Kind
	// AIM is the symbology identifier the frame started with, if any.
	AIM AIM
	// Text is the frame's data after the AIM identifier. For a credential it
	// is the credential itself: never log it, log Fingerprint(Text).
	Text string
	// Reason says why Kind is KindUnknown; it is empty for the other kinds.
	Reason string
}

// Rejected reports whether the frame was refused outright rather than merely
// not recognised; rejected frames are counted as DropRejected.
func (s Scan) Rejected() bool {
	return s.Reason == ReasonTokenNot2D
}

// Sensitive reports whether Text may be a payment credential and so must be
// shown only as its Fingerprint: a credential, a refused token, or an unknown
// digit string longer than any product code, which may be a damaged payment
// code.
func (s Scan) Sensitive() bool {
	return sensitive(s.Text)
}

// Classify tells what a frame holds. It strips a leading AIM identifier and
// never fails: anything it does not recognise is KindUnknown with a Reason.
func Classify(frame []byte) Scan {
	aim, data := ParseAIM(frame)
	s := Scan{AIM: aim, Text: string(data), Kind: KindUnknown}
	switch {
	case len(data) == 0:
		s.Reason = ReasonEmpty
	case !printableASCII(data):
		s.Reason = ReasonBinary
	case strings.HasPrefix(s.Text, TokenPrefix) && len(s.Text) > len(TokenPrefix):
		if aim != "" && !aim.Is2D() {
			s.Reason = ReasonTokenNot2D
			break
		}
		s.Kind = KindPaymentToken
	case allDigits(s.Text):
		s.Kind, s.Reason = classifyDigits(s.Text)
	default:
		s.Reason = ReasonUnrecognised
	}
	return s
}

func classifyDigits(digits string) (Kind, string) {
	switch n := len(digits); {
	case n >= minPaymentCodeDigits && n <= maxPaymentCodeDigits:
		return KindPaymentCode, ""
	case n == 8 || n == 12 || n == 13:
		if !ValidCheckDigit(digits) {
			return KindUnknown, ReasonCheckDigit
		}
		return KindProduct, ""
	default:
		return KindUnknown, ReasonUnrecognised
	}
}

// ValidCheckDigit reports whether the last digit of a GS1 code (EAN-8, UPC-A,
// EAN-13, GTIN-14) is the check digit of the others: weights 3 and 1
// alternate from the digit next to it leftwards, and the check digit brings the
// weighted sum to a multiple of ten. It returns false for anything but two or
// more ASCII digits.
func ValidCheckDigit(digits string) bool {
	if len(digits) < 2 || !allDigits(digits) {
		return false
	}
	sum := 0
	weight := 3
	for i := len(digits) - 2; i >= 0; i-- {
		sum += int(digits[i]-'0') * weight
		weight = 4 - weight
	}
	return (10-sum%10)%10 == int(digits[len(digits)-1]-'0')
}

// Fingerprint masks a credential for logs and screens: "SGP1:…" and the first
// six hex digits of the SHA-256 of a token, "****" and the last four digits of
// a numeric code, "…" and six hex digits of the SHA-256 of anything else. It
// never returns enough to rebuild the credential.
func Fingerprint(text string) string {
	if strings.HasPrefix(text, TokenPrefix) {
		return TokenPrefix + "…" + hashPrefix(text)
	}
	if len(text) >= 8 && allDigits(text) {
		return "****" + text[len(text)-4:]
	}
	return "…" + hashPrefix(text)
}

func hashPrefix(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:3])
}

func sensitive(text string) bool {
	return strings.HasPrefix(text, TokenPrefix) || (len(text) > 13 && allDigits(text))
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func printableASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
