package central_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"storegate/central"
	storegatev1 "storegate/proto/storegate/v1"
)

func loopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func dialHQ(t *testing.T, ln net.Listener) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Open serves the stores' service with health on one loopback port and the
// operators' on another, never the operators' to the stores; Close ends the
// stores' policy streams and stops both.
func TestServer_OpenClose(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ln, adminLn := loopback(t), loopback(t)
	srv := central.NewServer(f.Service, central.NewAdminService(f.Publisher, nil))
	srv.Listener, srv.AdminListener = ln, adminLn
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close(context.Background()) })
	stores, admin := dialHQ(t, ln), dialHQ(t, adminLn)

	if h, err := healthpb.NewHealthClient(stores).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", h, err)
	}
	if _, err := storegatev1.NewHQAdminServiceClient(admin).ListDocuments(ctx, &storegatev1.ListDocumentsRequest{}); err != nil {
		t.Fatalf("ListDocuments on the admin port: %v", err)
	}
	t.Run("ErrAdminOnStorePort", func(t *testing.T) {
		_, err := storegatev1.NewHQAdminServiceClient(stores).ListDocuments(ctx, &storegatev1.ListDocumentsRequest{})
		if status.Code(err) != codes.Unimplemented {
			t.Fatalf("ListDocuments on the stores' port: %v, want Unimplemented", err)
		}
	})
	t.Run("ErrOpenTwice", func(t *testing.T) {
		if err := srv.Open(); err == nil {
			t.Fatal("second Open: nil error, want one")
		}
	})

	watch, err := storegatev1.NewCentralServiceClient(stores).WatchPolicy(ctx, &storegatev1.WatchPolicyRequest{StoreId: "store-1"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.Publisher.Watchers() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the policy watch never reached the publisher")
		}
		time.Sleep(5 * time.Millisecond)
	}
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := srv.Close(closeCtx); err != nil {
		t.Fatalf("Close = %v, want nil: the open policy stream must not hold it", err)
	}
	if _, err := watch.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("policy stream after Close: %v, want Unavailable", err)
	}
	if _, err := storegatev1.NewHQAdminServiceClient(admin).ListDocuments(ctx, &storegatev1.ListDocumentsRequest{}); status.Code(err) != codes.Unavailable {
		t.Fatalf("admin call after Close: %v, want Unavailable", err)
	}
}
