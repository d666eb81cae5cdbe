package grpcserver_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	"storegate/gateway/grpcserver"
	storegatev1 "storegate/proto/storegate/v1"
	"storegate/storecache"
)

// Malformed requests over the wire: each is InvalidArgument naming its field,
// stores nothing, never reaches central, and leaves the token usable.

// countingCentral approves every payment, giving the same authorization to
// the same sale asked again (as the real central does), and counts calls.
type countingCentral struct {
	mu    sync.Mutex
	calls int
	auths map[string]string
}

func (c *countingCentral) Authorize(_ context.Context, req *gateway.CentralRequest) (*gateway.CentralResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	sale := req.Lane + "/" + req.POSTxnID
	if c.auths == nil {
		c.auths = map[string]string{}
	}
	if _, ok := c.auths[sale]; !ok {
		c.auths[sale] = fmt.Sprintf("auth-%d", len(c.auths)+1)
	}
	return &gateway.CentralResult{Approved: true, AuthorizationID: c.auths[sale], Account: "acct-0001"}, nil
}

func (c *countingCentral) SubmitSettlements(context.Context, string, []gateway.Settlement) ([]gateway.SettlementAck, error) {
	return nil, fmt.Errorf("not in these tests")
}

func (c *countingCentral) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

// abuseStack is a gateway on a bbolt store behind its gRPC face, on a real
// loopback listener, with a central that approves everything.
type abuseStack struct {
	payments storegatev1.PaymentServiceClient
	admin    storegatev1.AdminServiceClient
	store    *storecache.Store
	central  *countingCentral
	token    ed25519.PrivateKey
}

// openGateway opens a gateway of store-0001 on a fresh store, holding a
// keyset with s.token's key, over a central that approves everything;
// scans, when not nil, resolves its scan ids.
func openGateway(t *testing.T, scans gateway.ScanSource) (*gateway.Gateway, *abuseStack) {
	t.Helper()
	rootPub, rootPriv, _ := gateway.GenerateKey()
	tokPub, tokPriv, _ := gateway.GenerateKey()
	st := mustOpenStore(t, t.TempDir())
	s := &abuseStack{store: st, central: &countingCentral{}, token: tokPriv}
	gw := gateway.NewGateway("store-0001", st, s.central, rootPub)
	gw.Scans = scans
	if err := gw.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ks, err := gateway.SignKeyset(rootPriv, gateway.NewKeyset(1, time.Now(), tokPub))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := gw.ApplyKeyset(context.Background(), ks); err != nil {
		t.Fatal(err)
	}
	return gw, s
}

func newAbuseStack(t *testing.T, opts ...grpc.ServerOption) *abuseStack {
	t.Helper()
	gw, s := openGateway(t, nil)
	srv := grpcserver.NewServer(gw, s.store)
	if len(opts) == 0 {
		// Room for the huge fields these tests send: the handlers, not
		// the transport's limit, must refuse them.
		opts = []grpc.ServerOption{grpc.MaxRecvMsgSize(4 << 20)}
	}
	conn := servePayments(t, srv, opts...)
	s.admin = storegatev1.NewAdminServiceClient(serveAdmin(t, srv, opts...))
	s.payments = storegatev1.NewPaymentServiceClient(conn)
	return s
}

func (s *abuseStack) mint(t *testing.T) string {
	t.Helper()
	tok, _ := s.mintID(t)
	return tok
}

// mintID mints a token good for a minute and returns its id too.
func (s *abuseStack) mintID(t *testing.T) (string, []byte) {
	t.Helper()
	id, _ := gateway.NewTokenID()
	now := time.Now()
	tok, err := gateway.MintToken(s.token, gateway.Claims{Issuer: "hq", Account: "acct-0001", IssuedAt: now, Expires: now.Add(time.Minute), TokenID: id, Device: "d", Assurance: 2})
	if err != nil {
		t.Fatal(err)
	}
	return tok, id
}

// stored returns the audit records and the outbox depth, as GetStatus shows
// them.
func (s *abuseStack) stored(t *testing.T) (uint64, int64) {
	t.Helper()
	st, err := s.payments.GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st.GetAuditRecords(), st.GetOutboxDepth()
}

// lines returns n lines of one item at price each.
func lines(n int, price int64) []*storegatev1.BasketLine {
	out := make([]*storegatev1.BasketLine, n)
	for i := range out {
		out[i] = &storegatev1.BasketLine{Sku: fmt.Sprintf("49%011d", i), Category: "food", Quantity: 1, UnitPrice: price}
	}
	return out
}

func TestServer_RequestAbuse(t *testing.T) {
	s := newAbuseStack(t)
	tok := s.mint(t)
	huge := strings.Repeat("A", 1<<20)

	for _, c := range []struct {
		name   string
		mutate func(r *storegatev1.AuthorizeRequest)
		field  string
	}{
		{"ThousandsOfLines", func(r *storegatev1.AuthorizeRequest) { r.Lines, r.Total = lines(5000, 1), 5000 }, "lines"},
		{"OneLineOverLimit", func(r *storegatev1.AuthorizeRequest) {
			r.Lines, r.Total = lines(gateway.MaxLines+1, 1), gateway.MaxLines+1
		}, "lines"},
		{"NoLines", func(r *storegatev1.AuthorizeRequest) { r.Lines, r.Total = nil, 0 }, "lines"},
		{"ZeroQuantity", func(r *storegatev1.AuthorizeRequest) { r.Lines[0].Quantity, r.Total = 0, 0 }, "lines[0].quantity"},
		{"NegativeQuantity", func(r *storegatev1.AuthorizeRequest) { r.Lines[0].Quantity, r.Total = -1, -580 }, "lines[0].quantity"},
		{"QuantityOverLimit", func(r *storegatev1.AuthorizeRequest) {
			r.Lines[0].Quantity, r.Total = gateway.MaxQuantity+1, (gateway.MaxQuantity+1)*580
		}, "lines[0].quantity"},
		{"NegativePrice", func(r *storegatev1.AuthorizeRequest) { r.Lines[0].UnitPrice, r.Total = -580, -580 }, "lines[0].unit_price"},
		{"PriceOverLimit", func(r *storegatev1.AuthorizeRequest) {
			r.Lines[0].UnitPrice, r.Total = gateway.MaxUnitPrice+1, gateway.MaxUnitPrice+1
		}, "lines[0].unit_price"},
		{"ZeroPricesZeroTotal", func(r *storegatev1.AuthorizeRequest) { r.Lines[0].UnitPrice, r.Total = 0, 0 }, "total"},
		// 2 × 2^62 wraps to −2^63 in int64: a total that matches the
		// wrapped sum must not get through.
		{"LineAmountWrapsInt64", func(r *storegatev1.AuthorizeRequest) {
			r.Lines[0].Quantity, r.Lines[0].UnitPrice, r.Total = 2, 1<<62, math.MinInt64
		}, "lines[0].unit_price"},
		{"LinesSumWrapsInt64", func(r *storegatev1.AuthorizeRequest) {
			r.Lines = []*storegatev1.BasketLine{{Sku: "a", Quantity: 1, UnitPrice: math.MaxInt64}, {Sku: "b", Quantity: 1, UnitPrice: 2}}
			r.Total = math.MinInt64 + 1
		}, "lines[0].unit_price"},
		{"TotalMaxInt64", func(r *storegatev1.AuthorizeRequest) { r.Total = math.MaxInt64 }, "total"},
		{"TotalOneOver", func(r *storegatev1.AuthorizeRequest) { r.Total++ }, "total"},
		{"TotalOneUnder", func(r *storegatev1.AuthorizeRequest) { r.Total-- }, "total"},
		{"NegativeTotal", func(r *storegatev1.AuthorizeRequest) { r.Total = -580 }, "total"},
		{"UnknownCurrency", func(r *storegatev1.AuthorizeRequest) { r.Currency = "USD" }, "currency"},
		{"LowercaseCurrency", func(r *storegatev1.AuthorizeRequest) { r.Currency = "jpy" }, "currency"},
		{"NoCurrency", func(r *storegatev1.AuthorizeRequest) { r.Currency = "" }, "currency"},
		{"EmptyLane", func(r *storegatev1.AuthorizeRequest) { r.Lane = "" }, "lane"},
		{"LaneWithSpace", func(r *storegatev1.AuthorizeRequest) { r.Lane = "lane 1" }, "lane"},
		{"LaneWithNUL", func(r *storegatev1.AuthorizeRequest) { r.Lane = "1\x00" }, "lane"},
		{"EmptyTransaction", func(r *storegatev1.AuthorizeRequest) { r.PosTransactionId = "" }, "pos_transaction_id"},
		{"TransactionOverLimit", func(r *storegatev1.AuthorizeRequest) { r.PosTransactionId = strings.Repeat("9", 65) }, "pos_transaction_id"},
		{"HugeLane", func(r *storegatev1.AuthorizeRequest) { r.Lane = huge }, "lane"},
		{"HugeTransaction", func(r *storegatev1.AuthorizeRequest) { r.PosTransactionId = huge }, "pos_transaction_id"},
		{"HugeSKU", func(r *storegatev1.AuthorizeRequest) { r.Lines[0].Sku = huge }, "lines[0].sku"},
		{"EmptySKU", func(r *storegatev1.AuthorizeRequest) { r.Lines[0].Sku = "" }, "lines[0].sku"},
		{"HugeCategory", func(r *storegatev1.AuthorizeRequest) { r.Lines[0].Category = huge }, "lines[0].category"},
		{"HugeCurrency", func(r *storegatev1.AuthorizeRequest) { r.Currency = huge }, "currency"},
		{"TokenOneOverLimit", func(r *storegatev1.AuthorizeRequest) {
			r.Credential = &storegatev1.AuthorizeRequest_Token{Token: tok + strings.Repeat("0", gateway.MaxTokenText+1-len(tok))}
		}, "token"},
		{"HugeToken", func(r *storegatev1.AuthorizeRequest) {
			r.Credential = &storegatev1.AuthorizeRequest_Token{Token: huge}
		}, "token"},
		{"HugeScanID", func(r *storegatev1.AuthorizeRequest) {
			r.Credential = &storegatev1.AuthorizeRequest_ScanId{ScanId: huge}
		}, "scan_id"},
		{"NoCredential", func(r *storegatev1.AuthorizeRequest) { r.Credential = nil }, "credential"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := request("1", "abuse-"+c.name, tok)
			c.mutate(req)
			_, err := s.payments.Authorize(context.Background(), req)
			msg := status.Convert(err).Message()
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(msg, c.field) {
				t.Fatalf("err = %.300v, want InvalidArgument naming %s", err, c.field)
			}
			wantShort(t, msg)
		})
	}
	t.Run("ReverseHugeReason", func(t *testing.T) {
		_, err := s.payments.Reverse(context.Background(), &storegatev1.ReverseRequest{Lane: "1", PosTransactionId: "t1", Reason: huge})
		if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "reason") {
			t.Fatalf("err = %v, want InvalidArgument naming the reason", err)
		}
	})
	t.Run("ApplyKeysetGarbage", func(t *testing.T) {
		// The content type is read before the signature is checked, so
		// anyone can make it as long as the document.
		_, stranger, _ := gateway.GenerateKey()
		longType, err := gateway.SignDocument(stranger, "application/"+strings.Repeat("x", 512<<10), []byte{1})
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range [][]byte{nil, []byte(huge), make([]byte, gateway.MaxDocumentSize+1), longType} {
			_, err := s.admin.ApplyKeyset(context.Background(), &storegatev1.ApplyKeysetRequest{Document: &storegatev1.SignedDocument{CoseSign1: doc}})
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("ApplyKeyset(%d bytes): %.300v, want InvalidArgument", len(doc), err)
			}
			wantShort(t, status.Convert(err).Message())
		}
	})

	if n, depth := s.stored(t); n != 0 || depth != 0 {
		t.Fatalf("after malformed requests: %d audit records, outbox depth %d; want nothing stored", n, depth)
	}
	if n := s.central.count(); n != 0 {
		t.Fatalf("central asked %d times about malformed requests, want 0", n)
	}
	res, err := s.payments.Authorize(context.Background(), request("1", "good", tok))
	if err != nil || res.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
		t.Fatalf("the token after malformed requests: %v, %v; want approved", res, err)
	}
	if n, depth := s.stored(t); n != 1 || depth != 1 {
		t.Fatalf("after one approval: %d audit records, outbox depth %d; want 1 and 1", n, depth)
	}
}

// wantShort fails the test when an error message is long enough to carry a
// hostile request back to its sender, and into the logs.
func wantShort(t *testing.T, msg string) {
	t.Helper()
	if len(msg) > 256 {
		t.Fatalf("error message of %d bytes echoes the request: %.120q…", len(msg), msg)
	}
}

// A message over the server's receive limit never reaches the gateway: gRPC
// refuses it with ResourceExhausted, the code grpc-go gives an oversized
// message. storegated sets its own limit (grpc.MaxRecvMsgSize); under the
// limit, the domain's own limits answer InvalidArgument.
func TestServer_OversizedMessage(t *testing.T) {
	const limit = 256 << 10
	s := newAbuseStack(t, grpc.MaxRecvMsgSize(limit))
	tok := s.mint(t)
	over := request("1", "big", tok)
	over.Lines[0].Sku = strings.Repeat("4", limit)
	if _, err := s.payments.Authorize(context.Background(), over); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a %d-byte SKU against a %d-byte limit: %v, want ResourceExhausted", len(over.Lines[0].Sku), limit, err)
	}
	under := request("1", "big", tok)
	under.Lines[0].Sku = strings.Repeat("4", limit/2)
	if _, err := s.payments.Authorize(context.Background(), under); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a %d-byte SKU under the limit: %v, want InvalidArgument", len(under.Lines[0].Sku), err)
	}
	if n, depth := s.stored(t); n != 0 || depth != 0 || s.central.count() != 0 {
		t.Fatalf("after oversized requests: %d audit records, outbox depth %d, %d central calls; want none", n, depth, s.central.count())
	}
	res, err := s.payments.Authorize(context.Background(), request("1", "good", tok))
	if err != nil || res.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
		t.Fatalf("the token after oversized requests: %v, %v; want approved", res, err)
	}
}
