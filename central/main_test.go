package central_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"storegate/central"
	"storegate/central/boltstore"
	"storegate/central/storetest"
	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newStorage makes a ledger file in t's temporary folder: central's own
// tests exercise its gRPC face, on the embedded backend. The rules
// themselves are the contract suite's (central/storetest), which every
// backend runs.
func newStorage(t testing.TB) func() central.Storage {
	path := filepath.Join(t.TempDir(), "central.db")
	return func() central.Storage { return boltstore.New(path) }
}

// fixture is HQ's domain over a real ledger (storetest.Fixture), with its
// gRPC face served over a loopback listener.
type fixture struct {
	*storetest.Fixture
	Service *central.Service
	Client  storegatev1.CentralServiceClient
	// Admin is HQ's administration client, served beside Client.
	Admin storegatev1.HQAdminServiceClient
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{Fixture: storetest.NewFixture(t, newStorage)}
	f.Service = central.NewService(f.Ledger, f.Publisher, func() *gateway.Keyring { return f.Keyring })
	f.Service.Now = func() time.Time { return f.Now }

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	storegatev1.RegisterCentralServiceServer(srv, f.Service)
	storegatev1.RegisterHQAdminServiceServer(srv, &central.AdminService{Publisher: f.Publisher, Ledger: f.Ledger})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(lis); err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		f.Publisher.Close(context.Background())
		srv.Stop()
		<-done
	})

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	f.Client = storegatev1.NewCentralServiceClient(conn)
	f.Admin = storegatev1.NewHQAdminServiceClient(conn)
	return f
}

const (
	accepted  = storegatev1.SettlementStatus_SETTLEMENT_STATUS_ACCEPTED
	duplicate = storegatev1.SettlementStatus_SETTLEMENT_STATUS_DUPLICATE
	refused   = storegatev1.SettlementStatus_SETTLEMENT_STATUS_REFUSED
)
