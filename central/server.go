package central

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	storegatev1 "storegate/proto/storegate/v1"
)

// Keepalive: stores keep a WatchPolicy stream open and ping to find out
// when it has silently died; HQ accepts their pings and drops streams
// whose store has gone.
var (
	KeepaliveEnforcement = keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}
	KeepaliveServer      = keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}
)

// Server owns HQ's two gRPC servers: the stores' CentralService (Service),
// with grpc.health.v1 and reflection, on Listener, and the operators'
// HQAdminService (Admin), with reflection, on AdminListener, which must be
// reachable only by HQ's operators. Create it with NewServer, set its
// exported fields, then Open; Close drains and stops both.
type Server struct {
	// Service serves the stores.
	Service *Service
	// Admin serves HQ's operators.
	Admin *AdminService
	// Listener is where the stores connect; Open requires it.
	Listener net.Listener
	// AdminListener is where HQ's operators connect; Open requires it.
	AdminListener net.Listener
	// Creds, when set, are the stores' listener's transport credentials
	// (TLS, mutual when it requires client certificates); nil serves
	// plaintext. The admin listener is plaintext.
	Creds credentials.TransportCredentials
	// Logger receives a line when a server stops on its own; NewServer
	// sets one that discards them.
	Logger *slog.Logger

	stores *grpc.Server
	admin  *grpc.Server
	health *health.Server
	wg     sync.WaitGroup
}

// NewServer returns a server of svc to the stores and admin to HQ's
// operators. It listens on nothing until Open.
func NewServer(svc *Service, admin *AdminService) *Server {
	return &Server{Service: svc, Admin: admin, Logger: discard}
}

// Open serves Service on Listener and Admin on AdminListener in the
// background. It returns an error, and serves nothing, when Service, Admin
// or a listener is unset or the server was opened before. Close stops both
// and closes the listeners.
func (s *Server) Open() error {
	switch {
	case s.Service == nil || s.Admin == nil:
		return errors.New("hq server: Service and Admin are required")
	case s.Listener == nil || s.AdminListener == nil:
		return errors.New("hq server: Listener and AdminListener are required")
	case s.stores != nil:
		return errors.New("hq server: already opened")
	}
	ln, adminLn := s.Listener, s.AdminListener
	logger := s.Logger
	if logger == nil {
		logger = discard
	}
	opts := []grpc.ServerOption{grpc.KeepaliveEnforcementPolicy(KeepaliveEnforcement), grpc.KeepaliveParams(KeepaliveServer)}
	if s.Creds != nil {
		opts = append(opts, grpc.Creds(s.Creds))
	}
	s.stores = grpc.NewServer(opts...)
	storegatev1.RegisterCentralServiceServer(s.stores, s.Service)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.stores, s.health)
	reflection.Register(s.stores)

	s.admin = grpc.NewServer()
	storegatev1.RegisterHQAdminServiceServer(s.admin, s.Admin)
	reflection.Register(s.admin)

	for _, srv := range []struct {
		name string
		grpc *grpc.Server
		ln   net.Listener
	}{{"admin grpc server", s.admin, adminLn}, {"grpc server", s.stores, ln}} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.grpc.Serve(srv.ln); err != nil {
				logger.Error(srv.name+" stopped", "err", err)
			}
		}()
	}
	return nil
}

// Close stops serving: health goes NOT_SERVING, the stores' WatchPolicy
// streams end (the Service's Publisher is closed), and calls in flight on
// both servers finish until ctx ends, when their connections are closed and
// Close returns an error saying so. Close before Open does nothing.
func (s *Server) Close(ctx context.Context) error {
	if s.stores == nil {
		return nil
	}
	s.health.Shutdown()
	if s.Service.Publisher != nil {
		_ = s.Service.Publisher.Close(ctx) // it waits for nothing
	}
	var err error
	for _, srv := range []*grpc.Server{s.admin, s.stores} {
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			srv.Stop()
			<-done
			err = fmt.Errorf("hq server: calls in flight did not finish in time; their connections were closed: %w", ctx.Err())
		}
	}
	s.wg.Wait()
	return err
}
