package centralclient_test

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	"storegate/gateway/centralclient"
	storegatev1 "storegate/proto/storegate/v1"
)

// failingCentral answers every Authorize with its error.
type failingCentral struct {
	storegatev1.UnimplementedCentralServiceServer
	err error
}

func (c *failingCentral) Authorize(context.Context, *storegatev1.CentralServiceAuthorizeRequest) (*storegatev1.CentralServiceAuthorizeResponse, error) {
	return nil, c.err
}

func client(t *testing.T, err error) *centralclient.Client {
	t.Helper()
	return serve(t, &failingCentral{err: err})
}

// serve serves srv on a loopback port and returns a client of it.
func serve(t *testing.T, srv storegatev1.CentralServiceServer) *centralclient.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	storegatev1.RegisterCentralServiceServer(s, srv)
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return centralclient.New(conn)
}

// Central refusing a request as malformed reaches the gateway as EINVALID,
// on which it declines; any other failure means central gave no answer, on
// which it decides offline. Each failure carries the domain code wire's
// table gives its gRPC code.
func TestClient_AuthorizeErrors(t *testing.T) {
	req := &gateway.CentralRequest{StoreID: "s", Lane: "1", POSTxnID: "t", Credential: "SGP1:x", Amount: 1, Currency: "JPY"}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"InvalidArgument", status.Error(codes.InvalidArgument, "lines: bad"), gateway.EINVALID},
		{"Unavailable", status.Error(codes.Unavailable, "down"), gateway.EUNAVAILABLE},
		{"Internal", status.Error(codes.Internal, "internal error"), gateway.EINTERNAL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client(t, tt.err).Authorize(context.Background(), req)
			if got := gateway.ErrorCode(err); got != tt.want {
				t.Errorf("error code %q (%v), want %q", got, err, tt.want)
			}
			if tt.want == gateway.EINVALID && gateway.ErrorMessage(err) != "central refused the request: lines: bad" {
				t.Errorf("message %q, want central's reason behind \"central refused the request\"", gateway.ErrorMessage(err))
			}
		})
	}
}
