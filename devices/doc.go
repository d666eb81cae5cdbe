// Package devices connects storegate to the lanes' serial barcode scanners and
// renders payment tokens as QR codes.
//
// It is an adapter: it imports the domain (storegate/gateway) for the
// interfaces it implements, and never gRPC, bbolt or another adapter. A Reader
// owns one lane's scanner: it opens the serial port, splits the byte stream
// into frames (Splitter), strips the AIM symbology identifier (ParseAIM),
// classifies each frame (Classify) and publishes it to a ScanHub. The hub keeps
// payment credentials in memory under a random scan id, hands each one out once
// (Take) to the lane it was scanned on, and streams scan events to the lane's
// subscribers (Watch), so that a point of sale can authorize by scan id without
// ever holding the token. A Manager runs the Readers of all lanes, purges the
// hub of expired credentials, and is the lanes' scanners as the domain sees
// them: gateway.ScanSource (TakeScan) and gateway.ScanFeed (WatchScans,
// Scanners). WriteFrame plays a scanner for tests and for storegatectl, and
// QRTerminal and QRPNG render tokens.
//
// Two things this package must never do:
//
//   - It must never log, return in an event, or otherwise expose a full payment
//     credential (a SGP1: token or a numeric payment code) except through
//     ScanHub.Take. Logs and events carry a masked Fingerprint instead.
//   - It must never let a scanner fault kill the daemon. A scanner that is
//     unplugged, hangs up, sends garbage or cannot be opened is reported in
//     Status, logged, and reopened with backoff; Reader.Run returns only when its
//     context is cancelled, and nothing here panics on outside input or calls
//     os.Exit.
package devices
