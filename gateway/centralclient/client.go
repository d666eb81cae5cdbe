package centralclient

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"storegate/gateway"
	"storegate/gateway/grpcserver"
	storegatev1 "storegate/proto/storegate/v1"
)

// Client implements gateway.Central over gRPC.
type Client struct {
	rpc storegatev1.CentralServiceClient
	// conn is the connection Dial made, which Close closes.
	conn *grpc.ClientConn
}

var _ gateway.Central = (*Client)(nil)

// New returns a client on an open connection.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{rpc: storegatev1.NewCentralServiceClient(conn)}
}

// RPC returns the raw gRPC client, for WatchPolicy.
func (c *Client) RPC() storegatev1.CentralServiceClient { return c.rpc }

// Authorize asks central to decide. Central refusing the request as
// malformed (InvalidArgument) is an EINVALID error, which the gateway
// declines on: central answered. Any other RPC failure is returned as an
// error, and the gateway decides without central.
func (c *Client) Authorize(ctx context.Context, req *gateway.CentralRequest) (*gateway.CentralResult, error) {
	res, err := c.rpc.Authorize(ctx, &storegatev1.CentralServiceAuthorizeRequest{
		StoreId:          req.StoreID,
		Lane:             req.Lane,
		PosTransactionId: req.POSTxnID,
		Token:            req.Credential,
		Amount:           req.Amount,
		Currency:         req.Currency,
		Lines:            grpcserver.LinesToProto(req.Lines),
	})
	if status.Code(err) == codes.InvalidArgument {
		return nil, &gateway.Error{Code: gateway.EINVALID, Message: "central refused the request: " + status.Convert(err).Message(), Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("central authorize: %w", err)
	}
	return &gateway.CentralResult{
		Approved:        res.GetApproved(),
		Reason:          grpcserver.ReasonFromProto(res.GetReason()),
		AuthorizationID: res.GetAuthorizationId(),
		Account:         res.GetAccount(),
		Message:         res.GetMessage(),
	}, nil
}

var kindOf = map[gateway.SettlementKind]storegatev1.SettlementKind{
	gateway.SettlementCapture:  storegatev1.SettlementKind_SETTLEMENT_KIND_CAPTURE,
	gateway.SettlementReversal: storegatev1.SettlementKind_SETTLEMENT_KIND_REVERSAL,
}

var modeOf = map[gateway.Mode]storegatev1.DecisionMode{
	gateway.ModeOnline:  storegatev1.DecisionMode_DECISION_MODE_ONLINE,
	gateway.ModeOffline: storegatev1.DecisionMode_DECISION_MODE_OFFLINE,
}

var statusOf = map[storegatev1.SettlementStatus]gateway.SettlementStatus{
	storegatev1.SettlementStatus_SETTLEMENT_STATUS_ACCEPTED:  gateway.SettlementAccepted,
	storegatev1.SettlementStatus_SETTLEMENT_STATUS_DUPLICATE: gateway.SettlementDuplicate,
	storegatev1.SettlementStatus_SETTLEMENT_STATUS_REFUSED:   gateway.SettlementRefused,
}

// SubmitSettlements sends a batch and returns central's acknowledgements. An
// ack with a status this client does not know is left out, so that the
// settlement stays queued rather than being dropped.
func (c *Client) SubmitSettlements(ctx context.Context, storeID string, batch []gateway.Settlement) ([]gateway.SettlementAck, error) {
	in := &storegatev1.SubmitSettlementsRequest{StoreId: storeID, Settlements: make([]*storegatev1.Settlement, len(batch))}
	for i, s := range batch {
		in.Settlements[i] = &storegatev1.Settlement{
			Id:               s.ID,
			StoreId:          s.StoreID,
			Seq:              s.Seq,
			Kind:             kindOf[s.Kind],
			Lane:             s.Lane,
			PosTransactionId: s.POSTxnID,
			AuthorizationId:  s.AuthorizationID,
			Account:          s.Account,
			TokenId:          s.TokenID,
			Amount:           s.Amount,
			Currency:         s.Currency,
			Mode:             modeOf[s.Mode],
			CreatedAt:        timestamppb.New(s.CreatedAt),
			ReversesId:       s.ReversesID,
		}
	}
	res, err := c.rpc.SubmitSettlements(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("central submit settlements: %w", err)
	}
	acks := make([]gateway.SettlementAck, 0, len(res.GetAcks()))
	for _, a := range res.GetAcks() {
		st, ok := statusOf[a.GetStatus()]
		if !ok {
			continue
		}
		acks = append(acks, gateway.SettlementAck{ID: a.GetSettlementId(), Status: st, Message: a.GetMessage()})
	}
	return acks, nil
}
