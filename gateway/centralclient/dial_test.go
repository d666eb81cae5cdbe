package centralclient_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	"storegate/gateway/centralclient"
	storegatev1 "storegate/proto/storegate/v1"
)

// approvingCentral approves every Authorize.
type approvingCentral struct {
	storegatev1.UnimplementedCentralServiceServer
}

func (approvingCentral) Authorize(context.Context, *storegatev1.CentralServiceAuthorizeRequest) (*storegatev1.CentralServiceAuthorizeResponse, error) {
	return &storegatev1.CentralServiceAuthorizeResponse{Approved: true, AuthorizationId: "auth-1", Account: "acct-0001"}, nil
}

// A Client from NewClient fails as unavailable before Open, reaches central
// over plaintext on loopback once open, and Close ends the connection Open
// made.
func TestNewClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	storegatev1.RegisterCentralServiceServer(s, approvingCentral{})
	go s.Serve(ln)
	t.Cleanup(s.Stop)

	c := centralclient.NewClient(ln.Addr().String())
	c.MaxReconnect = time.Second
	req := &gateway.CentralRequest{StoreID: "s", Lane: "1", POSTxnID: "t", Credential: "SGP1:x", Amount: 1, Currency: "JPY"}
	if _, err := c.Authorize(context.Background(), req); gateway.ErrorCode(err) != gateway.EUNAVAILABLE {
		t.Fatalf("Authorize before Open = %v, want EUNAVAILABLE", err)
	}
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err == nil {
		t.Error("second Open: nil error, want one")
	}
	res, err := c.Authorize(context.Background(), req)
	if err != nil || !res.Approved || res.AuthorizationID != "auth-1" {
		t.Fatalf("Authorize = %+v, %v; want central's approval auth-1", res, err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	_, err = c.Authorize(context.Background(), req)
	if status.Code(err) != codes.Canceled {
		t.Fatalf("Authorize after Close = %v, want Canceled: the connection is closed", err)
	}
}
