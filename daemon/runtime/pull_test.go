package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const testSecret = "s3cr3t-Pa55"

func TestAuthNeverPrintsPassword(t *testing.T) {
	a := Auth{Username: "alice", Password: testSecret}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("auth", "auth", a, "ptr", &a)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("auth", "auth", a)
	for _, s := range []string{
		fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a), fmt.Sprintf("%v %+v", &a, &a),
		fmt.Sprintf("%v", Config{Registries: map[string]Auth{"r": a}}),
		fmt.Sprintf("%+v", Config{Registries: map[string]Auth{"r": a}}),
		logs.String(),
	} {
		if strings.Contains(s, testSecret) {
			t.Errorf("printed Auth %q contains the password", s)
		}
		if !strings.Contains(s, "alice") {
			t.Errorf("printed Auth %q lacks the user name", s)
		}
	}
}

func TestRedactErr(t *testing.T) {
	inner := fmt.Errorf("GET https://alice:%s@registry/v2/: %w", testSecret, ErrUnauthorized)
	err := redactErr(fmt.Errorf("pull x: %w", inner), testSecret)
	if strings.Contains(err.Error(), testSecret) {
		t.Fatalf("redactErr(...) = %q, still holds the secret", err)
	}
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("redactErr(...) = %v, lost ErrUnauthorized", err)
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), testSecret) {
			t.Fatalf("unwrapping redactErr(...) reaches %q", e)
		}
	}
	plain := fmt.Errorf("pull x: %w", ErrImageNotFound)
	if got := redactErr(plain, testSecret); got != plain {
		t.Fatalf("redactErr(%v) = %v, want it unchanged", plain, got)
	}
}

func TestCredentialsAndInsecure(t *testing.T) {
	c := &Containerd{cfg: Config{
		InsecureRegistries: []string{"127.0.0.1:5000", "Docker.io"},
		Registries: map[string]Auth{
			"registry.example.com": {Username: "cfg", Password: "p"},
			"docker.io":            {Username: "hub", Password: "q"},
		},
	}}
	tests := []struct {
		host     string
		call     *Auth
		wantUser string
		wantOK   bool
	}{
		{"registry.example.com", nil, "cfg", true},
		{"registry.example.com", &Auth{Username: "call", Password: "x"}, "call", true},
		{"registry.example.com", &Auth{}, "cfg", true},
		{"other.example.com", nil, "", false},
		{"registry-1.docker.io", nil, "hub", true},
		{"docker.io", nil, "hub", true},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			a, ok := c.credentials(tt.host, tt.call)
			if a.Username != tt.wantUser || ok != tt.wantOK {
				t.Fatalf("credentials(%q, %v) = %v, %v, want user %q, %v", tt.host, tt.call, a, ok, tt.wantUser, tt.wantOK)
			}
		})
	}
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.0.0.1:5001": false, "127.0.0.1": false,
		"docker.io": true, "registry-1.docker.io": true, "registry.example.com": false,
	} {
		if got := c.insecure(host); got != want {
			t.Errorf("insecure(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestRegistryHostsSchemeAndCreds(t *testing.T) {
	c := &Containerd{cfg: Config{InsecureRegistries: []string{"127.0.0.1:5000"}}}
	tests := []struct {
		host, wantHost, wantScheme string
	}{
		{"127.0.0.1:5000", "127.0.0.1:5000", "http"},
		{"registry.example.com", "registry.example.com", "https"},
		{"docker.io", "registry-1.docker.io", "https"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			hosts, err := c.registryHosts(tt.host, Auth{Username: "u", Password: "p"}, true)(tt.host)
			if err != nil || len(hosts) != 1 {
				t.Fatalf("registryHosts(%q) = %v, %v, want one host", tt.host, hosts, err)
			}
			if h := hosts[0]; h.Host != tt.wantHost || h.Scheme != tt.wantScheme || h.Path != "/v2" {
				t.Fatalf("registryHosts(%q) = %s://%s%s, want %s://%s/v2", tt.host, h.Scheme, h.Host, h.Path, tt.wantScheme, tt.wantHost)
			}
		})
	}
}

func TestRealmPolicy(t *testing.T) {
	tests := []struct {
		registry, scheme, realm string
		ok                      bool
	}{
		{"registry-1.docker.io", "https", "https://auth.docker.io/token", true},
		{"reg.example.org:5000", "https", "https://reg.example.org:5001/token", true},
		{"reg.example.org:5000", "https", "http://reg.example.org:5000/token", false}, // downgrade
		{"reg.example.org:5000", "https", "http://auth.example.org/token", false},
		{"127.0.0.1:5000", "http", "http://127.0.0.1:5001/token", true},
		{"127.0.0.1:5000", "http", "HTTP://127.0.0.1/token", true},
		{"127.0.0.1:5000", "http", "http://127.0.0.2:5001/token", false},
		{"127.0.0.1:5000", "http", "http://127.0.0.1.evil.example/token", false},
		{"127.0.0.1:5000", "http", "https://127.0.0.2/token", true},
		{"reg.example.org", "https", "ftp://reg.example.org/token", false},
		{"reg.example.org", "https", "/token", false},
		{"reg.example.org", "https", "", false},
		{"reg.example.org", "https", "https://user:pw@auth.example.org/token", false},
		{"[::1]:5000", "http", "http://[::1]:6000/token", true},
	}
	for _, tt := range tests {
		err := realmPolicy{registry: tt.registry, scheme: tt.scheme}.check(tt.realm)
		if (err == nil) != tt.ok {
			t.Errorf("realmPolicy{%s %s}.check(%q) = %v, want ok %v", tt.scheme, tt.registry, tt.realm, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tt.registry)) {
			t.Errorf("realmPolicy.check(%q) = %v, want ErrUnauthorized naming %s", tt.realm, err, tt.registry)
		}
	}
}
