package daemon

import (
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
)

// tlsFiles writes a server certificate of ca, its key and ca as client CA.
func tlsFiles(t *testing.T, dir string, ca *daemontest.CA) config.API {
	t.Helper()
	srv := ca.Server(t)
	api := config.API{TLSCertFile: filepath.Join(dir, "server.pem"), TLSKeyFile: filepath.Join(dir, "key.pem"), ClientCAFile: filepath.Join(dir, "ca.pem")}
	daemontest.WriteFile(t, api.TLSCertFile, srv.CertPEM)
	daemontest.WriteFile(t, api.TLSKeyFile, srv.KeyPEM)
	daemontest.WriteFile(t, api.ClientCAFile, ca.PEM)
	return api
}

// handshake runs one TLS handshake of c against a server using m, and
// returns the server's error (nil: the client was accepted).
func handshake(t *testing.T, m *tlsMaterial, c *tls.Config) error {
	t.Helper()
	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(sc, m.serverConfig())
		s.SetDeadline(time.Now().Add(5 * time.Second))
		done <- s.Handshake()
		s.Close()
	}()
	cl := tls.Client(cc, c)
	cl.SetDeadline(time.Now().Add(5 * time.Second))
	_ = cl.Handshake()
	_, _ = cl.Read(make([]byte, 1)) // TLS 1.3: the client learns of a refusal here
	return <-done
}

// TestTLSMaterialReload: new files are used once reloaded, for new
// handshakes; a broken set is an error, reported once, and the material in
// use stays.
func TestTLSMaterialReload(t *testing.T) {
	dir := t.TempDir()
	ca1 := daemontest.NewCA(t, "one")
	m, err := newTLSMaterial(tlsFiles(t, dir, ca1), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	client := func(ca *daemontest.CA) *tls.Config {
		c := daemontest.ClientTLS(ca.Pool(), ca.Client(t, daemontest.CertOptions{CN: "c"}))
		c.NextProtos = []string{"h2"}
		return c
	}
	if err := handshake(t, m, client(ca1)); err != nil {
		t.Fatalf("handshake with CA one's client = %v", err)
	}
	if err := handshake(t, m, daemontest.ClientTLS(ca1.Pool(), nil)); err == nil {
		t.Errorf("handshake without a client certificate succeeded")
	}
	if changed, err := m.reload(false); changed || err != nil {
		t.Errorf("reload(unchanged files) = %v, %v; want false, nil", changed, err)
	}

	ca2 := daemontest.NewCA(t, "two")
	tlsFiles(t, dir, ca2)
	if changed, err := m.reload(false); !changed || err != nil {
		t.Fatalf("reload(new files) = %v, %v; want true, nil", changed, err)
	}
	if err := handshake(t, m, client(ca2)); err != nil {
		t.Errorf("handshake with CA two's client after reload = %v", err)
	}
	if err := handshake(t, m, client(ca1)); err == nil {
		t.Errorf("handshake with CA one's client after rotation to CA two succeeded")
	}

	// A key that does not match the certificate: refused, once.
	daemontest.WriteFile(t, filepath.Join(dir, "key.pem"), ca2.Client(t, daemontest.CertOptions{CN: "x"}).KeyPEM)
	if _, err := m.reload(false); err == nil || !strings.Contains(err.Error(), "api.tls_cert_file") {
		t.Errorf("reload(mismatched key) = %v, want an error naming api.tls_cert_file", err)
	}
	if changed, err := m.reload(false); changed || err != nil {
		t.Errorf("reload(same broken files again) = %v, %v; want false, nil (reported once)", changed, err)
	}
	if err := handshake(t, m, client(ca2)); err != nil {
		t.Errorf("handshake after a broken reload = %v, want the material in use kept", err)
	}
	if err := os.Remove(filepath.Join(dir, "ca.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.reload(true); err == nil || !strings.Contains(err.Error(), "api.client_ca_file") {
		t.Errorf("reload(missing CA file) = %v, want an error naming api.client_ca_file", err)
	}
}

// TestServerCredentialsRefusePlainTCP: without TLS material a connection
// that is not a unix socket is refused, never served in plain text.
func TestServerCredentialsRefusePlainTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
			defer c.Close()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	conn, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, _, err := newServerCredentials(nil).ServerHandshake(conn); err == nil {
		t.Errorf("serverCredentials without TLS accepted a TCP connection")
	}
	if _, _, err := (peerCredentials{}).ServerHandshake(conn); err == nil {
		t.Errorf("peerCredentials accepted a TCP connection")
	}
}
