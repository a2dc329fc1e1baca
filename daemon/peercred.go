package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"unsafe"

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
	// Groups are the peer's supplementary groups (SO_PEERGROUPS), as they
	// were when it connected; nil where the kernel cannot tell.
	Groups []uint32
}

// AuthType implements credentials.AuthInfo.
func (peerCred) AuthType() string { return "unix-peercred" }

// peerCredentials are the server's transport credentials on the unix socket:
// no handshake and no encryption (clients dial it insecure), only the peer's
// process credentials attached to every stream's peer.Peer. A connection
// that is not a unix socket is refused (serverCredentials sends TCP to TLS).
type peerCredentials struct{}

var _ credentials.TransportCredentials = peerCredentials{}

func (peerCredentials) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("peer credentials are for the server side only")
}

func (peerCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		// Never serve another transport without authentication.
		return nil, nil, fmt.Errorf("connection from %s refused: peer credentials are for unix sockets only", conn.RemoteAddr())
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	var (
		cred   *syscall.Ucred
		groups []uint32
		gerr   error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, gerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
		if gerr == nil {
			groups = peerGroups(int(fd))
		}
	}); err != nil {
		return nil, nil, fmt.Errorf("peer credentials: %w", err)
	}
	if gerr != nil {
		return nil, nil, fmt.Errorf("peer credentials: SO_PEERCRED: %w", gerr)
	}
	return conn, peerCred{
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity},
		PID:            cred.Pid, UID: cred.Uid, GID: cred.Gid, Groups: groups,
	}, nil
}

// soPeerGroups is SO_PEERGROUPS (Linux 4.13), which package syscall lacks.
const soPeerGroups = 59

// maxPeerGroups bounds the groups read (the kernel's NGROUPS_MAX is 65536).
const maxPeerGroups = 65536

// peerGroups returns the supplementary groups the kernel recorded for the
// peer of the unix socket fd, or nil when it cannot say.
func peerGroups(fd int) []uint32 {
	buf := make([]uint32, 64)
	for {
		n := uint32(len(buf) * 4)
		_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), syscall.SOL_SOCKET, soPeerGroups,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case errno == 0:
			return buf[:n/4]
		case errno == syscall.ERANGE && int(n/4) > len(buf) && n/4 <= maxPeerGroups:
			buf = make([]uint32, n/4) // n is the size needed
		default:
			return nil
		}
	}
}

func (peerCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "unix-peercred"}
}

func (c peerCredentials) Clone() credentials.TransportCredentials { return c }

func (peerCredentials) OverrideServerName(string) error { return nil }

// clientKey names the client a call comes from, for per-client limits: its
// authenticated identity (peerIdentity: "uid:N" on the unix socket, the
// certificate's identity over TLS, "anonymous" for a TLS client without a
// certificate). A peer without credentials is keyed by its address without
// the port, or "unknown".
func clientKey(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown"
	}
	if id := peerIdentity(p); id.name != "" {
		return id.name
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
