package main

import (
	"net"
	"time"

	"storegate/gateway"
)

// offlineCentralTimeout is the gateway's deadline for central in the offline
// scenario. Central's address is a closed loopback port, so calls fail at
// once; the deadline only bounds a call that would hang.
const offlineCentralTimeout = 50 * time.Millisecond

// enableOfflineCaps gives the offline scenario's gateway the offline caps
// that let it approve without central, and reports whether this build has
// them.
//
// This build has no offline caps: a gateway that cannot reach central
// declines every payment as central_unavailable, still committing the
// decision, the spent token and the audit record durably. The offline
// scenario then measures that path, and the report says so. Once offline
// approval is merged, set the caps here (generous enough that no bench sale
// hits a per-account or store-wide cap: a run spends well under a million
// yen per account) and return true; nothing else in the harness changes.
func enableOfflineCaps(_ *gateway.Gateway) bool {
	return false
}

// closedLoopbackAddr returns a loopback address nothing listens on: a port
// the kernel handed out and that was closed at once, so connections to it
// are refused.
func closedLoopbackAddr() (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := lis.Addr().String()
	return addr, lis.Close()
}
