package centralclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// Connection tuning of a Client made by NewClient.
const (
	// KeepaliveTime is how long the connection may sit idle before the
	// gateway pings central.
	KeepaliveTime = 30 * time.Second
	// KeepaliveTimeout is how long the gateway waits for that ping's answer
	// before it counts the connection as dead.
	KeepaliveTimeout = 10 * time.Second
	// MinReconnectDelay and MaxReconnectDelay bound MaxReconnect.
	MinReconnectDelay = time.Second
	MaxReconnectDelay = 30 * time.Second
	// DefaultMaxReconnect is the default for Client.MaxReconnect: the
	// breaker's default cooldown.
	DefaultMaxReconnect = gateway.DefaultBreakerCooldown
)

// NewClient returns a Client of the central service at address that makes
// and owns its connection: set its exported fields, then Open it, and Close
// it when done. It dials nothing until Open; calls before Open fail as
// EUNAVAILABLE.
//
// The policy stream stays open for days: keepalive pings find a connection
// that died silently, so that the stream is reopened and a freeze reaches
// the store within a second of HQ publishing it. gRPC's default reconnect
// backoff grows to two minutes during a long outage: the gateway would stay
// offline that long after central is back, so it reconnects at least every
// MaxReconnect, which storegated sets to the breaker's cooldown.
func NewClient(address string) *Client {
	return &Client{MaxReconnect: DefaultMaxReconnect, address: address, rpc: storegatev1.NewCentralServiceClient(notOpen{})}
}

// Open makes the connection, lazily: it is dialled on the first call, so
// Open does not block and central being down is no error here. It fails for
// an address gRPC cannot parse, for a Client made by New, and when the
// Client is open already.
func (c *Client) Open() error {
	switch {
	case c.address == "":
		return errors.New("open central client: no address (a Client made by New is open already)")
	case c.conn != nil:
		return errors.New("open central client: it is open already")
	}
	creds := c.Creds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	maxReconnect := min(max(c.MaxReconnect, MinReconnectDelay), MaxReconnectDelay)
	conn, err := grpc.NewClient(c.address, grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxReconnect,
		}, MinConnectTimeout: 10 * time.Second}))
	if err != nil {
		return fmt.Errorf("dial central %q: %w", c.address, err)
	}
	c.conn, c.rpc = conn, storegatev1.NewCentralServiceClient(conn)
	return nil
}

// Close closes the connection Open made; calls in flight fail. It does not
// wait, so ctx is not used. A Client made by New leaves its connection to
// its owner and closes nothing.
func (c *Client) Close(ctx context.Context) error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

// notOpen is the connection of a Client before Open: every call fails as
// Unavailable, which the gateway takes as central being unreachable.
type notOpen struct{}

var errNotOpen = status.Error(codes.Unavailable, "central client is not open")

func (notOpen) Invoke(context.Context, string, any, any, ...grpc.CallOption) error {
	return errNotOpen
}

func (notOpen) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, errNotOpen
}
