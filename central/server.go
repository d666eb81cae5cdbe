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
// with grpc.health.v1 and reflection, on one listener, and the operators'
// HQAdminService (Admin), with reflection, on another that must be reachable
// only by HQ's operators. Set the exported fields, then Open; Close drains
// and stops both.
type Server struct {
	// Service serves the stores.
	Service *Service
	// Admin serves HQ's operators.
	Admin *AdminService
	// Creds, when set, are the stores' listener's transport credentials
	// (TLS, mutual when it requires client certificates); nil serves
	// plaintext. The admin listener is plaintext.
	Creds credentials.TransportCredentials
	// Logger receives a line when a server stops on its own; nil discards.
	Logger *slog.Logger

	stores *grpc.Server
	admin  *grpc.Server
	health *health.Server
	wg     sync.WaitGroup
}

// Open serves Service on ln and Admin on adminLn in the background. It
// returns an error, and serves nothing, when Service or Admin is unset or
// the server was opened before. Close stops both and closes the listeners.
func (s *Server) Open(ln, adminLn net.Listener) error {
	switch {
	case s.Service == nil || s.Admin == nil:
		return errors.New("hq server: Service and Admin are required")
	case s.stores != nil:
		return errors.New("hq server: already opened")
	}
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
		_ = s.Service.Publisher.Close(ctx) // never fails
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
