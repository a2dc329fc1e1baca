package daemon

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/pcnode/pcnode/daemon/config"
)

// tlsMaterial is the TCP listener's TLS configuration, built from the
// [api] certificate, key and client CA files and rebuilt when their
// contents change (reload): a handshake uses the configuration current when
// it starts (tls.Config.GetConfigForClient), so new connections get new
// material and open ones keep theirs. A set of files that does not load is
// logged once and the configuration in use is kept.
type tlsMaterial struct {
	certFile, keyFile, caFile string
	insecure                  bool // api.insecure_tcp_without_client_auth
	log                       *slog.Logger

	mu      sync.Mutex // serialises reloads
	lastSum [sha256.Size]byte
	cur     atomic.Pointer[tls.Config]
	loaded  atomic.Int64 // successful loads, for tests
}

// newTLSMaterial loads the files named by api; an error names the key of
// the file that is wrong.
func newTLSMaterial(api config.API, log *slog.Logger) (*tlsMaterial, error) {
	m := &tlsMaterial{certFile: api.TLSCertFile, keyFile: api.TLSKeyFile, caFile: api.ClientCAFile, insecure: api.InsecureTCPWithoutClientAuth, log: log}
	if _, err := m.reload(true); err != nil {
		return nil, err
	}
	return m, nil
}

// read returns the three files' contents and a digest over all of them.
func (m *tlsMaterial) read() (cert, key, ca []byte, sum [sha256.Size]byte, err error) {
	if cert, err = os.ReadFile(m.certFile); err != nil {
		return nil, nil, nil, sum, fmt.Errorf("api.tls_cert_file: %w", err)
	}
	if key, err = os.ReadFile(m.keyFile); err != nil {
		return nil, nil, nil, sum, fmt.Errorf("api.tls_key_file: %w", err)
	}
	if m.caFile != "" {
		if ca, err = os.ReadFile(m.caFile); err != nil {
			return nil, nil, nil, sum, fmt.Errorf("api.client_ca_file: %w", err)
		}
	}
	h := sha256.New()
	for _, b := range [][]byte{cert, key, ca} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	copy(sum[:], h.Sum(nil))
	return cert, key, ca, sum, nil
}

// build makes the server's TLS configuration: TLS 1.3 at least, HTTP/2
// (gRPC) only, and client certificates required and verified against the
// client CA unless the development switch is on.
func (m *tlsMaterial) build(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("api.tls_cert_file %s with api.tls_key_file %s: %w", m.certFile, m.keyFile, err)
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2"},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		// No resumption: every connection is verified against the
		// material current at its handshake (a rotated-out CA or an
		// expired certificate cannot resume an old session). gRPC
		// connections are long-lived, so resumption would save little.
		SessionTicketsDisabled: true,
	}
	if caPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, fmt.Errorf("api.client_ca_file %s: no PEM certificate in it", m.caFile)
		}
		c.ClientCAs = pool
	}
	if m.insecure {
		c.ClientAuth = tls.VerifyClientCertIfGiven
		if c.ClientCAs == nil {
			c.ClientAuth = tls.NoClientCert
		}
	}
	return c, nil
}

// reload reads the files and, when their contents differ from the last
// ones tried (or force), builds and installs a new configuration. A failure
// keeps the configuration in use; it is reported once per content.
func (m *tlsMaterial) reload(force bool) (changed bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cert, key, ca, sum, err := m.read()
	if err != nil {
		return false, err
	}
	if sum == m.lastSum && !force {
		return false, nil
	}
	m.lastSum = sum
	c, err := m.build(cert, key, ca)
	if err != nil {
		return false, err
	}
	m.cur.Store(c)
	m.loaded.Add(1)
	if leaf, err := x509.ParseCertificate(c.Certificates[0].Certificate[0]); err == nil {
		if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
			m.log.Warn("TLS server certificate is not valid now", "file", m.certFile, "not_before", leaf.NotBefore, "not_after", leaf.NotAfter)
		}
	}
	return true, nil
}

// serverConfig is the base configuration given to gRPC: it hands every
// handshake the current material.
func (m *tlsMaterial) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		NextProtos:             []string{"h2"},
		SessionTicketsDisabled: true,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return m.cur.Load(), nil
		},
	}
}

// ReloadTLS reads the TLS files again now (pcnoded calls it on SIGHUP);
// new connections use what it loaded. A failure is logged and keeps the
// material in use. It does nothing without a TCP listener.
func (d *Daemon) ReloadTLS() {
	if d.tls == nil {
		return
	}
	d.reloadTLS(true)
}

func (d *Daemon) reloadTLS(force bool) {
	changed, err := d.tls.reload(force)
	switch {
	case err != nil:
		d.log.Error("TLS material not reloaded; keeping what is in use", "err", err)
	case changed:
		d.log.Info("TLS material loaded", "cert", d.tls.certFile, "client_ca", d.tls.caFile)
	}
}

// tlsReloadLoop checks the TLS files every api.tls_reload_interval.
func (d *Daemon) tlsReloadLoop(ctx context.Context) {
	tick := time.NewTicker(d.cfg.API.TLSReloadInterval.Duration)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			d.reloadTLS(false)
		}
	}
}

// ListenTCP opens the [api] tcp_address listener, or returns nil when none
// is configured. Connections on it are served only over TLS (ServerOptions).
func (d *Daemon) ListenTCP() (net.Listener, error) {
	if d.cfg.API.TCPAddress == "" {
		return nil, nil
	}
	lis, err := net.Listen("tcp", d.cfg.API.TCPAddress)
	if err != nil {
		return nil, fmt.Errorf("api.tcp_address: %w", err)
	}
	return lis, nil
}

// serverCredentials are the server's transport credentials: a unix-socket
// connection gets its peer's process credentials (peerCredentials), any
// other connection a TLS handshake with the current material, or is
// refused when no TCP listener is configured. Plain-text TCP is never served.
type serverCredentials struct {
	tls credentials.TransportCredentials // nil: no TLS material
}

var _ credentials.TransportCredentials = serverCredentials{}

func newServerCredentials(m *tlsMaterial) serverCredentials {
	if m == nil {
		return serverCredentials{}
	}
	return serverCredentials{tls: credentials.NewTLS(m.serverConfig())}
}

func (serverCredentials) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("server credentials are for the server side only")
}

func (c serverCredentials) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if _, ok := conn.(*net.UnixConn); ok {
		return peerCredentials{}.ServerHandshake(conn)
	}
	if c.tls == nil {
		return nil, nil, fmt.Errorf("connection from %s refused: only the unix socket is served without TLS", conn.RemoteAddr())
	}
	return c.tls.ServerHandshake(conn)
}

func (c serverCredentials) Info() credentials.ProtocolInfo {
	if c.tls != nil {
		return c.tls.Info()
	}
	return peerCredentials{}.Info()
}

func (c serverCredentials) Clone() credentials.TransportCredentials {
	if c.tls != nil {
		return serverCredentials{tls: c.tls.Clone()}
	}
	return c
}

func (serverCredentials) OverrideServerName(string) error { return nil }
