package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// peerCred is the AuthInfo of a connection on the unix API socket: the
// credentials the kernel recorded for the connecting process (SO_PEERCRED),
// which it cannot forge.
type peerCred struct {
	credentials.CommonAuthInfo
	PID      int32
	UID, GID uint32
}

// AuthType implements credentials.AuthInfo.
func (peerCred) AuthType() string { return "unix-peercred" }

// peerCredentials are the server's transport credentials on the unix socket:
// no handshake and no encryption (clients dial it insecure), only the peer's
// process credentials attached to every stream's peer.Peer. A connection
// that is not a unix socket passes without them.
type peerCredentials struct{}

var _ credentials.TransportCredentials = peerCredentials{}

func (peerCredentials) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("peer credentials are for the server side only")
}

func (peerCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return conn, nil, nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	var (
		cred *syscall.Ucred
		gerr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	if gerr != nil {
		return nil, nil, fmt.Errorf("peer credentials: SO_PEERCRED: %w", gerr)
	}
	return conn, peerCred{
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity},
		PID:            cred.Pid, UID: cred.Uid, GID: cred.Gid,
	}, nil
}

func (peerCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "unix-peercred"}
}

func (c peerCredentials) Clone() credentials.TransportCredentials { return c }

func (peerCredentials) OverrideServerName(string) error { return nil }

// clientKey names the client a call comes from, for per-client limits:
// "uid:N" for a process on the unix socket. It is the one place that maps a
// connection to an identity; TLS client identities (issue 8) belong here.
// A peer without credentials is keyed by its address without the port, or
// "unknown".
func clientKey(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown"
	}
	if pc, ok := p.AuthInfo.(peerCred); ok {
		return "uid:" + strconv.FormatUint(uint64(pc.UID), 10)
	}
	if p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			return p.Addr.Network() + ":" + host
		}
		if s := p.Addr.String(); s != "" {
			return p.Addr.Network() + ":" + s
		}
	}
	return "unknown"
}
