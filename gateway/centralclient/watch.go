package centralclient

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"

	"storegate/gateway"
	"storegate/gateway/wire"
	storegatev1 "storegate/proto/storegate/v1"
)

var _ gateway.PolicySource = (*Client)(nil)

// WatchPolicy opens CentralService.WatchPolicy from the versions the
// gateway holds, and returns once central has sent the stream's headers
// (HQ sends them when it takes the stream, before any document), so that a
// stream returned is one central took. The stream lives until ctx ends or
// central ends it.
func (c *Client) WatchPolicy(ctx context.Context, storeID string, have gateway.DocumentVersions) (gateway.PolicyStream, error) {
	stream, err := c.rpc.WatchPolicy(ctx, wire.WatchPolicyToProto(storeID, have))
	if err != nil {
		return nil, fmt.Errorf("central watch policy: %w", wire.Error(err))
	}
	md, err := stream.Header()
	if err == nil && md == nil {
		// Ended without headers: the status says why.
		_, err = stream.Recv()
		if err == nil {
			err = errors.New("stream ended without headers")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("central watch policy: %w", wire.Error(err))
	}
	return &policyStream{rpc: stream}, nil
}

// policyStream turns the wire messages into documents.
type policyStream struct {
	rpc grpc.ServerStreamingClient[storegatev1.WatchPolicyResponse]
}

// Recv returns the next document; io.EOF when central ended the stream.
// A kind this build does not know is passed on under its wire name, for
// the gateway to refuse and log.
func (s *policyStream) Recv() (*gateway.PublishedDocument, error) {
	m, err := s.rpc.Recv()
	if err != nil {
		return nil, wire.Error(err)
	}
	return wire.PublishedDocumentFromProto(m), nil
}
