package grpcserver

import "errors"

// errStopScan ends an audit scan early; it never leaves this package.
var errStopScan = errors.New("stop scan")
