package centralclient

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

// Client implements gateway.Central and gateway.PolicySource over gRPC.
// NewClient makes one that owns its connection (Open, then Close); New makes
// one over a connection its caller owns, ready at once.
type Client struct {
	// Creds are the transport credentials Open dials with (TLS); nil means
	// plaintext.
	Creds credentials.TransportCredentials
	// MaxReconnect bounds the wait between two reconnection attempts, within
	// [MinReconnectDelay, MaxReconnectDelay]; NewClient sets
	// DefaultMaxReconnect.
	MaxReconnect time.Duration

	address string
	rpc     storegatev1.CentralServiceClient
	// conn is the connection Open made, which Close closes.
	conn *grpc.ClientConn
}

var _ gateway.Central = (*Client)(nil)

// New returns a client over conn, a connection its caller owns and closes:
// it needs no Open, and its Close closes nothing.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{rpc: storegatev1.NewCentralServiceClient(conn)}
}

// RPC returns the raw gRPC client, for WatchPolicy.
func (c *Client) RPC() storegatev1.CentralServiceClient { return c.rpc }

// Authorize asks central to decide. Central refusing the request as
// malformed (InvalidArgument) is an EINVALID error, which the gateway
// declines on: central answered. Any other RPC failure is returned as an
// error with the code wire gives it, and the gateway decides without
// central.
func (c *Client) Authorize(ctx context.Context, req *gateway.CentralRequest) (*gateway.CentralResult, error) {
	res, err := c.rpc.Authorize(ctx, wire.CentralRequestToProto(req))
	if err != nil {
		err = wire.Error(err)
		if gateway.ErrorCode(err) == gateway.EINVALID {
			return nil, &gateway.Error{Code: gateway.EINVALID, Message: "central refused the request: " + gateway.ErrorMessage(err), Err: err}
		}
		return nil, fmt.Errorf("central authorize: %w", err)
	}
	return wire.CentralResultFromProto(res), nil
}

// SubmitSettlements sends a batch and returns central's acknowledgements. An
// ack with a status this client does not know is left out, so that the
// settlement stays queued rather than being dropped.
func (c *Client) SubmitSettlements(ctx context.Context, storeID string, batch []gateway.Settlement) ([]gateway.SettlementAck, error) {
	res, err := c.rpc.SubmitSettlements(ctx, wire.SubmitSettlementsToProto(storeID, batch))
	if err != nil {
		return nil, fmt.Errorf("central submit settlements: %w", wire.Error(err))
	}
	return wire.AcksFromProto(res), nil
}
