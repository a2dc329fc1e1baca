package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"

	"github.com/pcnode/pcnode/client"
)

// TestResolveTarget checks the connection settings: flags win over the
// environment, the environment over the default socket, and combinations
// that cannot work are usage errors naming what to set.
func TestResolveTarget(t *testing.T) {
	type want struct {
		Address, AddressFrom string
		Unix                 bool
		CA, CAFrom           string
		Cert, Key, Name      string
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    want
		wantErr string
	}{
		{name: "default socket", want: want{Address: client.DefaultSocket, AddressFrom: "default", Unix: true}},
		{name: "env address", env: map[string]string{envAddress: "/tmp/p.sock"}, want: want{Address: "/tmp/p.sock", AddressFrom: "$PCNODE_ADDRESS", Unix: true}},
		{name: "flag wins over env", args: []string{"--address", "unix:///run/x.sock"}, env: map[string]string{envAddress: "/tmp/p.sock"},
			want: want{Address: "unix:///run/x.sock", AddressFrom: "--address", Unix: true}},
		{name: "tcp from env with env TLS", env: map[string]string{envAddress: "node1:7443", envTLSCA: "/ca.pem", envTLSCert: "/c.pem", envTLSKey: "/k.pem", envTLSServerName: "node1.example.org"},
			want: want{Address: "node1:7443", AddressFrom: "$PCNODE_ADDRESS", CA: "/ca.pem", CAFrom: "$PCNODE_TLS_CA", Cert: "/c.pem", Key: "/k.pem", Name: "node1.example.org"}},
		{name: "TLS flags win over env", args: []string{"--address", "10.0.0.5:7443", "--tls-ca", "/flag-ca.pem", "--tls-server-name", "n"},
			env:  map[string]string{envAddress: "/tmp/p.sock", envTLSCA: "/env-ca.pem", envTLSServerName: "env-name"},
			want: want{Address: "10.0.0.5:7443", AddressFrom: "--address", CA: "/flag-ca.pem", CAFrom: "--tls-ca", Name: "n"}},
		{name: "ipv6", args: []string{"--address", "[::1]:7443", "--tls-ca", "/ca.pem"}, want: want{Address: "[::1]:7443", AddressFrom: "--address", CA: "/ca.pem", CAFrom: "--tls-ca"}},
		{name: "env TLS ignored for a socket", args: []string{"--address", "/run/p.sock"}, env: map[string]string{envTLSCA: "/ca.pem"},
			want: want{Address: "/run/p.sock", AddressFrom: "--address", Unix: true}},
		{name: "tcp without TLS", args: []string{"--address", "node1:7443"}, wantErr: `--address "node1:7443" is a TCP address, which pcnoded serves only over TLS: set --tls-ca ($PCNODE_TLS_CA)`},
		{name: "tcp from env without TLS", env: map[string]string{envAddress: "node1:7443"}, wantErr: `$PCNODE_ADDRESS "node1:7443" is a TCP address`},
		{name: "cert without key", args: []string{"--address", "node1:7443", "--tls-ca", "/ca", "--tls-cert", "/c"}, wantErr: "needs both --tls-cert ($PCNODE_TLS_CERT) and --tls-key"},
		{name: "TLS flag with a socket", args: []string{"--address", "/run/p.sock", "--tls-ca", "/ca"}, wantErr: `--tls-ca applies to host:port addresses only; --address "/run/p.sock" is a unix socket`},
		{name: "no port", args: []string{"--address", "node1"}, wantErr: `--address "node1": want an absolute unix socket path`},
		{name: "bad port", args: []string{"--address", "node1:99999", "--tls-ca", "/ca"}, wantErr: "want an absolute unix socket path"},
		{name: "relative socket", args: []string{"--address", "pcnoded.sock"}, wantErr: "want an absolute unix socket path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := &cobra.Command{Use: "x"}
			addConnFlags(cmd)
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := resolveTarget(cmd.Flags(), func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				var ue *usageError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errorAs(err, &ue) {
					t.Fatalf("resolveTarget(%q, %v) = %v, want a usage error containing %q", tt.args, tt.env, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("resolveTarget(%q, %v) = %v", tt.args, tt.env, err)
			}
			g := want{got.address.value, got.address.source, got.unix, got.ca.value, got.ca.source, got.cert.value, got.key.value, got.serverName.value}
			if d := cmp.Diff(tt.want, g); d != "" {
				t.Errorf("resolveTarget(%q, %v) (-want +got):\n%s", tt.args, tt.env, d)
			}
		})
	}
}

func errorAs[T error](err error, target *T) bool { return errors.As(err, target) }
