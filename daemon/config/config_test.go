package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func write(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pcnoded.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultTOMLIsDefaultConfig(t *testing.T) {
	got, err := Load(write(t, DefaultTOML))
	if err != nil {
		t.Fatalf("Load(DefaultTOML) = %v", err)
	}
	want := DefaultConfig()
	// Compare through their TOML encodings: Quantity keeps a cached string form.
	gb, _ := got.Encode()
	wb, _ := want.Encode()
	if diff := cmp.Diff(string(wb), string(gb)); diff != "" {
		t.Errorf("DefaultTOML differs from DefaultConfig (-want +got):\n%s", diff)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown key", "[node]\nnmae = \"x\"\n", "unknown keys: node.nmae"},
		{"relative state dir", "[node]\nstate_dir = \"var/lib\"\n", "node.state_dir"},
		{"data root slash", "[paths]\ndata_roots = [\"/\"]\n", "paths.data_roots[0]"},
		{"data root unclean", "[paths]\ndata_roots = [\"/data/../etc\"]\n", "paths.data_roots[0]"},
		{"bad quantity", "[resources]\nreserved_memory = \"lots\"\n", "reserved_memory"},
		{"negative duration", "[tasks]\nretention = \"-1h\"\n", "negative"},
		{"bad backend", "[gpu]\nbackend = \"cuda\"\n", "gpu.backend"},
		{"registry host", "[[registries]]\nhost = \"https://x\"\n", "registries[0].host"},
		{"log files", "[logs]\nmax_files = 0\n", "logs.max_files"},
		{"import bytes too small", "[images]\nmax_import_bytes = \"1Ki\"\n", "images.max_import_bytes"},
		{"import bytes zero", "[images]\nmax_import_bytes = \"0\"\n", "images.max_import_bytes"},
		{"import entries zero", "[images]\nmax_import_entries = 0\n", "images.max_import_entries"},
		{"import entries negative", "[images]\nmax_import_entries = -5\n", "images.max_import_entries"},
		{"blob over import", "[images]\nmax_import_bytes = \"1Gi\"\nmax_blob_bytes = \"2Gi\"\n", "images.max_blob_bytes"},
		{"json over blob", "[images]\nmax_blob_bytes = \"1Mi\"\nmax_json_bytes = \"2Mi\"\n", "images.max_json_bytes"},
		{"json huge", "[images]\nmax_json_bytes = \"1Gi\"\n", "images.max_json_bytes"},
		{"json tiny", "[images]\nmax_json_bytes = \"1Ki\"\n", "images.max_json_bytes"},
		{"unpacked bytes tiny", "[images]\nmax_unpacked_bytes = \"10\"\n", "images.max_unpacked_bytes"},
		{"unpacked entries zero", "[images]\nmax_unpacked_entries = 0\n", "images.max_unpacked_entries"},
		{"compression ratio one", "[images]\nmax_compression_ratio = 1\n", "images.max_compression_ratio"},
		{"images unknown key", "[images]\nmax_layers = 3\n", "unknown keys: images.max_layers"},
		{"duplicate static gpu", "[[gpu.static]]\nuuid = \"GPU-1\"\n[[gpu.static]]\nuuid = \"GPU-1\"\n", "gpu.static[1].uuid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(write(t, tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load(%q) = %v, want error containing %q", tt.text, err, tt.want)
			}
		})
	}
}

func TestLoadOverrides(t *testing.T) {
	cfg, err := Load(write(t, "[paths]\ndata_roots = [\"/data\"]\n[resources]\nreserved_memory = \"2Gi\"\nmax_concurrent = 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Resources.ReservedMemory.Bytes(), int64(2<<30); got != want {
		t.Errorf("reserved_memory = %d, want %d", got, want)
	}
	if got := cfg.Resources.MaxConcurrent; got != 2 {
		t.Errorf("max_concurrent = %d, want 2", got)
	}
	if got, want := cfg.Images.MaxImportBytes.Bytes(), int64(32<<30); got != want {
		t.Errorf("images.max_import_bytes kept default = %d, want %d", got, want)
	}
	if got := cfg.Tasks.StopGracePeriod.Seconds(); got != 10 {
		t.Errorf("stop_grace_period kept default = %vs, want 10", got)
	}
}
