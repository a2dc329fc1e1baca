package daemontest

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/daemon/config"
)

func TestConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cfg := Config(filepath.Join(dir, "state"), filepath.Join(dir, "api.sock"), "/run/c.sock", "e2e-x", []string{filepath.Join(dir, "data0")})
	cfg.Resources.MaxConcurrent = 2
	cfg.Registries = []config.Registry{{Host: "127.0.0.1:5000", Username: "u", Password: "p", Insecure: true}}
	path := filepath.Join(dir, "pcnoded.toml")
	if err := writeConfig(path, cfg); err != nil {
		t.Fatalf("writeConfig(%q) = %v", path, err)
	}
	got, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load(%q) = %v", path, err)
	}
	// Quantities compare by value, not by their cached string form.
	opt := cmp.Comparer(func(a, b config.Quantity) bool { return a.Cmp(b.Quantity) == 0 })
	if diff := cmp.Diff(cfg, got, opt); diff != "" {
		t.Errorf("config.Load(writeConfig(cfg)) differs (-want +got):\n%s", diff)
	}
}

func TestConfigInvalid(t *testing.T) {
	cfg := Config("relative", "/tmp/x.sock", "/run/c.sock", "ns", nil)
	if err := writeConfig(filepath.Join(t.TempDir(), "c.toml"), cfg); err == nil {
		t.Errorf("writeConfig(state_dir %q) = nil, want an error", "relative")
	}
}

func TestKaapanaDummyProcessingContainer(t *testing.T) {
	var pc struct {
		Templates []struct {
			Identifier string `json:"identifier"`
			Command    []string
		} `json:"templates"`
	}
	if err := json.Unmarshal(KaapanaDummyProcessingContainer(), &pc); err != nil {
		t.Fatalf("KaapanaDummyProcessingContainer() is not JSON: %v", err)
	}
	var got [][]string
	for _, tpl := range pc.Templates {
		got = append(got, append([]string{tpl.Identifier}, tpl.Command...))
	}
	want := [][]string{{"upstream", "python3", "-u", "upstream.py"}, {"downstream", "python3", "-u", "downstream.py"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("KaapanaDummyProcessingContainer() templates (-want +got):\n%s", diff)
	}
	a := KaapanaDummyProcessingContainer()
	a[0] = 'x'
	if b := KaapanaDummyProcessingContainer(); b[0] != '{' {
		t.Errorf("KaapanaDummyProcessingContainer() shares its bytes with callers")
	}
}
