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

// enableOfflineCaps gives the offline scenario's gateway offline caps wide
// enough that no bench sale hits a per-account or store-wide cap (a run
// spends well under a million yen per account, and central never
// acknowledges anything while it is down), so the scenario measures the
// offline approval path itself: the token's ofl check, the caps checked
// again inside the commit transaction, the offline capture queued.
func enableOfflineCaps(g *gateway.Gateway) bool {
	g.Offline = gateway.FixedOffline{Caps: gateway.OfflineCaps{
		MaxAmountPerTransaction: 1 << 30,
		MaxAmountPerAccount:     1 << 40,
		MaxStoreExposure:        1 << 50,
	}}
	return true
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
