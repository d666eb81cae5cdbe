package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"storegate/certs"
)

// defaultAddr is storegated's default listen address.
const defaultAddr = "127.0.0.1:7443"

// target is a gateway to call: its address and, for a gateway that serves
// TLS, the CA to trust and the client certificate to present.
type target struct {
	addr       string
	caFile     string
	certFile   string
	keyFile    string
	serverName string
}

// addrFlag adds --addr and the TLS flags, each defaulting to its
// STOREGATE_* environment variable, so that a store engineer sets them once
// per shell.
func addrFlag(fs *flag.FlagSet) *target {
	env := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	t := &target{}
	fs.StringVar(&t.addr, "addr", env("STOREGATE_ADDR", defaultAddr), "storegated gRPC address (or set STOREGATE_ADDR)")
	fs.StringVar(&t.caFile, "tls-ca", env("STOREGATE_TLS_CA", ""), "CA the gateway's certificate must chain to; turns TLS on (or set STOREGATE_TLS_CA)")
	fs.StringVar(&t.certFile, "tls-cert", env("STOREGATE_TLS_CERT", ""), "client certificate for a gateway with mutual TLS (or set STOREGATE_TLS_CERT)")
	fs.StringVar(&t.keyFile, "tls-key", env("STOREGATE_TLS_KEY", ""), "client key for --tls-cert (or set STOREGATE_TLS_KEY)")
	fs.StringVar(&t.serverName, "tls-server-name", env("STOREGATE_TLS_SERVER_NAME", ""), "name the gateway's certificate must carry, if not the --addr host")
	return t
}

// dial connects to a gateway. The connection is lazy: errors surface on the
// first call.
func dial(t *target) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if t.caFile != "" {
		cfg, err := certs.ClientConfig(t.caFile, t.certFile, t.keyFile, t.serverName)
		if err != nil {
			return nil, usagef("tls: %v", err)
		}
		creds = credentials.NewTLS(cfg)
	} else if t.certFile != "" || t.keyFile != "" {
		return nil, usagef("--tls-cert and --tls-key need --tls-ca")
	}
	conn, err := grpc.NewClient(t.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", t.addr, err)
	}
	return conn, nil
}

// callTimeout bounds a command's calls to a gateway when it takes no
// --timeout of its own.
const callTimeout = 10 * time.Second

// connect dials addr and bounds the calls made under the returned context by
// timeout; done cancels that context and closes the connection.
func connect(ctx context.Context, addr *target, timeout time.Duration) (*grpc.ClientConn, context.Context, func(), error) {
	conn, err := dial(addr)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return conn, ctx, func() { cancel(); conn.Close() }, nil
}
