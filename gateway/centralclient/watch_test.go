package centralclient_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	"storegate/gateway/centralclient"
	storegatev1 "storegate/proto/storegate/v1"
)

// watchCentral serves WatchPolicy with watch.
type watchCentral struct {
	storegatev1.UnimplementedCentralServiceServer
	watch func(storegatev1.CentralService_WatchPolicyServer) error
}

func (c *watchCentral) WatchPolicy(_ *storegatev1.WatchPolicyRequest, stream storegatev1.CentralService_WatchPolicyServer) error {
	return c.watch(stream)
}

func watchClient(t *testing.T, watch func(storegatev1.CentralService_WatchPolicyServer) error) *centralclient.Client {
	t.Helper()
	return serve(t, &watchCentral{watch: watch})
}

// WatchPolicy returns a stream only once HQ has taken it (sent its
// headers), so that the gateway may count it as contact; a stream HQ
// refuses is an error from WatchPolicy itself, not from the first Recv.
func TestClient_WatchPolicy(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t.Run("TakenWithNothingToSend", func(t *testing.T) {
		c := watchClient(t, func(stream storegatev1.CentralService_WatchPolicyServer) error {
			if err := stream.SendHeader(nil); err != nil {
				return err
			}
			<-stream.Context().Done()
			return nil
		})
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		if _, err := c.WatchPolicy(sctx, "store-0001", gateway.DocumentVersions{}); err != nil {
			t.Fatalf("WatchPolicy: %v, want a stream", err)
		}
	})
	t.Run("ErrRefused", func(t *testing.T) {
		c := watchClient(t, func(storegatev1.CentralService_WatchPolicyServer) error {
			return status.Error(codes.PermissionDenied, "store store-0001 is not registered")
		})
		_, err := c.WatchPolicy(ctx, "store-0001", gateway.DocumentVersions{})
		if err == nil || gateway.ErrorCode(err) != gateway.EPERMISSION {
			t.Fatalf("WatchPolicy: %v (code %s), want HQ's refusal as EPERMISSION", err, gateway.ErrorCode(err))
		}
	})
}
