package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"storegate/certs"
)

// defaultAddr is storegated's default listen address.
const defaultAddr = "127.0.0.1:7443"

// defaultAdminSocket is storegated's admin socket under its systemd unit
// (RuntimeDirectory=storegate, admin.socket in /etc/storegate/storegated.yaml).
const defaultAdminSocket = "/run/storegate/admin.sock"

// target is a gateway to call: its address and, for a gateway that serves
// TLS, the CA to trust and the client certificate to present.
type target struct {
	addr       string
	caFile     string
	certFile   string
	keyFile    string
	serverName string
}

// envOr returns the environment variable name, or def where it is unset.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// addrFlag adds --addr and the TLS flags of PaymentService's callers, each
// defaulting to its STOREGATE_* environment variable, so that a store
// engineer sets them once per shell.
func addrFlag(fs *flag.FlagSet) *target {
	env := envOr
	t := &target{}
	fs.StringVar(&t.addr, "addr", env("STOREGATE_ADDR", defaultAddr), "storegated gRPC address (or set STOREGATE_ADDR)")
	fs.StringVar(&t.caFile, "tls-ca", env("STOREGATE_TLS_CA", ""), "CA the gateway's certificate must chain to; turns TLS on (or set STOREGATE_TLS_CA)")
	fs.StringVar(&t.certFile, "tls-cert", env("STOREGATE_TLS_CERT", ""), "POS or supervisor certificate for a gateway with mutual TLS (or set STOREGATE_TLS_CERT)")
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

// callError turns a failed call to the gateway at t into a message for a
// person. When the call could not get through and TLS is on, it asks the
// gateway once more, with a TLS handshake alone (certs.ProbeTLS), what is
// wrong: over TLS 1.3 the gateway refuses a client's certificate only after
// the client's side of the handshake is done, so gRPC reports a refused
// certificate as whatever its next write met ("broken pipe") rather than
// the gateway's alert. The message then names the certificate problem and
// the flag that fixes it.
func (t *target) callError(ctx context.Context, err error) error {
	if status.Code(err) != codes.Unavailable {
		return rpcError(err)
	}
	if t.caFile == "" {
		if strings.Contains(err.Error(), "server preface") {
			return fmt.Errorf("%w (if the gateway serves TLS, give --tls-ca or set STOREGATE_TLS_CA)", rpcError(err))
		}
		return rpcError(err)
	}
	cfg, cerr := certs.ClientConfig(t.caFile, t.certFile, t.keyFile, t.serverName)
	if cerr != nil {
		return rpcError(err)
	}
	var he *certs.HandshakeError
	if !errors.As(certs.ProbeTLS(context.WithoutCancel(ctx), t.addr, cfg), &he) {
		return rpcError(err)
	}
	msg := "TLS handshake with the gateway refused: " + he.Sentence("gateway")
	if hint := tlsHint(he); hint != "" {
		msg += "; " + hint
	}
	return fmt.Errorf("%s (gRPC: %v)", msg, rpcError(err))
}

// tlsHint says which flag fixes a certificate problem.
func tlsHint(he *certs.HandshakeError) string {
	switch {
	case !he.Peer && he.Problem == certs.ProblemNoCertificate:
		return "give a POS or supervisor certificate of this store: --tls-cert and --tls-key (or STOREGATE_TLS_CERT and STOREGATE_TLS_KEY)"
	case !he.Peer && he.Problem == certs.ProblemUnknownAuthority:
		return "--tls-cert must come from the CA in the gateway's tls.client_ca_file (" + certs.CAPOS.CertFile() + " of a development set)"
	case !he.Peer && he.Problem == certs.ProblemExpired:
		return "renew --tls-cert (storegatectl certs shows when each certificate expires)"
	case !he.Peer:
		return "--tls-cert must be a client certificate from the gateway's POS CA"
	case he.Problem == certs.ProblemUnknownAuthority:
		return "--tls-ca (STOREGATE_TLS_CA) must hold the CA that signed the gateway's certificate (" + certs.CAServer.CertFile() + " of a development set)"
	case he.Problem == certs.ProblemWrongName:
		return "dial a name the certificate is for, or name one with --tls-server-name"
	case he.Problem == certs.ProblemExpired:
		return "the gateway's tls.cert_file needs renewing"
	}
	return ""
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

// adminSocketFlag adds --admin-socket: storegated's admin socket, where
// AdminService answers the operators of the gateway's host.
func adminSocketFlag(fs *flag.FlagSet) *string {
	return fs.String("admin-socket", envOr("STOREGATE_ADMIN_SOCKET", defaultAdminSocket),
		"storegated's admin socket (admin.socket; or set STOREGATE_ADMIN_SOCKET)")
}

// dialAdmin connects to storegated's admin socket. What stands in the way
// is said in words: no socket there, or no permission to use it.
func dialAdmin(path string) (*grpc.ClientConn, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("no admin socket at %s: is storegated running, and is that its admin.socket (--admin-socket, STOREGATE_ADMIN_SOCKET)?", abs)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("admin socket %s: permission denied: run as root or as a member of the socket's group", abs)
	case err != nil:
		return nil, err
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("%s is not a socket", abs)
	}
	conn, err := grpc.NewClient("unix://"+abs, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", abs, err)
	}
	return conn, nil
}

// connectAdmin is connect for the admin socket.
func connectAdmin(ctx context.Context, path string, timeout time.Duration) (*grpc.ClientConn, context.Context, func(), error) {
	conn, err := dialAdmin(path)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return conn, ctx, func() { cancel(); conn.Close() }, nil
}
