package centralclient

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// Connection tuning for Dial.
const (
	// KeepaliveTime is how long the connection may sit idle before the
	// gateway pings central.
	KeepaliveTime = 30 * time.Second
	// KeepaliveTimeout is how long the gateway waits for that ping's answer
	// before it counts the connection as dead.
	KeepaliveTimeout = 10 * time.Second
	// MinReconnectDelay and MaxReconnectDelay bound the longest wait between
	// two reconnection attempts that Dial is asked for.
	MinReconnectDelay = time.Second
	MaxReconnectDelay = 30 * time.Second
)

// Dial returns a Client of the central service at address, over creds (nil
// means plaintext), whose reconnect backoff grows to at most maxReconnect
// (bounded to [MinReconnectDelay, MaxReconnectDelay]); pass the breaker's
// cooldown. The connection is made lazily, on the first call. Close releases
// it.
//
// The policy stream stays open for days: keepalive pings find a connection
// that died silently, so that the stream is reopened and a freeze reaches
// the store within a second of HQ publishing it. gRPC's default reconnect
// backoff grows to two minutes during a long outage: the gateway would stay
// offline that long after central is back, so it reconnects at least as
// often as the breaker probes.
func Dial(address string, creds credentials.TransportCredentials, maxReconnect time.Duration) (*Client, error) {
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	maxReconnect = min(max(maxReconnect, MinReconnectDelay), MaxReconnectDelay)
	conn, err := grpc.NewClient(address, grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxReconnect,
		}, MinConnectTimeout: 10 * time.Second}))
	if err != nil {
		return nil, fmt.Errorf("dial central %q: %w", address, err)
	}
	c := New(conn)
	c.conn = conn
	return c, nil
}

// Close closes the connection Dial made; calls in flight fail. It does not
// wait, so ctx is not used. A Client made by New leaves its connection to
// its owner and closes nothing.
func (c *Client) Close(ctx context.Context) error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}
