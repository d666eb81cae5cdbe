package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc/credentials"
)

// DefaultAdminSocketMode is the admin socket's file mode: its owner (the
// daemon's user) and group (the operators) may connect, nobody else.
const DefaultAdminSocketMode = 0o660

// MaxSocketPath is the longest path a unix socket may have (sun_path less
// its terminating NUL).
const MaxSocketPath = 107

// PeerCred is who is at the other end of a unix socket, as the kernel says
// (SO_PEERCRED): the AuthInfo of a connection to the admin socket.
type PeerCred struct {
	credentials.CommonAuthInfo
	UID, GID uint32
	PID      int32
}

// AuthType names the kind of AuthInfo.
func (PeerCred) AuthType() string { return "unix-peercred" }

// PeerCredentials returns the transport credentials of the admin socket:
// no encryption (the kernel carries the bytes between two processes of the
// host) and, as each connection's AuthInfo, the connecting process's
// PeerCred. A connection that is not a unix socket, or whose peer the kernel
// does not name, fails its handshake. They serve only: a client dials the
// socket with insecure credentials.
func PeerCredentials() credentials.TransportCredentials { return peerCredentials{} }

type peerCredentials struct{}

func (peerCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil, nil, fmt.Errorf("admin connection from %s is not a unix socket", conn.RemoteAddr())
	}
	cred, err := peerCred(uc)
	if err != nil {
		return nil, nil, fmt.Errorf("admin connection: peer credentials: %w", err)
	}
	cred.SecurityLevel = credentials.PrivacyAndIntegrity
	return conn, cred, nil
}

func (peerCredentials) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("peer credentials are a server's: dial the admin socket with insecure credentials")
}

func (peerCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "unix-peercred"}
}

func (peerCredentials) Clone() credentials.TransportCredentials { return peerCredentials{} }

func (peerCredentials) OverrideServerName(string) error { return nil }

// ListenAdminSocket listens on a unix socket at path with the given file
// mode (0 means DefaultAdminSocketMode). A socket file left at path by a
// process that died is replaced; a socket someone still serves on, or any
// other kind of file, is an error and is left alone. The listener removes
// the file when closed.
func ListenAdminSocket(path string, mode fs.FileMode) (*net.UnixListener, error) {
	if len(path) > MaxSocketPath {
		return nil, fmt.Errorf("admin socket %s: the path is %d bytes, more than the %d a unix socket may have", path, len(path), MaxSocketPath)
	}
	if mode == 0 {
		mode = DefaultAdminSocketMode
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	// The file is made with the process's umask first; nobody can have
	// connected through a mode wider than the umask allows.
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return ln, nil
}

// removeStaleSocket removes a socket file at path that nobody answers on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("admin socket: %w", err)
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("admin socket %s: a file that is not a socket is in the way; refusing to remove it", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("admin socket %s: another process serves on it (another storegated?)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("admin socket %s: cannot tell whether it is in use: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("admin socket: remove the stale socket: %w", err)
	}
	return nil
}

// String returns "unix:uid=N", how logs and audit records name the caller.
func (p PeerCred) String() string { return "unix:uid=" + strconv.FormatUint(uint64(p.UID), 10) }
