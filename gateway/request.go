package gateway

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"regexp"
	"strings"
)

// Request limits. A request outside them is malformed (EINVALID), never a
// decline.
const (
	MaxLines        = 200
	MaxQuantity     = 10_000
	MaxUnitPrice    = 100_000_000_000 // minor units
	MaxIDLength     = 64
	MaxSKULength    = 64
	MaxCategoryLen  = 64
	MaxReasonLength = 256
)

// idPattern is what lanes, POS transaction ids and scan ids may hold: short,
// printable, no spaces, safe to log and to use as a key.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9._:\-]{1,64}$`)

// ValidID reports whether s may serve as a lane, transaction, store or
// settlement id: 1 to 64 characters of [A-Za-z0-9._:-].
func ValidID(s string) bool { return idPattern.MatchString(s) }

// The lengths of a numeric payment code: the 16 to 20 digits that payment
// apps show as a 1D barcode.
const (
	MinPaymentCodeDigits = 16
	MaxPaymentCodeDigits = 20
)

// codePattern is the 16–20 digit numeric payment code.
var codePattern = regexp.MustCompile(fmt.Sprintf(`^[0-9]{%d,%d}$`, MinPaymentCodeDigits, MaxPaymentCodeDigits))

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// IsPaymentCode reports whether s is a numeric payment code: an online-only
// reference the central service resolves.
func IsPaymentCode(s string) bool { return codePattern.MatchString(s) }

// Line is one basket line. Prices are int64 minor units.
type Line struct {
	SKU       string
	Category  string
	Quantity  int64
	UnitPrice int64
}

// AuthorizeRequest is a POS asking to pay for a basket.
type AuthorizeRequest struct {
	Lane     string
	POSTxnID string
	Lines    []Line
	Total    int64
	Currency string
	// Token is the credential text (an SGP1 token or a numeric code); ScanID
	// names one the lane's scanner read. Exactly one is set.
	Token  string
	ScanID string
	// Caller is who asks, for the audit record; the adapter that received
	// the call has checked that it may act on Lane.
	Caller Caller
}

// IdempotencyKey names one POS sale: the lane and the POS transaction id.
type IdempotencyKey struct {
	Lane     string
	POSTxnID string
}

// String returns "lane/txn", for logs.
func (k IdempotencyKey) String() string { return k.Lane + "/" + k.POSTxnID }

// Key returns the request's idempotency key.
func (r *AuthorizeRequest) Key() IdempotencyKey {
	return IdempotencyKey{Lane: r.Lane, POSTxnID: r.POSTxnID}
}

// Validate checks the request's shape, that the lines add up to the total
// without overflow, and that the currency is the store's. Errors are
// EINVALID and name the field.
func (r *AuthorizeRequest) Validate(currency string) error {
	if !idPattern.MatchString(r.Lane) {
		return Errorf(EINVALID, "lane: want 1-%d characters of [A-Za-z0-9._:-]", MaxIDLength)
	}
	if !idPattern.MatchString(r.POSTxnID) {
		return Errorf(EINVALID, "pos_transaction_id: want 1-%d characters of [A-Za-z0-9._:-]", MaxIDLength)
	}
	if r.Currency != currency {
		return Errorf(EINVALID, "currency: %s is not this store's currency (%s)", QuoteInput(r.Currency), currency)
	}
	switch {
	case r.Token != "" && r.ScanID != "":
		return Errorf(EINVALID, "credential: give a token or a scan_id, not both")
	case r.Token == "" && r.ScanID == "":
		return Errorf(EINVALID, "credential: a token or a scan_id is required")
	case len(r.Token) > MaxTokenText:
		return Errorf(EINVALID, "token: longer than %d characters", MaxTokenText)
	case r.ScanID != "" && !idPattern.MatchString(r.ScanID):
		return Errorf(EINVALID, "scan_id: malformed")
	}
	if len(r.Lines) == 0 || len(r.Lines) > MaxLines {
		return Errorf(EINVALID, "lines: want 1 to %d lines, got %d", MaxLines, len(r.Lines))
	}
	var sum int64
	for i, l := range r.Lines {
		if l.SKU == "" || len(l.SKU) > MaxSKULength {
			return Errorf(EINVALID, "lines[%d].sku: want 1 to %d characters", i, MaxSKULength)
		}
		if len(l.Category) > MaxCategoryLen {
			return Errorf(EINVALID, "lines[%d].category: longer than %d characters", i, MaxCategoryLen)
		}
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			return Errorf(EINVALID, "lines[%d].quantity: %d outside 1 to %d", i, l.Quantity, MaxQuantity)
		}
		if l.UnitPrice < 0 || l.UnitPrice > MaxUnitPrice {
			return Errorf(EINVALID, "lines[%d].unit_price: %d outside 0 to %d", i, l.UnitPrice, MaxUnitPrice)
		}
		hi, lo := bits.Mul64(uint64(l.Quantity), uint64(l.UnitPrice))
		if hi != 0 || lo > 1<<62 {
			return Errorf(EINVALID, "lines[%d]: amount overflows", i)
		}
		sum += int64(lo)
		if sum > 1<<62 {
			return Errorf(EINVALID, "lines: total overflows")
		}
	}
	if r.Total != sum {
		return Errorf(EINVALID, "total: %d does not match the lines' sum %d", r.Total, sum)
	}
	if r.Total <= 0 {
		return Errorf(EINVALID, "total: must be positive")
	}
	return nil
}

// Digest returns a SHA-256 over the basket (lines, total, currency): the
// idempotency record keeps it so that a retry with another basket is caught.
// The credential is left out: a POS retry may carry the scan id it used or
// the token itself.
func (r *AuthorizeRequest) Digest() [32]byte {
	h := sha256.New()
	var n [8]byte
	putString := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	putInt := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	putString(r.Currency)
	putInt(r.Total)
	putInt(int64(len(r.Lines)))
	for _, l := range r.Lines {
		putString(l.SKU)
		putString(l.Category)
		putInt(l.Quantity)
		putInt(l.UnitPrice)
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// ReverseRequest asks to reverse an approved sale.
type ReverseRequest struct {
	Lane     string
	POSTxnID string
	// Reason says why, for the audit log; required.
	Reason string
	// Caller is who asks; only the sale's lane or a supervisor of the
	// store may reverse it.
	Caller Caller
}

// Validate checks the request's shape.
func (r *ReverseRequest) Validate() error {
	if !idPattern.MatchString(r.Lane) {
		return Errorf(EINVALID, "lane: want 1-%d characters of [A-Za-z0-9._:-]", MaxIDLength)
	}
	if !idPattern.MatchString(r.POSTxnID) {
		return Errorf(EINVALID, "pos_transaction_id: want 1-%d characters of [A-Za-z0-9._:-]", MaxIDLength)
	}
	switch {
	case strings.TrimSpace(r.Reason) == "":
		return Errorf(EINVALID, "reason: required: say why the sale is reversed, for the audit log")
	case len(r.Reason) > MaxReasonLength:
		return Errorf(EINVALID, "reason: longer than %d characters", MaxReasonLength)
	}
	return nil
}
