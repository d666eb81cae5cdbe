package grpcserver_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"storegate/gateway/grpcserver"
	"storegate/storecache"
)

// flakyStore is a store whose writes fail while broken is set: a full or
// read-only disk, as the health probe meets it.
type flakyStore struct {
	*storecache.Store
	broken atomic.Bool
}

func (f *flakyStore) Probe(ctx context.Context) error {
	if f.broken.Load() {
		return errors.New("write storegate.db: no space left on device")
	}
	return f.Store.Probe(ctx)
}

func healthOf(t *testing.T, client healthpb.HealthClient, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	res, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health check %q: %v", service, err)
	}
	return res.GetStatus()
}

func TestHealthChecker_StoreUnwritable(t *testing.T) {
	st := storecache.NewStore(filepath.Join(t.TempDir(), "storegate.db"))
	if err := st.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	store := &flakyStore{Store: st}
	hs := health.NewServer()
	client := healthpb.NewHealthClient(serve(t, func(s grpc.ServiceRegistrar) { healthpb.RegisterHealthServer(s, hs) }))
	var mu sync.Mutex
	var changes []bool
	const svc = "storegate.v1.PaymentService"
	h := grpcserver.NewHealthChecker(hs, store.Probe)
	h.Services, h.Interval = []string{svc}, time.Hour
	h.OnChange = func(ok bool) { mu.Lock(); changes = append(changes, ok); mu.Unlock() }

	want := func(name string, ok bool, status healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		if got := h.Check(context.Background()); got != ok {
			t.Fatalf("%s: Check = %v, want %v", name, got, ok)
		}
		for _, s := range []string{"", svc} {
			if got := healthOf(t, client, s); got != status {
				t.Fatalf("%s: health %q = %v, want %v", name, s, got, status)
			}
		}
		if h.Healthy() != ok {
			t.Fatalf("%s: Healthy = %v, want %v", name, !ok, ok)
		}
	}
	want("Writable", true, healthpb.HealthCheckResponse_SERVING)
	store.broken.Store(true)
	want("ErrUnwritable", false, healthpb.HealthCheckResponse_NOT_SERVING)
	want("ErrStillUnwritable", false, healthpb.HealthCheckResponse_NOT_SERVING)
	store.broken.Store(false)
	want("Recovered", true, healthpb.HealthCheckResponse_SERVING)
	st.Close(context.Background())
	want("ErrClosed", false, healthpb.HealthCheckResponse_NOT_SERVING)

	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 4 || !changes[0] || changes[1] || !changes[2] || changes[3] {
		t.Fatalf("OnChange calls = %v, want [true false true false]", changes)
	}
}

func TestHealthChecker_StuckProbe(t *testing.T) {
	release := make(chan struct{})
	var stuck atomic.Bool
	probe := func(ctx context.Context) error {
		if stuck.Load() {
			<-release
		}
		return nil
	}
	hs := health.NewServer()
	h := grpcserver.NewHealthChecker(hs, probe)
	h.Interval, h.Timeout = time.Hour, 50*time.Millisecond
	if !h.Check(context.Background()) {
		t.Fatal("first Check failed")
	}
	stuck.Store(true)
	if h.Check(context.Background()) || h.Healthy() {
		t.Fatal("a probe that never returned counted as healthy")
	}
	stuck.Store(false)
	if h.Check(context.Background()) {
		t.Fatal("a new probe ran beside one still stuck and counted as healthy")
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for !h.Check(context.Background()) {
		if time.Now().After(deadline) {
			t.Fatal("the checker did not recover once the stuck probe returned")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestHealthChecker_StaleIsUnhealthy(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := grpcserver.NewHealthChecker(health.NewServer(), func(context.Context) error { return nil })
	h.Interval, h.Timeout, h.Now = 5*time.Second, time.Second, clock
	h.Check(context.Background())
	if !h.Healthy() {
		t.Fatal("not healthy right after a good probe")
	}
	mu.Lock()
	now = now.Add(12 * time.Second)
	mu.Unlock()
	if h.Healthy() {
		t.Fatal("healthy 12s after the last probe with a 5s interval: a stopped checker would keep the watchdog fed")
	}
}
