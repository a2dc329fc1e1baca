package client

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Option configures Dial.
type Option func(*settings)

// settings is what the options chose.
type settings struct {
	caFile             string
	caPool             *x509.CertPool
	certFile, keyFile  string
	serverName         string
	tlsConfig          *tls.Config
	insecureNoCert     bool
	keepalive          *keepalive.ClientParameters
	dialOptions        []grpc.DialOption
	retryAttempts      int
	retryInitial       time.Duration
	retryMaxBackoff    time.Duration
	disableRetryPolicy bool
}

// Default keepalive for TCP connections: a scheduler on a LAN notices a
// node that vanished (power loss, cable, a partition) within about 40 s,
// also on an idle watch stream. The daemon's TCP listener must permit pings
// this often (keepalive.EnforcementPolicy MinTime at most 30 s), or it
// closes the connection with "too_many_pings".
const (
	DefaultKeepaliveTime    = 30 * time.Second
	DefaultKeepaliveTimeout = 10 * time.Second
)

// WithCA verifies the daemon's certificate against the PEM CA bundle in
// file, re-read for every new connection, so a rotated bundle is used
// without restarting the caller. Without WithCA or WithCAPool the system's
// roots are used.
func WithCA(file string) Option { return func(s *settings) { s.caFile = file } }

// WithCAPool verifies the daemon's certificate against pool.
func WithCAPool(pool *x509.CertPool) Option { return func(s *settings) { s.caPool = pool } }

// WithClientCertificate presents the PEM certificate (chain) and key in
// certFile and keyFile to the daemon. Both are re-read for every new
// connection (the last pair that loaded is kept while a rotation has
// written only one of them), so short-lived certificates rotate without a
// restart of the caller.
func WithClientCertificate(certFile, keyFile string) Option {
	return func(s *settings) { s.certFile, s.keyFile = certFile, keyFile }
}

// WithServerName sets the name the daemon's certificate must carry; the
// default is the host part of the address.
func WithServerName(name string) Option { return func(s *settings) { s.serverName = name } }

// WithTLSConfig uses cfg (cloned) for TCP connections instead of building
// one from WithCA and WithClientCertificate. Its MinVersion is raised to
// TLS 1.3; WithServerName still applies.
func WithTLSConfig(cfg *tls.Config) Option { return func(s *settings) { s.tlsConfig = cfg } }

// WithInsecureNoClientCert dials a host:port without a client certificate.
// Only a daemon running its development switch (TCP without client
// authentication) accepts such a connection; the connection is still TLS
// and the daemon's certificate is still verified.
func WithInsecureNoClientCert() Option { return func(s *settings) { s.insecureNoCert = true } }

// WithKeepalive sets the keepalive pings: one after time without activity,
// the connection closed when no answer comes within timeout; permitIdle
// pings also without an open stream. The default for TCP is
// DefaultKeepaliveTime and DefaultKeepaliveTimeout, pinging only while a
// call is open; unix sockets get no keepalive unless this option is given.
func WithKeepalive(time, timeout time.Duration, permitIdle bool) Option {
	return func(s *settings) {
		s.keepalive = &keepalive.ClientParameters{Time: time, Timeout: timeout, PermitWithoutStream: permitIdle}
	}
}

// WithRetryPolicy changes how often and how fast calls without side
// effects are retried when the daemon is Unavailable: attempts in all (2 to
// 5, gRPC's limit; the default is 4), the first backoff and the largest.
func WithRetryPolicy(attempts int, initialBackoff, maxBackoff time.Duration) Option {
	return func(s *settings) {
		s.retryAttempts, s.retryInitial, s.retryMaxBackoff = attempts, initialBackoff, maxBackoff
	}
}

// WithoutRetries turns the retry policy off.
func WithoutRetries() Option { return func(s *settings) { s.disableRetryPolicy = true } }

// WithDialOptions appends gRPC dial options after the client's own, so
// they win where both set the same thing. It is an escape hatch: with it a
// caller can also undo what the client guarantees (TLS, retries).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.dialOptions = append(s.dialOptions, opts...) }
}

func defaultKeepalive() keepalive.ClientParameters {
	return keepalive.ClientParameters{Time: DefaultKeepaliveTime, Timeout: DefaultKeepaliveTimeout}
}
