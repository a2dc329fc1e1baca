package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"google.golang.org/grpc/credentials"
)

// reloadingCreds is TLS transport credentials whose CA bundle and client
// certificate are read from their files again for every new connection
// (gRPC makes one per (re)connect, so this costs a few file reads per
// connection, not per call). While the files fail to load (a rotation half
// written), the last material that loaded is used.
type reloadingCreds struct {
	base                      *tls.Config // everything but what the files give
	caFile, certFile, keyFile string

	mu   sync.Mutex
	last *tls.Config
}

// newTLSCredentials builds the credentials from s, loading every file once
// so that Dial reports a bad path or PEM at once.
func newTLSCredentials(s *settings, serverName string) (*reloadingCreds, error) {
	base := &tls.Config{MinVersion: tls.VersionTLS13}
	if s.tlsConfig != nil {
		base = s.tlsConfig.Clone()
		if base.MinVersion < tls.VersionTLS13 {
			base.MinVersion = tls.VersionTLS13
		}
	}
	if s.caPool != nil {
		base.RootCAs = s.caPool
	}
	switch {
	case s.serverName != "":
		base.ServerName = s.serverName
	case base.ServerName == "":
		base.ServerName = serverName
	}
	r := &reloadingCreds{base: base, caFile: s.caFile, certFile: s.certFile, keyFile: s.keyFile}
	cfg, err := r.load()
	if err != nil {
		return nil, err
	}
	hasCert := len(cfg.Certificates) > 0 || cfg.GetClientCertificate != nil
	if !hasCert && !s.insecureNoCert {
		return nil, errors.New("TCP needs a client certificate (WithClientCertificate) for the daemon's mutual TLS; WithInsecureNoClientCert dials a daemon in development mode without one")
	}
	r.last = cfg
	return r, nil
}

// load reads the files into a copy of the base config.
func (r *reloadingCreds) load() (*tls.Config, error) {
	r.mu.Lock()
	cfg := r.base.Clone()
	r.mu.Unlock()
	if r.caFile != "" {
		pem, err := os.ReadFile(r.caFile)
		if err != nil {
			return nil, fmt.Errorf("CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s: no PEM certificate in it", r.caFile)
		}
		cfg.RootCAs = pool
	}
	if r.certFile != "" || r.keyFile != "" {
		if r.certFile == "" || r.keyFile == "" {
			return nil, errors.New("client certificate: both a certificate and a key file are needed")
		}
		pair, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s, key %s: %w", r.certFile, r.keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// current is the config for a new connection.
func (r *reloadingCreds) current() *tls.Config {
	cfg, err := r.load()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		return r.last
	}
	r.last = cfg
	return cfg
}

func (r *reloadingCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return credentials.NewTLS(r.current()).ClientHandshake(ctx, authority, conn)
}

func (r *reloadingCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("client credentials cannot serve")
}

func (r *reloadingCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.3", ServerName: r.base.ServerName}
}

func (r *reloadingCreds) Clone() credentials.TransportCredentials {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &reloadingCreds{base: r.base.Clone(), caFile: r.caFile, certFile: r.certFile, keyFile: r.keyFile, last: r.last}
}

// OverrideServerName implements the deprecated method of the interface.
func (r *reloadingCreds) OverrideServerName(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.base.ServerName = name
	return nil
}
