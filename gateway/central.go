package gateway

import "context"

// CentralRequest asks the central service to decide a payment.
type CentralRequest struct {
	StoreID  string
	Lane     string
	POSTxnID string
	// Credential is the token text or numeric code.
	Credential string
	Amount     int64
	Currency   string
	Lines      []Line
}

// CentralResult is the central service's answer.
type CentralResult struct {
	Approved        bool
	Reason          Reason
	AuthorizationID string
	Account         string
	Message         string
}

// Central is the chain's central service as the gateway sees it.
type Central interface {
	// Authorize asks central to decide. An EINVALID *Error means central
	// answered that the request is malformed: the caller declines. Any
	// other error means central could not be asked or did not answer in
	// time: the caller decides without it (offline).
	Authorize(ctx context.Context, req *CentralRequest) (*CentralResult, error)
	// SubmitSettlements sends a batch of settlements and returns central's
	// acknowledgements. A settlement without an ack was not recorded and is
	// sent again; an error means none is known to be recorded.
	SubmitSettlements(ctx context.Context, storeID string, batch []Settlement) ([]SettlementAck, error)
}
