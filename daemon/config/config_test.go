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
		{"log driver relative", "[logs]\ndriver_path = \"bin/pcnode-logd\"\n", "logs.driver_path"},
		{"max output files zero", "[tasks]\nmax_output_files = 0\n", "tasks.max_output_files"},
		{"max output files huge", "[tasks]\nmax_output_files = 20000000\n", "tasks.max_output_files"},
		{"watch history too small", "[tasks]\nwatch_history = 99\n", "tasks.watch_history"},
		{"watch history huge", "[tasks]\nwatch_history = 10000001\n", "tasks.watch_history"},
		{"watch history negative", "[tasks]\nwatch_history = -1\n", "tasks.watch_history"},
		{"max output path bytes tiny", "[tasks]\nmax_output_path_bytes = \"1Ki\"\n", "tasks.max_output_path_bytes"},
		{"max output path bytes huge", "[tasks]\nmax_output_path_bytes = \"2Gi\"\n", "tasks.max_output_path_bytes"},
		{"default user name", "[tasks]\ndefault_user = \"nobody\"\n", "tasks.default_user"},
		{"default user no gid", "[tasks]\ndefault_user = \"1000\"\n", "tasks.default_user"},
		{"default user root", "[tasks]\ndefault_user = \"0:0\"\n", "tasks.default_user"},
		{"default user root gid", "[tasks]\ndefault_user = \"1000:0\"\n", "tasks.default_user"},
		{"default user signed", "[tasks]\ndefault_user = \"+1000:1000\"\n", "tasks.default_user"},
		{"default user overflow", "[tasks]\ndefault_user = \"4294967296:1\"\n", "tasks.default_user"},
		{"default user -1", "[tasks]\ndefault_user = \"4294967295:1\"\n", "tasks.default_user"},
		{"default memory limit tiny", "[tasks]\ndefault_memory_limit = \"1Mi\"\n", "tasks.default_memory_limit"},
		{"default memory limit bad", "[tasks]\ndefault_memory_limit = \"lots\"\n", "default_memory_limit"},
		{"default cpu limit tiny", "[tasks]\ndefault_cpu_limit = \"1m\"\n", "tasks.default_cpu_limit"},
		{"default cpu limit negative", "[tasks]\ndefault_cpu_limit = \"-1\"\n", "negative"},
		{"spec bytes zero", "[limits]\nmax_spec_bytes = \"0\"\n", "limits.max_spec_bytes"},
		{"spec bytes above gRPC's message size", "[limits]\nmax_spec_bytes = \"5Mi\"\n", "limits.max_spec_bytes"},
		{"env entries zero", "[limits]\nmax_env_entries = 0\n", "limits.max_env_entries"},
		{"env choices negative", "[limits]\nmax_env_choices = -1\n", "limits.max_env_choices"},
		{"regex insts tiny", "[limits]\nmax_regex_insts = 1\n", "limits.max_regex_insts"},
		{"exec bytes above the kernel's", "[limits]\nmax_exec_bytes = \"3Mi\"\n", "limits.max_exec_bytes"},
		{"min memory one byte", "[limits]\nmin_memory = \"1\"\n", "limits.min_memory"},
		{"min cpu above max", "[limits]\nmin_cpu = \"8\"\nmax_cpu = \"4\"\n", "limits.min_cpu"},
		{"unknown limit", "[limits]\nmax_everything = 1\n", "limits.max_everything"},
		{"no streams per client", "[streams]\nmax_per_client = 0\n", "streams.max_per_client: must be at least 1"},
		{"total below per client", "[streams]\nmax_per_client = 10\nmax_total = 9\n", "streams.max_total: must be between streams.max_per_client (10)"},
		{"total too large", "[streams]\nmax_total = 100001\n", "streams.max_total"},
		{"stream buffer too small", "[streams]\nbuffer_bytes = \"64Ki\"\n", "streams.buffer_bytes: must be between 65664"},
		{"stream buffer too large", "[streams]\nbuffer_bytes = \"3Mi\"\n", "streams.buffer_bytes"},
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
		{"tcp without cert", "[api]\ntcp_address = \"127.0.0.1:7443\"\nclient_ca_file = \"/ca.pem\"\ntls_key_file = \"/k.pem\"\n", "api.tls_cert_file: must be set"},
		{"tcp without key", "[api]\ntcp_address = \"127.0.0.1:7443\"\nclient_ca_file = \"/ca.pem\"\ntls_cert_file = \"/c.pem\"\n", "api.tls_key_file: must be set"},
		{"tcp without client ca", "[api]\ntcp_address = \"127.0.0.1:7443\"\ntls_cert_file = \"/c.pem\"\ntls_key_file = \"/k.pem\"\n", "api.client_ca_file: must be set"},
		{"tcp address without port", "[api]\ntcp_address = \"127.0.0.1\"\ntls_cert_file = \"/c.pem\"\ntls_key_file = \"/k.pem\"\nclient_ca_file = \"/ca.pem\"\n", "api.tcp_address"},
		{"tcp port zero", "[api]\ntcp_address = \":0\"\ntls_cert_file = \"/c.pem\"\ntls_key_file = \"/k.pem\"\nclient_ca_file = \"/ca.pem\"\n", "api.tcp_address"},
		{"relative cert", "[api]\ntls_cert_file = \"c.pem\"\n", "api.tls_cert_file"},
		{"reload too often", "[api]\ntls_reload_interval = \"1ms\"\n", "api.tls_reload_interval"},
		{"secret grant bad identity", "[[secrets.grants]]\nidentity = \"airflow\"\nsecrets = [\"*\"]\n", "secrets.grants[0].identity"},
		{"secret grant no secrets", "[[secrets.grants]]\nidentity = \"uid:0\"\nsecrets = []\n", "secrets.grants[0].secrets"},
		{"secret grant bad pattern", "[[secrets.grants]]\nidentity = \"uid:0\"\nsecrets = [\"a[\"]\n", "secrets.grants[0].secrets[0]"},
		{"secret grant slash", "[[secrets.grants]]\nidentity = \"uid:0\"\nsecrets = [\"x\", \"../*\"]\n", "secrets.grants[0].secrets[1]"},
		{"role unknown", "[[api.roles]]\nidentity = \"uid:0\"\nrole = \"root\"\n", "api.roles[0].role"},
		{"identity bare name", "[[api.roles]]\nidentity = \"scheduler\"\nrole = \"viewer\"\n", "api.roles[0].identity"},
		{"identity uid name", "[[api.roles]]\nidentity = \"uid:root\"\nrole = \"viewer\"\n", "api.roles[0].identity"},
		{"identity gid overflow", "[[api.roles]]\nidentity = \"gid:4294967296\"\nrole = \"viewer\"\n", "api.roles[0].identity"},
		{"identity empty cn", "[[api.roles]]\nidentity = \"cn:\"\nrole = \"viewer\"\n", "api.roles[0].identity"},
		{"identity with tab", "[[api.roles]]\nidentity = \"cn:a\\tb\"\nrole = \"viewer\"\n", "api.roles[0].identity"},
		{"identity twice", "[[api.roles]]\nidentity = \"dns:a\"\nrole = \"viewer\"\n[[api.roles]]\nidentity = \"dns:a\"\nrole = \"admin\"\n", "api.roles[1].identity: \"dns:a\" is already bound by api.roles[0]"},
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

func TestLoadTaskDefaults(t *testing.T) {
	cfg, err := Load(write(t, "[tasks]\ndefault_user = \"1000:2000\"\ndefault_memory_limit = \"0\"\ndefault_cpu_limit = \"500m\"\nmax_output_files = 5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if uid, gid, err := ParseUser(cfg.Tasks.DefaultUser); uid != 1000 || gid != 2000 || err != nil {
		t.Errorf("ParseUser(%q) = %d, %d, %v, want 1000, 2000, nil", cfg.Tasks.DefaultUser, uid, gid, err)
	}
	if got := cfg.Tasks.DefaultMemoryLimit.Bytes(); got != 0 {
		t.Errorf("default_memory_limit = %d, want 0", got)
	}
	if got := cfg.Tasks.DefaultCPULimit.Millis(); got != 500 {
		t.Errorf("default_cpu_limit = %dm, want 500m", got)
	}
	if got := cfg.Tasks.MaxOutputFiles; got != 5 {
		t.Errorf("max_output_files = %d, want 5", got)
	}
	d := DefaultConfig()
	if d.Tasks.DefaultMemoryLimit.Bytes() != 4<<30 || d.Tasks.DefaultCPULimit.Millis() != 2000 || d.Tasks.DefaultUser != "" {
		t.Errorf("default task limits = %s, %s, user %q; want 4Gi, 2, image's user", d.Tasks.DefaultMemoryLimit.String(), d.Tasks.DefaultCPULimit.String(), d.Tasks.DefaultUser)
	}
}

func TestLoadAPI(t *testing.T) {
	cfg, err := Load(write(t, `[api]
tcp_address = "127.0.0.1:7443"
tls_cert_file = "/etc/pcnode/tls/server.pem"
tls_key_file = "/etc/pcnode/tls/server-key.pem"
client_ca_file = "/etc/pcnode/tls/ca.pem"
[[api.roles]]
identity = "spiffe://example.org/scheduler"
role = "submitter"
[[api.roles]]
identity = "gid:1000"
role = "viewer"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []RoleBinding{{Identity: "spiffe://example.org/scheduler", Role: "submitter"}, {Identity: "gid:1000", Role: "viewer"}}
	if diff := cmp.Diff(want, cfg.API.Roles); diff != "" {
		t.Errorf("api.roles from a file replace the default (-want +got):\n%s", diff)
	}
	if d := DefaultConfig().API; len(d.Roles) != 1 || d.Roles[0] != (RoleBinding{Identity: "uid:0", Role: "admin"}) || d.TCPAddress != "" || d.InsecureTCPWithoutClientAuth {
		t.Errorf("default [api] = %+v, want uid:0 admin only, no TCP, client auth on", d)
	}
	// The development switch stands in for the client CA.
	if _, err := Load(write(t, "[api]\ntcp_address = \"[::1]:7443\"\ntls_cert_file = \"/c.pem\"\ntls_key_file = \"/k.pem\"\ninsecure_tcp_without_client_auth = true\n")); err != nil {
		t.Errorf("Load(insecure switch without client CA) = %v, want nil", err)
	}
}

func TestValidIdentity(t *testing.T) {
	for _, s := range []string{"uid:0", "gid:4294967295", "dns:node-1.example.org", "cn:scheduler", "spiffe://example.org/ns/a/sa/b", "urn:example:x", "anonymous", "cn:Jane Doe"} {
		if err := ValidIdentity(s); err != nil {
			t.Errorf("ValidIdentity(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", "uid:", "uid:-1", "gid:x", "dns:", "spiffe", "cn:a\tb", "cn:a\u202eb", " cn:a", strings.Repeat("x", MaxIdentityBytes+1)} {
		if err := ValidIdentity(s); err == nil {
			t.Errorf("ValidIdentity(%q) = nil, want an error", s)
		}
	}
}

// TestSecretGrantsReplaceDefault: a file that sets [[secrets.grants]] gets
// exactly its own grants, not the default uid:0 one besides.
func TestSecretGrantsReplaceDefault(t *testing.T) {
	c, err := Load(write(t, "[[secrets.grants]]\nidentity = \"spiffe://x/airflow\"\nsecrets = [\"kaapana-*\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []SecretGrant{{Identity: "spiffe://x/airflow", Secrets: []string{"kaapana-*"}}}
	if diff := cmp.Diff(want, c.Secrets.Grants); diff != "" {
		t.Errorf("grants (-want +got):\n%s", diff)
	}
}

func TestMetricsConfig(t *testing.T) {
	tests := []struct {
		name, text, want string // want "": valid
	}{
		{"default loopback", "", ""},
		{"off", "[metrics]\naddress = \"off\"\n", ""},
		{"empty", "[metrics]\naddress = \"\"\n", ""},
		{"localhost", "[metrics]\naddress = \"localhost:9100\"\n", ""},
		{"ipv6 loopback", "[metrics]\naddress = \"[::1]:9464\"\n", ""},
		{"127/8", "[metrics]\naddress = \"127.0.0.2:9464\"\n", ""},
		{"no port", "[metrics]\naddress = \"127.0.0.1\"\n", "metrics.address"},
		{"port zero", "[metrics]\naddress = \"127.0.0.1:0\"\n", "metrics.address"},
		{"port too big", "[metrics]\naddress = \"127.0.0.1:65536\"\n", "metrics.address"},
		{"port signed", "[metrics]\naddress = \"127.0.0.1:+80\"\n", "metrics.address"},
		{"port name", "[metrics]\naddress = \"127.0.0.1:http\"\n", "metrics.address"},
		{"host with slash", "[metrics]\naddress = \"a/b:9464\"\n", "metrics.address"},
		{"all interfaces without TLS", "[metrics]\naddress = \":9464\"\n", "metrics.tls_cert_file"},
		{"0.0.0.0 without TLS", "[metrics]\naddress = \"0.0.0.0:9464\"\n", "metrics.tls_cert_file"},
		{"host name without TLS", "[metrics]\naddress = \"node1.example.org:9464\"\n", "metrics.tls_cert_file"},
		{"public with TLS", "[metrics]\naddress = \"0.0.0.0:9464\"\ntls_cert_file = \"/etc/pcnode/m.pem\"\ntls_key_file = \"/etc/pcnode/m-key.pem\"\n", ""},
		{"cert without key", "[metrics]\naddress = \"0.0.0.0:9464\"\ntls_cert_file = \"/etc/pcnode/m.pem\"\n", "metrics.tls_key_file"},
		{"relative cert", "[metrics]\ntls_cert_file = \"m.pem\"\ntls_key_file = \"/k.pem\"\n", "metrics.tls_cert_file"},
		{"client CA without TLS", "[metrics]\nclient_ca_file = \"/etc/pcnode/ca.pem\"\n", "metrics.client_ca_file"},
		{"unknown key", "[metrics]\nlisten = \"x\"\n", "unknown keys: metrics.listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(write(t, tt.text))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Load(%q) = %v, want no error", tt.text, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Load(%q) = %v, want an error naming %s", tt.text, err, tt.want)
			}
		})
	}
	c := DefaultConfig()
	if !c.Metrics.Enabled() || !c.Metrics.Loopback() || c.Metrics.Address != DefaultMetricsAddress {
		t.Errorf("default metrics = %+v, want enabled on loopback %s", c.Metrics, DefaultMetricsAddress)
	}
}

func TestStaticGPUReadings(t *testing.T) {
	base := "[gpu]\nbackend = \"static\"\n[[gpu.static]]\nuuid = \"GPU-1\"\nmemory = \"16Gi\"\n"
	for _, tt := range []struct{ name, extra, want string }{
		{"all set", "memory_used = \"1Gi\"\nutilization_percent = 40\ntemperature_celsius = 55\npower_draw_watts = 120\n", ""},
		{"used above total", "memory_used = \"17Gi\"\n", "gpu.static[0].memory_used"},
		{"utilisation", "utilization_percent = 101\n", "gpu.static[0].utilization_percent"},
		{"temperature", "temperature_celsius = 500\n", "gpu.static[0].temperature_celsius"},
		{"power", "power_draw_watts = -1\n", "gpu.static[0].power_draw_watts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(write(t, base+tt.extra))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Load = %v, want no error", err)
			case tt.want == "" && (c.GPU.Static[0].UtilizationPercent == nil || *c.GPU.Static[0].UtilizationPercent != 40):
				t.Errorf("utilization_percent = %v, want 40", c.GPU.Static[0].UtilizationPercent)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Load = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}
