package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/pcnode/pcnode/client"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Connection settings: each flag has an environment equivalent, and a flag
// given on the command line wins over its variable.
const (
	flagAddress       = "address"
	flagTLSCA         = "tls-ca"
	flagTLSCert       = "tls-cert"
	flagTLSKey        = "tls-key"
	flagTLSServerName = "tls-server-name"

	envAddress       = client.EnvAddress // PCNODE_ADDRESS
	envTLSCA         = "PCNODE_TLS_CA"
	envTLSCert       = "PCNODE_TLS_CERT"
	envTLSKey        = "PCNODE_TLS_KEY"
	envTLSServerName = "PCNODE_TLS_SERVER_NAME"
)

// connSettings are the connection flags, registered on the root.
var connSettings = []struct{ flag, env, usage string }{
	{flagAddress, envAddress, "pcnoded address: a unix socket path (default " + client.DefaultSocket + ") or host:port (TLS)"},
	{flagTLSCA, envTLSCA, "CA bundle (PEM) that signed the node's certificate (host:port only; default: the system roots)"},
	{flagTLSCert, envTLSCert, "client certificate (PEM) to present to the node (host:port only; with --tls-key)"},
	{flagTLSKey, envTLSKey, "private key (PEM) of --tls-cert"},
	{flagTLSServerName, envTLSServerName, "name to verify in the node's certificate (default: the host of --address)"},
}

func addConnFlags(root *cobra.Command) {
	for _, s := range connSettings {
		root.PersistentFlags().String(s.flag, "", s.usage+" [$"+s.env+"]")
	}
}

// setting is one resolved connection setting and where it came from, so an
// error can name what the user should change.
type setting struct {
	value  string
	source string // "--address", "$PCNODE_ADDRESS" or "default"
}

// target is where and how to connect.
type target struct {
	address setting
	unix    bool // a unix socket; otherwise host:port over TLS
	// TLS material, for host:port only.
	ca, cert, key, serverName setting
}

// resolveTarget reads the connection flags, falling back to the
// environment (getenv) and then to the default socket, and checks that
// they make sense together. Its errors are usage errors that say which
// flag or variable to set.
func resolveTarget(fl *pflag.FlagSet, getenv func(string) string) (target, error) {
	get := func(flag, env string) setting {
		if f := fl.Lookup(flag); f != nil && f.Changed {
			return setting{f.Value.String(), "--" + flag}
		}
		if v := getenv(env); v != "" {
			return setting{v, "$" + env}
		}
		return setting{}
	}
	t := target{
		address: get(flagAddress, envAddress),
		ca:      get(flagTLSCA, envTLSCA), cert: get(flagTLSCert, envTLSCert), key: get(flagTLSKey, envTLSKey),
		serverName: get(flagTLSServerName, envTLSServerName),
	}
	if t.address.value == "" {
		t.address = setting{client.DefaultSocket, "default"}
	}
	addr := t.address.value
	switch {
	case strings.HasPrefix(addr, "/"), strings.HasPrefix(addr, "unix:"):
		t.unix = true
	default:
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" || !validPort(port) {
			return t, usagef("%s %s: want an absolute unix socket path (/run/pcnode/pcnoded.sock) or host:port (node1.example.org:7443)",
				t.address.source, quote(addr))
		}
	}
	if t.unix {
		// TLS flags on the command line with a socket are a mistake;
		// TLS variables in the environment are for other nodes and do
		// not apply here.
		for _, s := range []setting{t.ca, t.cert, t.key, t.serverName} {
			if strings.HasPrefix(s.source, "--") {
				return t, usagef("%s applies to host:port addresses only; %s %s is a unix socket", s.source, t.address.source, quote(addr))
			}
		}
		t.ca, t.cert, t.key, t.serverName = setting{}, setting{}, setting{}, setting{}
		return t, nil
	}
	if (t.cert.value == "") != (t.key.value == "") {
		return t, usagef("a client certificate needs both --%s ($%s) and --%s ($%s)", flagTLSCert, envTLSCert, flagTLSKey, envTLSKey)
	}
	if t.ca.value == "" && t.cert.value == "" {
		return t, usagef("%s %s is a TCP address, which pcnoded serves only over TLS: set --%s ($%s) to the CA bundle that signed the node's certificate, and --%s/--%s ($%s/$%s) to your client certificate and key",
			t.address.source, quote(addr), flagTLSCA, envTLSCA, flagTLSCert, flagTLSKey, envTLSCert, envTLSKey)
	}
	return t, nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

// tlsConfig builds the client TLS configuration: TLS 1.3 at least, the
// node's certificate verified against the CA bundle in caFile (the system
// roots when empty) for serverName (the dialled host when empty), and the
// client certificate certFile/keyFile presented when given. It is the one
// place the CLI builds TLS settings.
func tlsConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flagTLSCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--%s %s: no PEM certificate in the file", flagTLSCA, quote(caFile))
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--%s %s / --%s %s: %w", flagTLSCert, quote(certFile), flagTLSKey, quote(keyFile), err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// nodeConn is a connection to one pcnoded: the generated clients of its
// three services.
type nodeConn struct {
	tasks  pcnodev1.TaskServiceClient
	nodes  pcnodev1.NodeServiceClient
	images pcnodev1.ImageServiceClient
	// run is client.Client.Run: submit or attach, and follow to the end.
	run func(context.Context, *pcnodev1.RunTaskRequest, func(*pcnodev1.TaskEvent) error) (*pcnodev1.Task, error)
	// watch is client.Client.WatchTasks: a watch resumed across dropped
	// streams.
	watch func(context.Context, *pcnodev1.WatchTasksRequest, func(*pcnodev1.TaskEvent) error) error
	close func() error
}

// dial connects to t. The connection is lazy: the first call reports an
// unreachable node.
func dial(t target) (*nodeConn, error) {
	opts := []client.Option{client.WithDialOptions(grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)))}
	if !t.unix {
		cfg, err := tlsConfig(t.ca.value, t.cert.value, t.key.value, t.serverName.value)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithTLSConfig(cfg))
		if len(cfg.Certificates) == 0 {
			// A node in its development mode (TCP without client
			// authentication); its certificate is still verified.
			opts = append(opts, client.WithInsecureNoClientCert())
		}
	}
	c, err := client.Dial(t.address.value, opts...)
	if err != nil {
		return nil, err
	}
	return &nodeConn{tasks: c.Tasks, nodes: c.Nodes, images: c.Images, run: c.Run, watch: c.WatchTasks, close: c.Close}, nil
}

// withClient runs fn with a connection to the node the flags name, and
// turns its error into one that says what to do next.
func withClient(cmd *cobra.Command, fn func(ctx context.Context, c *nodeConn) error) error {
	t, err := resolveTarget(cmd.Flags(), os.Getenv)
	if err != nil {
		return err
	}
	c, err := dial(t)
	if err != nil {
		return err
	}
	defer c.close()
	if err := fn(cmd.Context(), c); err != nil {
		return explain(client.FromError(err), t, cmd)
	}
	return nil
}
