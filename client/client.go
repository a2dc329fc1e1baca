package client

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// DefaultSocket is pcnoded's default API socket.
const DefaultSocket = "/run/pcnode/pcnoded.sock"

// EnvAddress names the environment variable that overrides the default address.
const EnvAddress = "PCNODE_ADDRESS"

// maxRecvBytes is the largest response the client accepts.
const maxRecvBytes = 64 << 20

// Client is a connection to one pcnoded. Its fields are the generated
// service clients on that connection; their errors are already converted
// (*Error, see FromError). It is safe for concurrent use.
type Client struct {
	conn   *grpc.ClientConn
	Tasks  pcnodev1.TaskServiceClient
	Nodes  pcnodev1.NodeServiceClient
	Images pcnodev1.ImageServiceClient
}

// DefaultAddress is $PCNODE_ADDRESS or DefaultSocket.
func DefaultAddress() string {
	if a := os.Getenv(EnvAddress); a != "" {
		return a
	}
	return DefaultSocket
}

// Dial connects to address: a unix socket path ("/run/pcnode/pcnoded.sock"
// or "unix:///run/pcnode/pcnoded.sock"), or "host:port" over TLS 1.3 with a
// client certificate (see the options). TCP without TLS is not offered. The
// connection is lazy: the first call reports an unreachable daemon (a bad
// option or certificate file is reported here).
func Dial(address string, opts ...Option) (*Client, error) {
	s := &settings{retryAttempts: defaultRetryAttempts, retryInitial: defaultRetryInitial, retryMaxBackoff: defaultRetryMaxBackoff}
	for _, o := range opts {
		o(s)
	}
	target, host, err := parseAddress(address)
	if err != nil {
		return nil, err
	}
	dopts := []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)),
		grpc.WithChainUnaryInterceptor(unaryErrors),
		grpc.WithChainStreamInterceptor(streamErrors),
	}
	if host == "" {
		if s.tlsConfig != nil || s.caFile != "" || s.caPool != nil || s.certFile != "" || s.keyFile != "" || s.serverName != "" {
			return nil, fmt.Errorf("address %q: TLS options are for host:port; a unix socket is authenticated by the peer's uid/gid", address)
		}
		dopts = append(dopts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	} else {
		creds, err := newTLSCredentials(s, host)
		if err != nil {
			return nil, fmt.Errorf("address %q: %w", address, err)
		}
		dopts = append(dopts, grpc.WithTransportCredentials(creds))
		if s.keepalive == nil {
			dopts = append(dopts, grpc.WithKeepaliveParams(defaultKeepalive()))
		}
	}
	if s.keepalive != nil {
		if s.keepalive.Time <= 0 || s.keepalive.Timeout <= 0 {
			return nil, fmt.Errorf("WithKeepalive(%v, %v): both durations must be positive", s.keepalive.Time, s.keepalive.Timeout)
		}
		dopts = append(dopts, grpc.WithKeepaliveParams(*s.keepalive))
	}
	if s.disableRetryPolicy {
		dopts = append(dopts, grpc.WithDisableRetry())
	} else {
		sc, err := retryServiceConfig(s.retryAttempts, s.retryInitial, s.retryMaxBackoff)
		if err != nil {
			return nil, err
		}
		// The resolver's service config (DNS TXT records) is ignored: what
		// is retried is the client's decision, not the network's.
		dopts = append(dopts, grpc.WithDefaultServiceConfig(sc), grpc.WithDisableServiceConfig())
	}
	conn, err := grpc.NewClient(target, append(dopts, s.dialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", address, err)
	}
	return New(conn), nil
}

// New wraps an existing connection (its errors are not converted unless it
// was dialled with the client's interceptors; use FromError).
func New(conn *grpc.ClientConn) *Client {
	return &Client{
		conn:   conn,
		Tasks:  pcnodev1.NewTaskServiceClient(conn),
		Nodes:  pcnodev1.NewNodeServiceClient(conn),
		Images: pcnodev1.NewImageServiceClient(conn),
	}
}

// Conn returns the underlying connection (for the health service, or to
// watch its state).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection; open streams end with codes.Canceled.
func (c *Client) Close() error { return c.conn.Close() }

// parseAddress returns the gRPC target of address and, for TCP, the host
// (empty for a unix socket).
func parseAddress(address string) (target, host string, err error) {
	switch {
	case strings.HasPrefix(address, "unix://"):
		if !strings.HasPrefix(address, "unix:///") {
			return "", "", fmt.Errorf("address %q: a unix URL needs an absolute path (unix:///path)", address)
		}
		return address, "", nil
	case strings.HasPrefix(address, "unix:"):
		if !strings.HasPrefix(address, "unix:/") {
			return "", "", fmt.Errorf("address %q: a unix address needs an absolute path", address)
		}
		return "unix://" + strings.TrimPrefix(address, "unix:"), "", nil
	case strings.HasPrefix(address, "/"):
		return "unix://" + address, "", nil
	case address == "":
		return "", "", fmt.Errorf("address is empty: want a unix socket path (default %s) or host:port", DefaultSocket)
	}
	h, p, err := net.SplitHostPort(address)
	if err != nil {
		return "", "", fmt.Errorf("address %q: want a unix socket path or host:port (%v)", address, err)
	}
	if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
		return "", "", fmt.Errorf("address %q: port %q is not a number from 1 to 65535", address, p)
	}
	if h == "" || strings.ContainsAny(h, "/\\ \t\n?#@") {
		return "", "", fmt.Errorf("address %q: want host:port with a host name or IP address", address)
	}
	return "dns:///" + address, h, nil
}
