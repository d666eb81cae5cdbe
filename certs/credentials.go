package certs

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"

	"google.golang.org/grpc/credentials"
)

// ServerCredentials returns the gRPC transport credentials of a server
// with cfg that tells refused of every handshake that fails, with the
// client's address: grpc-go itself only mentions them in its own logger,
// which a daemon's log never shows.
func ServerCredentials(cfg *tls.Config, refused func(remote net.Addr, err error)) credentials.TransportCredentials {
	return &serverCredentials{TransportCredentials: credentials.NewTLS(cfg), refused: refused}
}

type serverCredentials struct {
	credentials.TransportCredentials
	refused func(remote net.Addr, err error)
}

func (c *serverCredentials) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil && c.refused != nil {
		c.refused(raw.RemoteAddr(), err)
	}
	return conn, info, err
}

func (c *serverCredentials) Clone() credentials.TransportCredentials {
	return &serverCredentials{TransportCredentials: c.TransportCredentials.Clone(), refused: c.refused}
}

// LogRefused returns a refused function for ServerCredentials that logs
// each refused handshake on logger. A certificate problem is a warning that
// names it (no certificate, an unknown CA, expired, …) and what the
// certificate claimed to be; a handshake that failed otherwise (a plaintext
// client, a TLS version no client of storegate's speaks) is logged at debug
// level, and one the client simply hung up on (a port scan, a TCP health
// check) not at all.
func LogRefused(logger *slog.Logger) func(net.Addr, error) {
	return func(remote net.Addr, err error) {
		he := ExplainHandshake(err)
		if he == nil {
			if !errors.Is(err, io.EOF) {
				logger.Debug("TLS handshake failed", "remote", remote.String(), "err", err)
			}
			return
		}
		attrs := []any{"remote", remote.String(), "problem", string(he.Problem)}
		if he.Claimed != "" {
			attrs = append(attrs, "claimed", he.Claimed)
		}
		logger.Warn("TLS handshake refused: "+he.Sentence("client"), append(attrs, "err", err)...)
	}
}
