package metrics

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/pcnode/pcnode/daemon/config"
)

// Timeouts and sizes of the metrics listener: a scraper that is slow to
// send its request, to read the answer or that idles is cut off.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	// certCheckInterval is how often, at most, a handshake looks whether
	// the TLS files changed.
	certCheckInterval = time.Second
)

// Server is the metrics listener.
type Server struct {
	lis  net.Listener
	http *http.Server
	tls  bool
}

// Listen opens the [metrics] listener (cfg must have passed
// config.Validate and be Enabled) and loads its TLS files, if any. Errors
// name the key that is wrong.
func Listen(cfg config.Metrics, m *Metrics, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var tc *tls.Config
	if cfg.TLS() {
		cr, err := newCertReloader(cfg, logger)
		if err != nil {
			return nil, err
		}
		tc = &tls.Config{
			MinVersion:         tls.VersionTLS13,
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return cr.current(), nil },
		}
	}
	lis, err := net.Listen("tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("metrics.address: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	s := &Server{lis: lis, tls: tc != nil, http: &http.Server{
		Handler:           mux,
		TLSConfig:         tc,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(slogWriter{logger}, "", 0),
	}}
	return s, nil
}

// Addr is the address the listener is bound to.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// TLS reports whether the listener serves HTTPS.
func (s *Server) TLS() bool { return s.tls }

// Serve serves until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve() error {
	var err error
	if s.tls {
		err = s.http.ServeTLS(s.lis, "", "")
	} else {
		err = s.http.Serve(s.lis)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops the listener, waiting for scrapes under way until ctx
// ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		s.http.Close()
	}
	return err
}

// slogWriter turns net/http's error log lines (TLS handshake errors and
// the like) into debug records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Debug("metrics listener", "msg", string(p))
	return len(p), nil
}

// certReloader holds the TLS configuration built from the [metrics]
// files, rebuilt when one of them changes (size or modification time,
// looked at no more than once per certCheckInterval). Files that do not
// load keep the configuration in use, logged once per change.
type certReloader struct {
	cfg config.Metrics
	log *slog.Logger

	mu      sync.Mutex
	cur     *tls.Config
	stamp   string
	checked time.Time
}

func newCertReloader(cfg config.Metrics, logger *slog.Logger) (*certReloader, error) {
	r := &certReloader{cfg: cfg, log: logger}
	c, stamp, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur, r.stamp, r.checked = c, stamp, time.Now()
	return r, nil
}

// stampOf is the size and modification time of the files.
func (r *certReloader) stampOf() string {
	out := ""
	for _, p := range []string{r.cfg.TLSCertFile, r.cfg.TLSKeyFile, r.cfg.ClientCAFile} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil {
			out += fmt.Sprintf("%s:%d:%d;", p, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return out
}

func (r *certReloader) load() (*tls.Config, string, error) {
	stamp := r.stampOf()
	certPEM, err := os.ReadFile(r.cfg.TLSCertFile)
	if err != nil {
		return nil, "", fmt.Errorf("metrics.tls_cert_file: %w", err)
	}
	keyPEM, err := os.ReadFile(r.cfg.TLSKeyFile)
	if err != nil {
		return nil, "", fmt.Errorf("metrics.tls_key_file: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, "", fmt.Errorf("metrics.tls_cert_file %s with metrics.tls_key_file %s: %w", r.cfg.TLSCertFile, r.cfg.TLSKeyFile, err)
	}
	c := &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		NextProtos:             []string{"http/1.1"},
		SessionTicketsDisabled: true,
	}
	if r.cfg.ClientCAFile != "" {
		caPEM, err := os.ReadFile(r.cfg.ClientCAFile)
		if err != nil {
			return nil, "", fmt.Errorf("metrics.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, "", fmt.Errorf("metrics.client_ca_file %s: no PEM certificate in it", r.cfg.ClientCAFile)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, stamp, nil
}

// current returns the configuration for a new connection, reloading the
// files first when they changed.
func (r *certReloader) current() *tls.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < certCheckInterval {
		return r.cur
	}
	r.checked = time.Now()
	stamp := r.stampOf()
	if stamp == r.stamp {
		return r.cur
	}
	c, _, err := r.load()
	r.stamp = stamp // a failed set of files is reported once
	if err != nil {
		r.log.Error("metrics TLS material not reloaded; keeping what is in use", "err", err)
		return r.cur
	}
	r.cur = c
	r.log.Info("metrics TLS material loaded", "cert", r.cfg.TLSCertFile)
	return r.cur
}
