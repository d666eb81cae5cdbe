package main

import (
	"flag"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// defaultAddr is storegated's default listen address.
const defaultAddr = "127.0.0.1:7443"

// addrFlag adds --addr, defaulting to $STOREGATE_ADDR or the daemon's default.
func addrFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("STOREGATE_ADDR")
	if def == "" {
		def = defaultAddr
	}
	return fs.String("addr", def, "storegated gRPC address (or set STOREGATE_ADDR)")
}

// dial connects to a gateway. The connection is lazy: errors surface on the
// first call.
func dial(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}
