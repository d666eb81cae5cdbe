//go:build !linux

package grpcserver

import (
	"errors"
	"net"
)

// peerCred is Linux's SO_PEERCRED; elsewhere the admin socket takes nobody.
func peerCred(*net.UnixConn) (PeerCred, error) {
	return PeerCred{}, errors.New("peer credentials need Linux (SO_PEERCRED)")
}
