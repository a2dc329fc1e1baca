package runtime

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// Defaults used where Config leaves a field empty.
const (
	DefaultAddress     = "/run/containerd/containerd.sock"
	DefaultNamespace   = "pcnode"
	DefaultSnapshotter = "overlayfs"
	DefaultRuntime     = "io.containerd.runc.v2"
)

// DefaultCDISpecDirs are the directories CDI device specs are read from
// when Config.CDISpecDirs is empty (the CDI standard's static and dynamic
// directories).
var DefaultCDISpecDirs = []string{"/etc/cdi", "/var/run/cdi"}

// Config says which containerd to use and how.
type Config struct {
	// Address is containerd's gRPC socket (default DefaultAddress).
	Address string
	// Namespace is the containerd namespace pcnode works in (default
	// DefaultNamespace).
	Namespace string
	// Snapshotter unpacks images and holds root filesystems (default
	// DefaultSnapshotter).
	Snapshotter string
	// Runtime is the containerd runtime (shim) containers run with
	// (default DefaultRuntime).
	Runtime string
	// InsecureRegistries are the registry hosts ("host" or "host:port")
	// that are reached over plain HTTP; every other host uses HTTPS.
	InsecureRegistries []string
	// Registries holds credentials by registry host ("host" or
	// "host:port"; "docker.io" also covers registry-1.docker.io).
	Registries map[string]Auth
	// CDISpecDirs are where CDI device specs are read from (default
	// DefaultCDISpecDirs).
	CDISpecDirs []string
	// Allow32BitSyscalls keeps the 32-bit architectures of containerd's
	// default seccomp profile (i386 and x32 on amd64, arm on arm64); by
	// default the filter admits only the native one.
	Allow32BitSyscalls bool
}

// Auth is a registry's basic-auth credentials. It prints itself without the
// password, so it is safe in logs and error messages.
type Auth struct {
	Username string
	Password string
}

// String implements fmt.Stringer without revealing the password.
func (a Auth) String() string {
	pw := ""
	if a.Password != "" {
		pw = "[redacted]"
	}
	return fmt.Sprintf("{Username:%s Password:%s}", a.Username, pw)
}

// GoString implements fmt.GoStringer without revealing the password.
func (a Auth) GoString() string { return "runtime.Auth" + a.String() }

// LogValue implements slog.LogValuer without revealing the password.
func (a Auth) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", a.Username), slog.Bool("password_set", a.Password != ""))
}

// Version is containerd's version.
type Version struct {
	Version  string
	Revision string
}

// Containerd drives one containerd daemon in one namespace. It is safe for
// concurrent use.
type Containerd struct {
	client *client.Client
	cfg    Config
	log    *slog.Logger
	// limitSwap says whether the kernel accounts swap per cgroup, so a
	// memory limit can also forbid swapping.
	limitSwap bool
	preps     digestCache[imagePrep] // what starts need of images, by target digest (containers.go)
	sizes     digestCache[int64]     // image sizes, by target digest (images.go toImage)
}

// reconnectBackoff is how the connection to containerd is re-dialled after
// it broke or was refused: from 100 ms, growing to at most 2 s between
// attempts, so that a restarted containerd is found within about 2 s.
var reconnectBackoff = backoff.Config{
	BaseDelay:  100 * time.Millisecond,
	Multiplier: 1.6,
	Jitter:     0.2,
	MaxDelay:   2 * time.Second,
}

// New makes a client of the containerd at cfg.Address. It does not wait
// for containerd, nor fail when containerd is down: the connection is made
// at the first call and re-made whenever it breaks, and each call made
// while containerd cannot be reached fails with ErrUnavailable. Empty
// Config fields take their defaults; a nil logger discards. ctx is unused
// (kept for callers that pass one).
func New(_ context.Context, cfg Config, logger *slog.Logger) (*Containerd, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Address == "" {
		cfg.Address = DefaultAddress
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Snapshotter == "" {
		cfg.Snapshotter = DefaultSnapshotter
	}
	if cfg.Runtime == "" {
		cfg.Runtime = DefaultRuntime
	}
	if len(cfg.CDISpecDirs) == 0 {
		cfg.CDISpecDirs = DefaultCDISpecDirs
	}
	if err := identifiers.Validate(cfg.Namespace); err != nil {
		return nil, fmt.Errorf("%w: namespace %q: %s", ErrInvalidArgument, cfg.Namespace, err.Error())
	}
	for _, h := range cfg.InsecureRegistries {
		if h == "" || strings.ContainsAny(h, "/ \t") {
			return nil, fmt.Errorf("%w: insecure registry %q is not a host", ErrInvalidArgument, h)
		}
	}
	for h := range cfg.Registries {
		if h == "" || strings.ContainsAny(h, "/ \t") {
			return nil, fmt.Errorf("%w: registry %q is not a host", ErrInvalidArgument, h)
		}
	}
	c, err := client.New(cfg.Address,
		client.WithDefaultNamespace(cfg.Namespace),
		client.WithDefaultRuntime(cfg.Runtime),
		client.WithExtraDialOpts([]grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           reconnectBackoff,
			MinConnectTimeout: time.Second, // containerd's dialer retries a missing socket until then
		})}))
	if err != nil {
		return nil, fmt.Errorf("client of containerd at %s: %w", cfg.Address, err)
	}
	return &Containerd{client: c, cfg: cfg, log: logger, limitSwap: swapAccounted()}, nil
}

// Address returns containerd's socket address, as configured.
func (c *Containerd) Address() string { return c.cfg.Address }

// Close closes the connection to containerd. Containers keep running.
func (c *Containerd) Close() error { return c.client.Close() }

// Namespace returns the containerd namespace c works in.
func (c *Containerd) Namespace() string { return c.cfg.Namespace }

// Version asks containerd for its version; it doubles as a health check.
func (c *Containerd) Version(ctx context.Context) (_ Version, retErr error) {
	defer c.markUnavailable(&retErr)
	v, err := c.client.Version(c.ns(ctx))
	if err != nil {
		return Version{}, fmt.Errorf("containerd version: %w", err)
	}
	return Version{Version: v.Version, Revision: v.Revision}, nil
}

// ns puts c's namespace and logger on ctx.
func (c *Containerd) ns(ctx context.Context) context.Context {
	return c.withLibraryLogger(namespaces.WithNamespace(ctx, c.cfg.Namespace), "")
}

// swapAccounted reports whether memory+swap can be limited per cgroup: on
// cgroup v1 when memory.memsw files exist, always on cgroup v2 (runc turns
// the limit into memory.swap.max when the controller has it).
func swapAccounted() bool {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return true
	}
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
}

// notFound maps containerd's NotFound onto sentinel, keeping other errors.
func notFound(err, sentinel error, what string) error {
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("%s: %w", what, sentinel)
	}
	return fmt.Errorf("%s: %w", what, err)
}
