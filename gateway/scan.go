package gateway

import (
	"context"
	"time"
)

// ScanKind classifies what a lane's scanner read.
type ScanKind int

// Scan kinds.
const (
	ScanUnknown ScanKind = iota
	// ScanPaymentToken is an "SGP1:" token, held under a scan id.
	ScanPaymentToken
	// ScanPaymentCode is a 16-20 digit payment code, held under a scan id.
	ScanPaymentCode
	// ScanProduct is a product barcode with a valid check digit.
	ScanProduct
)

// ScanEvent is one scan as the lane's POS may see it: product codes in full,
// payment credentials only as a scan id and a masked fingerprint.
type ScanEvent struct {
	Lane string
	Kind ScanKind
	// ScanID names a held credential; pass it to Authorize.
	ScanID string
	// Code is the text of a product or unknown scan; empty for credentials.
	Code string
	// Fingerprint is a masked credential; empty when Code is set.
	Fingerprint string
	// Symbology is the AIM identifier the scanner sent, for example "]Q1".
	Symbology string
	ScannedAt time.Time
	// ExpiresAt is when a held credential's scan id expires.
	ExpiresAt time.Time
}

// ScannerStatus is one lane scanner's state, for operators.
type ScannerStatus struct {
	// Lane and Device are the scanner's configuration.
	Lane   string
	Device string
	// Up reports whether the scanner is open and reading.
	Up bool
	// Since is when Up last changed, or when reading started.
	Since time.Time
	// Frames counts the frames delivered.
	Frames uint64
	// Dropped counts the frames dropped, whatever the reason.
	Dropped uint64
	// LastError is the last open or read failure, kept after the scanner
	// recovers so that a flapping scanner can be diagnosed.
	LastError string
}

// ScanSource hands out payment credentials that a lane's scanner read.
type ScanSource interface {
	// TakeScan returns the credential held under scanID for lane and forgets
	// it. An unknown, expired or already used scan id, or one read on
	// another lane, is an ENOTFOUND error.
	TakeScan(lane, scanID string) (string, error)
}

// ScanFeed is what the POS-facing server needs from the lanes' scanners.
type ScanFeed interface {
	// WatchScans streams the lane's scans as they are read until ctx ends,
	// then closes the channel. An unconfigured lane is ENOTFOUND.
	WatchScans(ctx context.Context, lane string) (<-chan ScanEvent, error)
	// Scanners returns each configured scanner's state.
	Scanners() []ScannerStatus
}
