package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"
	"k8s.io/apimachinery/pkg/api/resource"
)

// DefaultPath is where pcnoded looks for its configuration file.
const DefaultPath = "/etc/pcnode/pcnoded.toml"

// Config is the whole configuration of pcnoded. Every key is documented in
// Default's output (`pcnoded config default`).
type Config struct {
	Node       Node       `toml:"node"`
	API        API        `toml:"api"`
	Metrics    Metrics    `toml:"metrics"`
	Containerd Containerd `toml:"containerd"`
	Registries []Registry `toml:"registries"`
	Paths      Paths      `toml:"paths"`
	Resources  Resources  `toml:"resources"`
	Tasks      Tasks      `toml:"tasks"`
	Logs       Logs       `toml:"logs"`
	Streams    Streams    `toml:"streams"`
	GPU        GPU        `toml:"gpu"`
	Limits     Limits     `toml:"limits"`
	Images     Images     `toml:"images"`
	Secrets    Secrets    `toml:"secrets"`
}

// Node identifies the node and where it keeps state.
type Node struct {
	Name     string            `toml:"name"`
	Labels   map[string]string `toml:"labels"`
	StateDir string            `toml:"state_dir"`
}

// API is where the gRPC API is served and who may call it.
type API struct {
	Socket      string `toml:"socket"`
	SocketGroup string `toml:"socket_group"`
	// TCPAddress is host:port of the TLS listener; empty: none.
	TCPAddress   string `toml:"tcp_address"`
	TLSCertFile  string `toml:"tls_cert_file"`
	TLSKeyFile   string `toml:"tls_key_file"`
	ClientCAFile string `toml:"client_ca_file"`
	// InsecureTCPWithoutClientAuth serves TCP (still over TLS) to clients
	// without a certificate; for development only.
	InsecureTCPWithoutClientAuth bool `toml:"insecure_tcp_without_client_auth"`
	// TLSReloadInterval is how often the TLS files are checked for changes.
	TLSReloadInterval Duration `toml:"tls_reload_interval"`
	// Roles maps client identities to roles; it replaces the default
	// list as a whole when a file sets it.
	Roles []RoleBinding `toml:"roles"`
}

// Metrics is the Prometheus listener (package daemon/metrics): a separate
// HTTP listener serving GET /metrics only.
type Metrics struct {
	// Address is host:port; empty or "off": no listener. A host that is
	// not a loopback address (127.0.0.0/8, ::1, localhost) needs TLS.
	Address string `toml:"address"`
	// TLSCertFile and TLSKeyFile serve HTTPS; needed when Address is not
	// loopback. ClientCAFile, when set, requires scrapers' certificates
	// signed by it.
	TLSCertFile  string `toml:"tls_cert_file"`
	TLSKeyFile   string `toml:"tls_key_file"`
	ClientCAFile string `toml:"client_ca_file"`
}

// DefaultMetricsAddress is where metrics are served by default: loopback,
// the port OpenTelemetry's Prometheus exporter also uses by convention.
const DefaultMetricsAddress = "127.0.0.1:9464"

// Enabled reports whether a metrics listener is configured.
func (m *Metrics) Enabled() bool { return m.Address != "" && m.Address != "off" }

// Loopback reports whether the address's host is a loopback address or
// "localhost". An empty host (all interfaces) is not.
func (m *Metrics) Loopback() bool {
	host, _, err := net.SplitHostPort(m.Address)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// TLS reports whether the listener serves HTTPS.
func (m *Metrics) TLS() bool { return m.TLSCertFile != "" || m.TLSKeyFile != "" }

// validate checks the [metrics] keys: a well-formed host:port, TLS files
// in pairs and absolute, and TLS whenever the host is not loopback.
func (m *Metrics) validate(bad func(key, format string, args ...any), abs func(key, p string)) {
	for key, p := range map[string]string{"metrics.tls_cert_file": m.TLSCertFile, "metrics.tls_key_file": m.TLSKeyFile, "metrics.client_ca_file": m.ClientCAFile} {
		if p != "" {
			abs(key, p)
		}
	}
	if !m.Enabled() {
		return
	}
	host, port, err := net.SplitHostPort(m.Address)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
		bad("metrics.address", "must be host:port with a port from 1 to 65535 (or \"off\"), got %q", m.Address)
		return
	}
	if strings.ContainsAny(host, "/ \t") || len(host) > 253 {
		bad("metrics.address", "host %q is not a host name or address", host)
		return
	}
	if (m.TLSCertFile == "") != (m.TLSKeyFile == "") {
		bad("metrics.tls_key_file", "metrics.tls_cert_file and metrics.tls_key_file must be set together")
	}
	if m.ClientCAFile != "" && !m.TLS() {
		bad("metrics.client_ca_file", "needs metrics.tls_cert_file and metrics.tls_key_file")
	}
	if !m.Loopback() && !m.TLS() {
		bad("metrics.tls_cert_file", "must be set when metrics.address %q is not a loopback address: metrics are served beyond this host only over TLS", m.Address)
	}
}

// RoleBinding gives one identity a role.
type RoleBinding struct {
	// Identity is "uid:N" or "gid:N" (a unix-socket peer), "spiffe://…"
	// or another URI (a client certificate's URI SAN), "dns:NAME" (its DNS
	// SAN), "cn:NAME" (its subject CN), or "anonymous" (a TCP client
	// without a certificate, only with InsecureTCPWithoutClientAuth).
	Identity string `toml:"identity"`
	// Role is "viewer", "submitter" or "admin".
	Role string `toml:"role"`
}

// Roles a RoleBinding may name, least to most.
var Roles = []string{"viewer", "submitter", "admin"}

// AnonymousIdentity is the identity of a TCP client that presented no
// certificate (served only with insecure_tcp_without_client_auth).
const AnonymousIdentity = "anonymous"

// MaxIdentityBytes is the longest identity accepted, in the config and
// from a certificate (SPIFFE IDs are at most 2048 bytes).
const MaxIdentityBytes = 2048

// Bounds of api.tls_reload_interval.
const (
	MinTLSReloadInterval = 100 * time.Millisecond
	MaxTLSReloadInterval = time.Hour
)

// ValidIdentity checks the spelling of an identity as [[api.roles]] names
// it, and returns why it is wrong.
func ValidIdentity(s string) error {
	if s == "" {
		return errors.New("must be set")
	}
	if len(s) > MaxIdentityBytes {
		return fmt.Errorf("is %d bytes, at most %d", len(s), MaxIdentityBytes)
	}
	if strings.TrimSpace(s) != s {
		return fmt.Errorf("%q starts or ends with a space", s)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r) {
			return fmt.Errorf("%q contains a control, format or line-separator character", s)
		}
	}
	if s == AnonymousIdentity {
		return nil
	}
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("%q: want uid:N, gid:N, dns:NAME, cn:NAME, a URI such as spiffe://domain/path, or anonymous", s)
	}
	switch kind {
	case "uid", "gid":
		if strings.TrimLeft(rest, "0123456789") != "" || rest == "" {
			return fmt.Errorf("%q: %s must be followed by a number", s, kind)
		}
		if _, err := strconv.ParseUint(rest, 10, 32); err != nil {
			return fmt.Errorf("%q: %s out of range", s, kind)
		}
	case "dns", "cn":
		if rest == "" {
			return fmt.Errorf("%q: %s must be followed by a name", s, kind)
		}
	default:
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" || u.Opaque == "" && u.Host == "" && u.Path == "" {
			return fmt.Errorf("%q: not a URI (want e.g. spiffe://domain/workload)", s)
		}
	}
	return nil
}

// Containerd is the containerd pcnoded drives.
type Containerd struct {
	Address     string `toml:"address"`
	Namespace   string `toml:"namespace"`
	Snapshotter string `toml:"snapshotter"`
}

// Registry holds credentials and transport policy for one registry host.
type Registry struct {
	Host     string `toml:"host"`
	Username string `toml:"username"`
	Password string `toml:"password"`
	Insecure bool   `toml:"insecure"`
}

// Paths is the host path policy.
type Paths struct {
	DataRoots []string `toml:"data_roots"`
}

// Resources is what the scheduler may hand out.
type Resources struct {
	ReservedCPU    Quantity `toml:"reserved_cpu"`
	ReservedMemory Quantity `toml:"reserved_memory"`
	DefaultCPU     Quantity `toml:"default_cpu"`
	DefaultMemory  Quantity `toml:"default_memory"`
	MaxConcurrent  int      `toml:"max_concurrent"`
	BackfillWindow Duration `toml:"backfill_window"`
}

// Tasks holds task defaults and policy.
type Tasks struct {
	StartupTimeout   Duration `toml:"startup_timeout"`
	ExecutionTimeout Duration `toml:"execution_timeout"`
	StopGracePeriod  Duration `toml:"stop_grace_period"`
	PidsLimit        int64    `toml:"pids_limit"`
	Retention        Duration `toml:"retention"`
	AllowHostNetwork bool     `toml:"allow_host_network"`
	// Allow32BitSyscalls lets containers make system calls through the
	// kernel's 32-bit entry points (i386 and x32 on amd64, arm on arm64).
	// Off, the seccomp filter admits only the node's native architecture.
	Allow32BitSyscalls bool `toml:"allow_32bit_syscalls"`
	ManifestWorkers    int  `toml:"manifest_workers"`
	// MaxOutputFiles caps the files listed in a task's output manifests,
	// all channels together, and MaxOutputPathBytes the bytes of their
	// paths.
	MaxOutputFiles     int64    `toml:"max_output_files"`
	MaxOutputPathBytes Quantity `toml:"max_output_path_bytes"`
	// DefaultUser is "UID:GID" (numeric, not root) for tasks whose spec
	// names no user; empty: the image's user.
	DefaultUser string `toml:"default_user"`
	// DefaultMemoryLimit and DefaultCPULimit bound tasks whose template and
	// spec name no limit ("0": no default limit).
	DefaultMemoryLimit Quantity `toml:"default_memory_limit"`
	DefaultCPULimit    Quantity `toml:"default_cpu_limit"`
	// WatchHistory is how many of the most recent state changes the node
	// keeps so that a WatchTasks can resume after a revision.
	WatchHistory int `toml:"watch_history"`
}

// Bounds of tasks.watch_history; the store enforces the same.
const (
	MinWatchHistory = 100
	MaxWatchHistory = 10_000_000
)

// Smallest non-zero default limits a node may configure.
const (
	MinDefaultMemoryLimit = 16 << 20 // bytes
	MinDefaultCPULimit    = 10       // milli-CPU, the runtime's smallest CPU quota
)

// ParseUser parses a numeric "UID:GID" as tasks.default_user takes it. Root
// (uid or gid 0) is refused: the option exists to run tasks as someone else.
func ParseUser(s string) (uid, gid uint32, err error) {
	u, g, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("must be numeric UID:GID, got %q", s)
	}
	uid, err1 := parseID(u)
	gid, err2 := parseID(g)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("must be numeric UID:GID with both from 1 to 4294967294, got %q", s)
	}
	return uid, gid, nil
}

func parseID(s string) (uint32, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a number")
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 || v == 1<<32-1 {
		return 0, fmt.Errorf("out of range")
	}
	return uint32(v), nil
}

// Logs is the task log capture policy.
type Logs struct {
	MaxFileSize Quantity `toml:"max_file_size"`
	MaxFiles    int      `toml:"max_files"`
	// DriverPath is the logging binary (cmd/pcnode-logd) the containerd
	// shim runs for each task; empty: pcnode-logd next to pcnoded. The
	// daemon checks the file when it starts (logs.ResolveDriverBinary).
	DriverPath string `toml:"driver_path"`
}

// Streams bounds the API's streaming RPCs.
type Streams struct {
	MaxPerClient int      `toml:"max_per_client"`
	MaxTotal     int      `toml:"max_total"`
	BufferBytes  Quantity `toml:"buffer_bytes"`
}

// Bounds of Streams.BufferBytes: one log entry of the largest size (64 KiB)
// with its 128 bytes of accounting overhead must fit, and a batch must stay
// far below gRPC's default 4 MiB message size.
const (
	MinStreamBufferBytes = 64<<10 + 128
	MaxStreamBufferBytes = 2 << 20
	// MaxStreams bounds streams.max_total.
	MaxStreams = 100000
)

// Secrets is the node's secret store: values a task spec names
// (EnvVar.secret) instead of carrying, read by the daemon when it creates
// the container (package daemon/secrets).
type Secrets struct {
	// Dir holds one regular file per secret, named after it, owned by root
	// with no group or other permission bits. Empty: no store.
	Dir string `toml:"dir"`
	// MaxSecretBytes is the largest secret file read.
	MaxSecretBytes Quantity `toml:"max_secret_bytes"`
	// Grants say which callers may name which secrets; a caller no grant
	// covers may name none. It replaces the default (uid:0, every secret).
	Grants []SecretGrant `toml:"grants"`
}

// SecretGrant lets one identity (as in [[api.roles]]) name the secrets its
// patterns match (path.Match patterns over secret names, "*" for all).
type SecretGrant struct {
	Identity string   `toml:"identity"`
	Secrets  []string `toml:"secrets"`
}

// MaxSecretGrants bounds [[secrets.grants]] and the patterns of one grant.
const MaxSecretGrants = 1024

// MaxSecretBytes is the ceiling of secrets.max_secret_bytes: an env var
// ("NAME=content") must stay under the kernel's 128Ki per string.
const MaxSecretBytes = 120 << 10

// Images bounds what one ImportImage may put on the node. Every cap is
// checked while the archive streams in, and the import stops as soon as one
// is passed.
type Images struct {
	MaxImportBytes   Quantity `toml:"max_import_bytes"`
	MaxImportEntries int      `toml:"max_import_entries"`
	MaxBlobBytes     Quantity `toml:"max_blob_bytes"`
	MaxJSONBytes     Quantity `toml:"max_json_bytes"`
	// MaxUnpackedBytes and MaxUnpackedEntries bound the archive's layers
	// as they would be unpacked (total file size, total entries).
	MaxUnpackedBytes   Quantity `toml:"max_unpacked_bytes"`
	MaxUnpackedEntries int      `toml:"max_unpacked_entries"`
	// MaxCompressionRatio bounds how far a compressed archive, and its
	// compressed layers together, may inflate (past 64 MiB out).
	MaxCompressionRatio int `toml:"max_compression_ratio"`
}

// GPU selects the GPU inventory backend and its policy.
type GPU struct {
	Backend         string      `toml:"backend"`
	CDISpecDirs     []string    `toml:"cdi_spec_dirs"`
	ApplicationXIDs []int       `toml:"application_xids"`
	ReprobeInterval Duration    `toml:"reprobe_interval"`
	Static          []StaticGPU `toml:"static"`
}

// StaticGPU declares one GPU for the static backend.
type StaticGPU struct {
	Index    int      `toml:"index"`
	UUID     string   `toml:"uuid"`
	Model    string   `toml:"model"`
	Memory   Quantity `toml:"memory"`
	NUMANode int      `toml:"numa_node"`
	// Readings the static backend reports as the GPU's current ones (for
	// tests and dashboards on nodes without NVML); nil: not reported.
	MemoryUsed         *Quantity `toml:"memory_used"`
	UtilizationPercent *int      `toml:"utilization_percent"`
	TemperatureCelsius *int      `toml:"temperature_celsius"`
	PowerDrawWatts     *int      `toml:"power_draw_watts"`
}

// Limits caps what a caller may submit: the whole spec, its lists and
// patterns, and what the task asks of the kernel and the node. Each is
// documented in DefaultTOML.
type Limits struct {
	MaxSpecBytes     Quantity `toml:"max_spec_bytes"`
	MaxInstanceBytes Quantity `toml:"max_instance_bytes"`
	MaxEnvEntries    int      `toml:"max_env_entries"`
	MaxEnvChoices    int      `toml:"max_env_choices"`
	MaxCommandArgs   int      `toml:"max_command_args"`
	MaxChannels      int      `toml:"max_channels"`
	MaxRegexBytes    Quantity `toml:"max_regex_bytes"`
	MaxRegexInsts    int      `toml:"max_regex_insts"`
	MaxExecBytes     Quantity `toml:"max_exec_bytes"`
	MaxLabels        int      `toml:"max_labels"`
	MaxLabelBytes    Quantity `toml:"max_label_bytes"`
	MinMemory        Quantity `toml:"min_memory"`
	MinCPU           Quantity `toml:"min_cpu"`
	MaxCPU           Quantity `toml:"max_cpu"`
}

// Duration is a time.Duration written as a Go duration string ("10s", "168h").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Quantity is a Kubernetes-style quantity ("1Gi", "500m", "2") in TOML.
type Quantity struct{ resource.Quantity }

// MustQuantity parses s or panics; for defaults only.
func MustQuantity(s string) Quantity { return Quantity{resource.MustParse(s)} }

// UnmarshalText implements encoding.TextUnmarshaler.
func (q *Quantity) UnmarshalText(b []byte) error {
	v, err := resource.ParseQuantity(string(b))
	if err != nil {
		return fmt.Errorf("quantity %q: %w", b, err)
	}
	if v.Sign() < 0 {
		return fmt.Errorf("quantity %q is negative", b)
	}
	q.Quantity = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (q Quantity) MarshalText() ([]byte, error) { return []byte(q.String()), nil }

// Bytes returns the quantity as a whole number of bytes, rounded up.
func (q Quantity) Bytes() int64 { return q.Value() }

// Millis returns the quantity in thousandths, rounded up (CPU).
func (q Quantity) Millis() int64 { return q.MilliValue() }

// DefaultConfig returns the configuration used when no file is given.
func DefaultConfig() Config {
	return Config{
		Node:  Node{StateDir: "/var/lib/pcnode", Labels: map[string]string{}},
		Paths: Paths{DataRoots: []string{}},
		API: API{
			Socket:            "/run/pcnode/pcnoded.sock",
			TLSReloadInterval: Duration{5 * time.Second},
			Roles:             []RoleBinding{{Identity: "uid:0", Role: "admin"}},
		},
		Metrics: Metrics{Address: DefaultMetricsAddress},
		Containerd: Containerd{
			Address:     "/run/containerd/containerd.sock",
			Namespace:   "pcnode",
			Snapshotter: "overlayfs",
		},
		Resources: Resources{
			ReservedCPU:    MustQuantity("500m"),
			ReservedMemory: MustQuantity("1Gi"),
			DefaultCPU:     MustQuantity("1"),
			DefaultMemory:  MustQuantity("1Gi"),
			BackfillWindow: Duration{5 * time.Minute},
		},
		Tasks: Tasks{
			StartupTimeout:     Duration{30 * time.Minute},
			StopGracePeriod:    Duration{10 * time.Second},
			PidsLimit:          4096,
			Retention:          Duration{7 * 24 * time.Hour},
			WatchHistory:       10_000,
			MaxOutputFiles:     100_000,
			MaxOutputPathBytes: MustQuantity("32Mi"),
			// Lowered to the node's capacity when it has less.
			DefaultMemoryLimit: MustQuantity("4Gi"),
			DefaultCPULimit:    MustQuantity("2"),
		},
		Logs: Logs{MaxFileSize: MustQuantity("10Mi"), MaxFiles: 5},
		Limits: Limits{
			MaxSpecBytes:     MustQuantity("16Ki"),
			MaxInstanceBytes: MustQuantity("16Ki"),
			MaxEnvEntries:    1024,
			MaxEnvChoices:    256,
			MaxCommandArgs:   4096,
			MaxChannels:      64,
			MaxRegexBytes:    MustQuantity("1Ki"),
			MaxRegexInsts:    2000,
			MaxExecBytes:     MustQuantity("1Mi"),
			MaxLabels:        64,
			MaxLabelBytes:    MustQuantity("16Ki"),
			MinMemory:        MustQuantity("6Mi"),
			MinCPU:           MustQuantity("10m"),
			MaxCPU:           MustQuantity("1024"),
		},
		Streams: Streams{MaxPerClient: 128, MaxTotal: 512, BufferBytes: MustQuantity("128Ki")},
		GPU: GPU{
			Backend:         "auto",
			CDISpecDirs:     []string{"/etc/cdi", "/var/run/cdi"},
			ApplicationXIDs: []int{13, 31, 43, 45, 68, 109},
			ReprobeInterval: Duration{5 * time.Minute},
		},
		Images: Images{
			MaxImportBytes:     MustQuantity("32Gi"),
			MaxImportEntries:   100000,
			MaxBlobBytes:       MustQuantity("16Gi"),
			MaxJSONBytes:       MustQuantity("8Mi"),
			MaxUnpackedBytes:   MustQuantity("64Gi"),
			MaxUnpackedEntries: 2000000,

			MaxCompressionRatio: 100,
		},
		Secrets: Secrets{
			MaxSecretBytes: MustQuantity("64Ki"),
			Grants:         []SecretGrant{{Identity: "uid:0", Secrets: []string{"*"}}},
		},
	}
}

// Load reads path over DefaultConfig. Unknown keys are an error naming them,
// so a typo never silently falls back to a default.
func Load(path string) (Config, error) {
	cfg := DefaultConfig()
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	md, err := toml.Decode(string(b), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return cfg, fmt.Errorf("%s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	return cfg, cfg.Validate()
}

// Validate checks the configuration, naming the offending key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	abs := func(key, p string) {
		if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p {
			bad(key, "must be an absolute, clean path, got %q", p)
		}
	}
	abs("node.state_dir", c.Node.StateDir)
	abs("api.socket", c.API.Socket)
	c.API.validate(bad, abs)
	c.Metrics.validate(bad, abs)
	if c.Containerd.Address == "" {
		bad("containerd.address", "must be set")
	}
	if c.Containerd.Namespace == "" {
		bad("containerd.namespace", "must be set")
	}
	for i, r := range c.Paths.DataRoots {
		abs(fmt.Sprintf("paths.data_roots[%d]", i), r)
		if r == "/" {
			bad(fmt.Sprintf("paths.data_roots[%d]", i), "the root directory cannot be a data root")
		}
	}
	for i, r := range c.Registries {
		if r.Host == "" || strings.ContainsAny(r.Host, "/ \t") {
			bad(fmt.Sprintf("registries[%d].host", i), "must be a host[:port], got %q", r.Host)
		}
	}
	if c.Resources.MaxConcurrent < 0 {
		bad("resources.max_concurrent", "must not be negative")
	}
	if c.Logs.MaxFiles < 1 {
		bad("logs.max_files", "must be at least 1")
	}
	if c.Logs.MaxFileSize.Bytes() < 4096 {
		bad("logs.max_file_size", "must be at least 4Ki")
	}
	if c.Logs.DriverPath != "" {
		abs("logs.driver_path", c.Logs.DriverPath)
		if len(c.Logs.DriverPath) > 4096 {
			bad("logs.driver_path", "must be at most 4096 bytes, got %d", len(c.Logs.DriverPath))
		}
	}
	if c.Streams.MaxPerClient < 1 {
		bad("streams.max_per_client", "must be at least 1, got %d", c.Streams.MaxPerClient)
	}
	if c.Streams.MaxTotal < c.Streams.MaxPerClient || c.Streams.MaxTotal > MaxStreams {
		bad("streams.max_total", "must be between streams.max_per_client (%d) and %d, got %d", c.Streams.MaxPerClient, MaxStreams, c.Streams.MaxTotal)
	}
	if b := c.Streams.BufferBytes.Bytes(); b < MinStreamBufferBytes || b > MaxStreamBufferBytes {
		bad("streams.buffer_bytes", "must be between %d (a 64Ki log entry and its overhead) and %d (2Mi), got %d", MinStreamBufferBytes, MaxStreamBufferBytes, b)
	}
	if c.Tasks.PidsLimit < 0 {
		bad("tasks.pids_limit", "must not be negative")
	}
	if c.Tasks.ManifestWorkers < 0 {
		bad("tasks.manifest_workers", "must not be negative")
	}
	if c.Tasks.MaxOutputFiles < 1 || c.Tasks.MaxOutputFiles > 10_000_000 {
		bad("tasks.max_output_files", "must be from 1 to 10000000, got %d", c.Tasks.MaxOutputFiles)
	}
	if b := c.Tasks.MaxOutputPathBytes.Bytes(); b < 4096 || b > 1<<30 {
		bad("tasks.max_output_path_bytes", "must be from 4Ki to 1Gi, got %s", c.Tasks.MaxOutputPathBytes.String())
	}
	if n := c.Tasks.WatchHistory; n < MinWatchHistory || n > MaxWatchHistory {
		bad("tasks.watch_history", "must be from %d to %d, got %d", MinWatchHistory, MaxWatchHistory, n)
	}
	if c.Tasks.DefaultUser != "" {
		if _, _, err := ParseUser(c.Tasks.DefaultUser); err != nil {
			bad("tasks.default_user", "%v", err)
		}
	}
	if b := c.Tasks.DefaultMemoryLimit.Bytes(); b != 0 && b < MinDefaultMemoryLimit {
		bad("tasks.default_memory_limit", "must be 0 (none) or at least 16Mi, got %s", c.Tasks.DefaultMemoryLimit.String())
	}
	if m := c.Tasks.DefaultCPULimit.Millis(); m != 0 && m < MinDefaultCPULimit {
		bad("tasks.default_cpu_limit", "must be 0 (none) or at least 10m, got %s", c.Tasks.DefaultCPULimit.String())
	}
	c.Limits.validate(bad)
	if !slices.Contains([]string{"auto", "nvml", "static", "none"}, c.GPU.Backend) {
		bad("gpu.backend", "must be auto, nvml, static or none, got %q", c.GPU.Backend)
	}
	seen := map[string]bool{}
	for i, g := range c.GPU.Static {
		if g.UUID == "" || seen[g.UUID] {
			bad(fmt.Sprintf("gpu.static[%d].uuid", i), "must be set and unique")
		}
		seen[g.UUID] = true
		f := fmt.Sprintf("gpu.static[%d].", i)
		if g.MemoryUsed != nil && (g.MemoryUsed.Bytes() > g.Memory.Bytes() && g.Memory.Bytes() > 0) {
			bad(f+"memory_used", "must not exceed memory (%s), got %s", g.Memory.String(), g.MemoryUsed.String())
		}
		if v := g.UtilizationPercent; v != nil && (*v < 0 || *v > 100) {
			bad(f+"utilization_percent", "must be from 0 to 100, got %d", *v)
		}
		if v := g.TemperatureCelsius; v != nil && (*v < -50 || *v > 200) {
			bad(f+"temperature_celsius", "must be from -50 to 200, got %d", *v)
		}
		if v := g.PowerDrawWatts; v != nil && (*v < 0 || *v > 100000) {
			bad(f+"power_draw_watts", "must be from 0 to 100000, got %d", *v)
		}
	}
	c.validateImages(bad)
	if c.Secrets.Dir != "" {
		abs("secrets.dir", c.Secrets.Dir)
	}
	if b := c.Secrets.MaxSecretBytes.Bytes(); b < 1 || b > MaxSecretBytes {
		bad("secrets.max_secret_bytes", "must be from 1 to 120Ki, got %s", c.Secrets.MaxSecretBytes.String())
	}
	if len(c.Secrets.Grants) > MaxSecretGrants {
		bad("secrets.grants", "has %d entries, at most %d", len(c.Secrets.Grants), MaxSecretGrants)
	}
	for i, g := range c.Secrets.Grants {
		f := fmt.Sprintf("secrets.grants[%d]", i)
		if err := ValidIdentity(g.Identity); err != nil {
			bad(f+".identity", "%v", err)
		}
		if len(g.Secrets) == 0 || len(g.Secrets) > MaxSecretGrants {
			bad(f+".secrets", "must list 1 to %d secret names or patterns", MaxSecretGrants)
		}
		for j, pat := range g.Secrets {
			if _, err := path.Match(pat, ""); err != nil || pat == "" || strings.Contains(pat, "/") || len(pat) > 256 {
				bad(fmt.Sprintf("%s.secrets[%d]", f, j), "%q is not a secret name or a path.Match pattern without /", pat)
			}
		}
	}
	return errors.Join(errs...)
}

// validate checks the [api] keys beyond the socket: TCP is served only
// with a server certificate, and with a client CA unless the development
// switch is on; every role binding is well formed and bound once.
func (a *API) validate(bad func(key, format string, args ...any), abs func(key, p string)) {
	for key, p := range map[string]string{"api.tls_cert_file": a.TLSCertFile, "api.tls_key_file": a.TLSKeyFile, "api.client_ca_file": a.ClientCAFile} {
		if p != "" {
			abs(key, p)
		}
	}
	if a.TCPAddress != "" {
		host, port, err := net.SplitHostPort(a.TCPAddress)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1 || n > 65535 {
			bad("api.tcp_address", "must be host:port with a port from 1 to 65535, got %q", a.TCPAddress)
		} else if strings.ContainsAny(host, "/ ") {
			bad("api.tcp_address", "host %q is not a host name or address", host)
		}
		if a.TLSCertFile == "" {
			bad("api.tls_cert_file", "must be set when api.tcp_address is: TCP is served only over TLS")
		}
		if a.TLSKeyFile == "" {
			bad("api.tls_key_file", "must be set when api.tcp_address is: TCP is served only over TLS")
		}
		if a.ClientCAFile == "" && !a.InsecureTCPWithoutClientAuth {
			bad("api.client_ca_file", "must be set when api.tcp_address is (clients are authenticated by certificate), unless api.insecure_tcp_without_client_auth = true for development")
		}
	}
	if d := a.TLSReloadInterval.Duration; d < MinTLSReloadInterval || d > MaxTLSReloadInterval {
		bad("api.tls_reload_interval", "must be from %v to %v, got %v", MinTLSReloadInterval, MaxTLSReloadInterval, d)
	}
	seen := map[string]int{}
	for i, r := range a.Roles {
		key := fmt.Sprintf("api.roles[%d]", i)
		if err := ValidIdentity(r.Identity); err != nil {
			bad(key+".identity", "%v", err)
		} else if j, dup := seen[r.Identity]; dup {
			bad(key+".identity", "%q is already bound by api.roles[%d]", r.Identity, j)
		} else {
			seen[r.Identity] = i
		}
		if !slices.Contains(Roles, r.Role) {
			bad(key+".role", "must be viewer, submitter or admin, got %q", r.Role)
		}
	}
}

// Largest values the [limits] keys may take: beyond them a cap no longer
// protects anything (gRPC's default message size, the kernel's execve limit).
const (
	maxSpecBytesCeiling  = 4 << 20
	maxExecBytesCeiling  = 2 << 20 // a quarter of the usual 8 MiB stack limit
	minMemoryFloor       = 1 << 20
	cpuMillisCeiling     = 1 << 50
	regexBytesCeiling    = 64 << 10
	regexInstsCeiling    = 1 << 20
	listLengthCeiling    = 1 << 20
	labelBytesCeiling    = 1 << 20
	minCPUMillisFloor    = 1
	maxCPUMillisFloorCap = 1000
)

// validate checks the [limits] section: every cap positive and within what
// it protects.
func (l *Limits) validate(bad func(key, format string, args ...any)) {
	between := func(key string, v, lo, hi int64, unit string) {
		if v < lo || v > hi {
			bad("limits."+key, "must be %d..%d%s, got %d", lo, hi, unit, v)
		}
	}
	between("max_spec_bytes", l.MaxSpecBytes.Bytes(), 1<<10, maxSpecBytesCeiling, " bytes")
	between("max_instance_bytes", l.MaxInstanceBytes.Bytes(), 1<<10, maxSpecBytesCeiling, " bytes")
	between("max_env_entries", int64(l.MaxEnvEntries), 1, listLengthCeiling, "")
	between("max_env_choices", int64(l.MaxEnvChoices), 1, listLengthCeiling, "")
	between("max_command_args", int64(l.MaxCommandArgs), 1, listLengthCeiling, "")
	between("max_channels", int64(l.MaxChannels), 1, listLengthCeiling, "")
	between("max_regex_bytes", l.MaxRegexBytes.Bytes(), 1, regexBytesCeiling, " bytes")
	between("max_regex_insts", int64(l.MaxRegexInsts), 16, regexInstsCeiling, "")
	between("max_exec_bytes", l.MaxExecBytes.Bytes(), 4<<10, maxExecBytesCeiling, " bytes")
	between("max_labels", int64(l.MaxLabels), 1, listLengthCeiling, "")
	between("max_label_bytes", l.MaxLabelBytes.Bytes(), 1, labelBytesCeiling, " bytes")
	between("min_memory", l.MinMemory.Bytes(), minMemoryFloor, 1<<40, " bytes")
	between("min_cpu", l.MinCPU.Millis(), minCPUMillisFloor, cpuMillisCeiling, " milli-CPU")
	between("max_cpu", l.MaxCPU.Millis(), maxCPUMillisFloorCap, cpuMillisCeiling, " milli-CPU")
	if l.MinCPU.Millis() > l.MaxCPU.Millis() {
		bad("limits.min_cpu", "must not be above limits.max_cpu")
	}
}

// validateImages checks the [images] caps: each is set (none may be
// unlimited), and the smaller caps fit inside the larger ones.
func (c *Config) validateImages(bad func(key, format string, args ...any)) {
	im := c.Images
	if im.MaxImportBytes.Bytes() < 1<<20 {
		bad("images.max_import_bytes", "must be at least 1Mi, got %s", im.MaxImportBytes.String())
	}
	if im.MaxImportEntries < 16 {
		bad("images.max_import_entries", "must be at least 16, got %d", im.MaxImportEntries)
	}
	if im.MaxBlobBytes.Bytes() < 1<<20 || im.MaxBlobBytes.Cmp(im.MaxImportBytes.Quantity) > 0 {
		bad("images.max_blob_bytes", "must be between 1Mi and images.max_import_bytes (%s), got %s", im.MaxImportBytes.String(), im.MaxBlobBytes.String())
	}
	if im.MaxJSONBytes.Bytes() < 64<<10 || im.MaxJSONBytes.Cmp(im.MaxBlobBytes.Quantity) > 0 || im.MaxJSONBytes.Bytes() > 256<<20 {
		bad("images.max_json_bytes", "must be between 64Ki and 256Mi and at most images.max_blob_bytes, got %s", im.MaxJSONBytes.String())
	}
	if im.MaxUnpackedBytes.Bytes() < 1<<20 {
		bad("images.max_unpacked_bytes", "must be at least 1Mi, got %s", im.MaxUnpackedBytes.String())
	}
	if im.MaxUnpackedEntries < 16 {
		bad("images.max_unpacked_entries", "must be at least 16, got %d", im.MaxUnpackedEntries)
	}
	if im.MaxCompressionRatio < 2 {
		bad("images.max_compression_ratio", "must be at least 2, got %d", im.MaxCompressionRatio)
	}
}

// Encode writes c as TOML.
func (c Config) Encode() ([]byte, error) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
