package daemontest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// CA is a certificate authority made at test time (ECDSA P-256), for
// server and client certificates of TLS tests.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM is the CA certificate, PEM-encoded (a client_ca_file).
	PEM []byte
}

// Cert is a certificate with its key.
type Cert struct {
	Cert            *x509.Certificate
	CertPEM, KeyPEM []byte
	TLS             tls.Certificate
}

// CertOptions say what a certificate names and when it is valid.
type CertOptions struct {
	// URI, DNS and CN are the identity: URI SANs, DNS SANs, subject CN.
	URI []string
	DNS []string
	CN  string
	// IPs are IP SANs (a server certificate for 127.0.0.1).
	IPs []net.IP
	// NotBefore and NotAfter default to an hour ago and an hour ahead.
	NotBefore, NotAfter time.Time
}

// NewCA makes a self-signed CA named cn.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("daemontest: CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("daemontest: CA certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	return &CA{Cert: c, key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("daemontest: serial: %v", err)
	}
	return n
}

// Pool is a pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Server issues a server certificate for localhost and 127.0.0.1.
func (ca *CA) Server(t testing.TB) *Cert {
	t.Helper()
	return ca.issue(t, CertOptions{CN: "pcnoded", DNS: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}, x509.ExtKeyUsageServerAuth)
}

// Client issues a client certificate.
func (ca *CA) Client(t testing.TB, o CertOptions) *Cert {
	t.Helper()
	return ca.issue(t, o, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) issue(t testing.TB, o CertOptions, usage x509.ExtKeyUsage) *Cert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("daemontest: key: %v", err)
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: o.CN},
		DNSNames:     o.DNS,
		IPAddresses:  o.IPs,
		NotBefore:    o.NotBefore,
		NotAfter:     o.NotAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, s := range o.URI {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("daemontest: URI SAN %q: %v", s, err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("daemontest: certificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	out := &Cert{
		Cert:    c,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}
	if out.TLS, err = tls.X509KeyPair(out.CertPEM, out.KeyPEM); err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	return out
}

// TLSFiles are the TLS files of a daemon started with Options.TCP.
type TLSFiles struct {
	// Cert, Key and ClientCA are the files named by api.tls_cert_file,
	// api.tls_key_file and api.client_ca_file.
	Cert, Key, ClientCA string
}

// WriteFile replaces path with b atomically (a rename), as certificate
// rotation tools do.
func WriteFile(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("daemontest: %v", err)
	}
}

// setupTLS makes the server certificate (of ca; a new CA when nil) of a
// daemon started with Options.TCP and writes it, its key and the CA under
// dir/tls.
func setupTLS(t testing.TB, dir string, ca *CA) (*CA, *Cert, TLSFiles) {
	t.Helper()
	if ca == nil {
		ca = NewCA(t, "daemontest CA")
	}
	srv := ca.Server(t)
	tdir := filepath.Join(dir, "tls")
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	f := TLSFiles{Cert: filepath.Join(tdir, "server.pem"), Key: filepath.Join(tdir, "server-key.pem"), ClientCA: filepath.Join(tdir, "ca.pem")}
	WriteFile(t, f.Cert, srv.CertPEM)
	WriteFile(t, f.Key, srv.KeyPEM)
	WriteFile(t, f.ClientCA, ca.PEM)
	return ca, srv, f
}

// freeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freeLoopbackPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ClientTLS is a TLS 1.3 client configuration that trusts roots for the
// daemon's certificate and presents cert (none when nil).
func ClientTLS(roots *x509.CertPool, cert *Cert) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: "localhost"}
	if cert != nil {
		c.Certificates = []tls.Certificate{cert.TLS}
	}
	return c
}

// RoleIdentity is the URI SAN identity Options.TCP binds to role
// ("viewer", "submitter", "admin"): spiffe://daemontest/<role>.
func RoleIdentity(role string) string { return "spiffe://daemontest/" + role }

// RoleTLS is a client configuration with a fresh certificate of d.CA for
// RoleIdentity(role), for DialTLS.
func (d *Daemon) RoleTLS(t testing.TB, role string) *tls.Config {
	t.Helper()
	if d.CA == nil {
		t.Fatalf("daemontest: RoleTLS: the daemon was started without Options.TCP")
	}
	return ClientTLS(d.CA.Pool(), d.CA.Client(t, CertOptions{URI: []string{RoleIdentity(role)}}))
}

// DialTLS connects to the daemon's TCP listener over TLS with c; the
// connection is closed when t ends.
func (d *Daemon) DialTLS(t testing.TB, c *tls.Config) *grpc.ClientConn {
	t.Helper()
	if d.TCPAddress == "" {
		t.Fatalf("daemontest: DialTLS: the daemon was started without Options.TCP")
	}
	conn, err := grpc.NewClient("passthrough:///"+d.TCPAddress, grpc.WithTransportCredentials(credentials.NewTLS(c)))
	if err != nil {
		t.Fatalf("daemontest: grpc.NewClient(%s) = %v", d.TCPAddress, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
