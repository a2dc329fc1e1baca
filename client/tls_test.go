package client

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestDialTLS dials an in-process server with real TLS 1.3 and mutual
// authentication, with the right and the wrong material.
func TestDialTLS(t *testing.T) {
	ca, otherCA := newTestCA(t, "node CA"), newTestCA(t, "other CA")
	dir := t.TempDir()
	addr := serveTLS(t, &fakeTasks{getTask: echoCN}, serverTLS(t, ca, ca))
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	otherCAFile := writeFile(t, dir, "other-ca.pem", otherCA.pem)
	c, k := ca.issue(t, "scheduler", false)
	certFile, keyFile := writeFile(t, dir, "cert.pem", c), writeFile(t, dir, "key.pem", k)
	oc, ok := otherCA.issue(t, "stranger", false)
	otherCert, otherKey := writeFile(t, dir, "other-cert.pem", oc), writeFile(t, dir, "other-key.pem", ok)
	_, port, _ := strings.Cut(addr, ":")

	for _, tc := range []struct {
		name    string
		address string
		opts    []Option
		wantErr string // "" means the call succeeds
	}{
		{"CA file and client cert", addr, []Option{WithCA(caFile), WithClientCertificate(certFile, keyFile)}, ""},
		{"CA pool and client cert", addr, []Option{WithCAPool(ca.pool()), WithClientCertificate(certFile, keyFile)}, ""},
		{"by DNS name", "localhost:" + port, []Option{WithCA(caFile), WithClientCertificate(certFile, keyFile)}, ""},
		{"server name set", addr, []Option{WithCA(caFile), WithClientCertificate(certFile, keyFile), WithServerName("node1.example")}, ""},
		{"wrong CA", addr, []Option{WithCA(otherCAFile), WithClientCertificate(certFile, keyFile)}, "certificate signed by unknown authority"},
		{"system roots", addr, []Option{WithClientCertificate(certFile, keyFile)}, "certificate signed by unknown authority"},
		{"server name mismatch", addr, []Option{WithCA(caFile), WithClientCertificate(certFile, keyFile), WithServerName("node2.example")}, "node2.example"},
		{"client cert of another CA", addr, []Option{WithCA(caFile), WithClientCertificate(otherCert, otherKey)}, "unavailable"},
		{"no client cert in dev mode against mTLS", addr, []Option{WithCA(caFile), WithInsecureNoClientCert()}, "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := dial(t, tc.address, append(tc.opts, WithoutRetries())...)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			resp, err := cl.Tasks.GetTask(ctx, &pcnodev1.GetTaskRequest{TaskId: "t1"})
			if tc.wantErr == "" {
				if err != nil || resp.GetTask().GetSubmittedBy() != "scheduler" {
					t.Fatalf("GetTask() = %v, %v; want the task seen by CN scheduler", resp, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("GetTask() succeeded, want an error containing %q", tc.wantErr)
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("GetTask() = %v, want ErrUnavailable", err)
			}
			t.Logf("GetTask() = %v", err)
			if tc.wantErr != "unavailable" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("GetTask() = %v, want it to say %q", err, tc.wantErr)
			}
		})
	}
}

// TestDialTLS12Refused: the client insists on TLS 1.3.
func TestDialTLS12Refused(t *testing.T) {
	ca := newTestCA(t, "node CA")
	cfg := serverTLS(t, ca, ca)
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	addr := serveTLS(t, &fakeTasks{getTask: echoCN}, cfg)
	c, k := ca.issue(t, "scheduler", false)
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	// Even a caller's own config asking for TLS 1.2 gets 1.3.
	cl := dial(t, addr, WithTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: ca.pool(), Certificates: []tls.Certificate{pair}}), WithoutRetries())
	_, err = cl.Tasks.GetTask(t.Context(), &pcnodev1.GetTaskRequest{TaskId: "t1"})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("GetTask(TLS 1.2 server) = %v, want a handshake refused for its protocol version", err)
	}
}

// TestDialOptionErrors: what Dial itself refuses, each with a reason.
func TestDialOptionErrors(t *testing.T) {
	ca := newTestCA(t, "node CA")
	dir := t.TempDir()
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	notPEM := writeFile(t, dir, "junk.pem", []byte("not a certificate"))
	c, k := ca.issue(t, "scheduler", false)
	certFile, keyFile := writeFile(t, dir, "cert.pem", c), writeFile(t, dir, "key.pem", k)
	for _, tc := range []struct {
		name, address string
		opts          []Option
		want          string
	}{
		{"TCP without client cert", "node1:7777", []Option{WithCA(caFile)}, "WithInsecureNoClientCert"},
		{"missing CA file", "node1:7777", []Option{WithCA(dir + "/nope.pem"), WithClientCertificate(certFile, keyFile)}, "nope.pem"},
		{"CA file without PEM", "node1:7777", []Option{WithCA(notPEM), WithClientCertificate(certFile, keyFile)}, "no PEM certificate"},
		{"cert without key", "node1:7777", []Option{WithCA(caFile), WithClientCertificate(certFile, "")}, "both a certificate and a key"},
		{"key of another cert", "node1:7777", []Option{WithCA(caFile), WithClientCertificate(certFile, caFile)}, "key"},
		{"TLS options on a socket", "/run/pcnode/pcnoded.sock", []Option{WithCA(caFile)}, "TLS options are for host:port"},
		{"bad keepalive", "/run/pcnode/pcnoded.sock", []Option{WithKeepalive(0, time.Second, false)}, "positive"},
		{"bad retry policy", "/run/pcnode/pcnoded.sock", []Option{WithRetryPolicy(9, time.Second, time.Second)}, "attempts 9"},
		{"empty", "", nil, "address is empty"},
		{"no port", "node1", nil, "host:port"},
		{"port zero", "node1:0", nil, "port \"0\""},
		{"port too big", "node1:70000", nil, "port \"70000\""},
		{"relative unix", "unix:pcnoded.sock", nil, "absolute path"},
		{"unix URL with host", "unix://host/sock", nil, "absolute path"},
		{"host with slash", "a/b:80", nil, "host name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := Dial(tc.address, tc.opts...)
			if err == nil {
				cl.Close()
				t.Fatalf("Dial(%q) succeeded, want an error saying %q", tc.address, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Dial(%q) = %v, want it to say %q", tc.address, err, tc.want)
			}
		})
	}
	for _, addr := range []string{"/run/pcnode/pcnoded.sock", "unix:///run/pcnode/pcnoded.sock", "unix:/run/pcnode/pcnoded.sock"} {
		cl, err := Dial(addr)
		if err != nil {
			t.Errorf("Dial(%q) = %v, want a lazy connection", addr, err)
			continue
		}
		cl.Close()
	}
}

// TestClientCertificateReloaded: the certificate files are read again for
// a new connection, so a certificate replaced on disk is used without a
// new Dial.
func TestClientCertificateReloaded(t *testing.T) {
	ca, otherCA := newTestCA(t, "node CA"), newTestCA(t, "other CA")
	dir := t.TempDir()
	addr := serveTLS(t, &fakeTasks{getTask: echoCN}, serverTLS(t, ca, ca))
	oc, ok := otherCA.issue(t, "before", false)
	certFile, keyFile := writeFile(t, dir, "cert.pem", oc), writeFile(t, dir, "key.pem", ok)
	cl := dial(t, addr, WithCAPool(ca.pool()), WithClientCertificate(certFile, keyFile), WithoutRetries())
	if _, err := cl.Tasks.GetTask(t.Context(), &pcnodev1.GetTaskRequest{TaskId: "t1"}); err == nil {
		t.Fatal("GetTask() with a certificate of another CA succeeded")
	}
	c, k := ca.issue(t, "after", false)
	writeFile(t, dir, "cert.pem", c)
	writeFile(t, dir, "key.pem", k)
	cl.Conn().ResetConnectBackoff()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	resp, err := cl.Tasks.GetTask(ctx, &pcnodev1.GetTaskRequest{TaskId: "t1"}, grpc.WaitForReady(true))
	if err != nil || resp.GetTask().GetSubmittedBy() != "after" {
		t.Fatalf("GetTask() after the certificate was replaced = %v, %v; want it seen as CN after", resp, err)
	}
}

// TestDialDevModeNoClientCert: against a daemon that does not ask for
// client certificates, WithInsecureNoClientCert connects, still over TLS
// with the server verified.
func TestDialDevModeNoClientCert(t *testing.T) {
	ca, otherCA := newTestCA(t, "node CA"), newTestCA(t, "other CA")
	cfg := serverTLS(t, ca, ca)
	cfg.ClientAuth = tls.NoClientCert
	addr := serveTLS(t, &fakeTasks{getTask: echoCN}, cfg)
	cl := dial(t, addr, WithCAPool(ca.pool()), WithInsecureNoClientCert(), WithoutRetries())
	if resp, err := cl.Tasks.GetTask(t.Context(), &pcnodev1.GetTaskRequest{TaskId: "t1"}); err != nil || resp.GetTask().GetId() != "t1" {
		t.Errorf("GetTask(dev mode) = %v, %v; want the task", resp, err)
	}
	wrong := dial(t, addr, WithCAPool(otherCA.pool()), WithInsecureNoClientCert(), WithoutRetries())
	if _, err := wrong.Tasks.GetTask(t.Context(), &pcnodev1.GetTaskRequest{TaskId: "t1"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("GetTask(dev mode, wrong CA) = %v, want the server refused", err)
	}
}
