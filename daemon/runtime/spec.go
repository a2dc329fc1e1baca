package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
)

// LabelTaskID is the container label holding the pcnode task id; List
// returns only containers that carry it.
const LabelTaskID = "io.pcnode.task-id"

// labelPrefix is reserved for pcnode's own labels.
const labelPrefix = "io.pcnode."

// cpuPeriodMicros is the CFS period; CPUQuotaMillis is turned into a quota
// of this period.
const cpuPeriodMicros = 100_000

// ContainerSpec describes one task's container.
type ContainerSpec struct {
	// ID is the task id; the container, its snapshot and its task are
	// named by it (containerd identifier rules: letters, digits and
	// ".-_" separators, at most 76 characters).
	ID string
	// Image is the image reference (normalised before use).
	Image string
	// Args replace the image's entrypoint and command when not empty.
	Args []string
	// Env entries ("NAME=value") are merged over the image's environment;
	// a name the image sets (NVIDIA_VISIBLE_DEVICES, say) takes the value
	// given here.
	Env []string
	// Mounts are bind mounts of host paths (rbind, nosuid, nodev).
	Mounts []Mount
	// MemoryLimitBytes is the memory limit (0: none); swap is limited to
	// the same figure so the container cannot swap.
	MemoryLimitBytes int64
	// MemoryReservationBytes is the soft memory limit (0: none).
	MemoryReservationBytes int64
	// CPUQuotaMillis is the CPU limit in thousandths of a CPU (0: none),
	// enforced as a CFS quota per 100 ms period; at least 10.
	CPUQuotaMillis int64
	// PidsLimit caps the number of processes (0: none).
	PidsLimit int64
	// NetworkHost shares the host's network namespace; by default the
	// container gets its own empty one (network "none").
	NetworkHost bool
	// ReadOnlyRootfs mounts the image's root filesystem read-only.
	ReadOnlyRootfs bool
	// User runs the process as "uid", "uid:gid", "name" or "name:group"
	// (names resolved in the image); empty: the image's user.
	User string
	// CDIDevices are fully qualified CDI device names
	// ("nvidia.com/gpu=GPU-<uuid>") injected from the CDI spec directories.
	CDIDevices []string
	// Labels are extra container labels (keys must not start with
	// "io.pcnode.").
	Labels map[string]string
	// LogURI receives the task's stdout and stderr: "binary:///abs/path?k=v"
	// (a logging binary the shim starts) or "file:///abs/path" (a file
	// the shim appends both streams to). Empty discards the output.
	LogURI string
	// AfterCreate, when set, is called by Start once containerd holds the
	// container and before its task is created: a test hook (the daemon's
	// crash points), never part of the container.
	AfterCreate func()
}

// Mount is a bind mount of a host path into the container.
type Mount struct {
	// Source is an absolute, clean host path.
	Source string
	// Destination is an absolute, clean path in the container.
	Destination string
	// ReadOnly mounts it read-only.
	ReadOnly bool
}

// validate checks everything in s that does not need containerd.
func (s *ContainerSpec) validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidArgument, field, fmt.Sprintf(format, args...))
	}
	if err := identifiers.Validate(s.ID); err != nil {
		return bad("ID", "%q: %s", truncate(s.ID, 80), err.Error())
	}
	if s.Image == "" {
		return bad("Image", "empty")
	}
	for i, a := range s.Args {
		if strings.ContainsRune(a, 0) {
			return bad(fmt.Sprintf("Args[%d]", i), "contains NUL")
		}
	}
	for i, e := range s.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" || strings.ContainsRune(e, 0) {
			// Name only: the value may be a secret's content.
			return bad(fmt.Sprintf("Env[%d]", i), "variable %q is not NAME=value without NUL bytes", truncate(k, 80))
		}
	}
	dests := map[string]bool{}
	for i, m := range s.Mounts {
		field := fmt.Sprintf("Mounts[%d]", i)
		if err := checkAbsClean(m.Source); err != nil {
			return bad(field+".Source", "%s", err.Error())
		}
		if err := checkAbsClean(m.Destination); err != nil {
			return bad(field+".Destination", "%s", err.Error())
		}
		if m.Destination == "/" {
			return bad(field+".Destination", "cannot mount over the root")
		}
		for _, sys := range []string{"/proc", "/sys", "/dev"} {
			if m.Destination == sys || strings.HasPrefix(m.Destination, sys+"/") {
				return bad(field+".Destination", "%q is under %s", m.Destination, sys)
			}
		}
		if dests[m.Destination] {
			return bad(field+".Destination", "%q mounted twice", m.Destination)
		}
		dests[m.Destination] = true
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MemoryLimitBytes", s.MemoryLimitBytes},
		{"MemoryReservationBytes", s.MemoryReservationBytes},
		{"CPUQuotaMillis", s.CPUQuotaMillis},
		{"PidsLimit", s.PidsLimit},
	} {
		if f.v < 0 {
			return bad(f.name, "%d is negative", f.v)
		}
	}
	if s.MemoryLimitBytes > 0 && s.MemoryReservationBytes > s.MemoryLimitBytes {
		return bad("MemoryReservationBytes", "%d exceeds MemoryLimitBytes %d", s.MemoryReservationBytes, s.MemoryLimitBytes)
	}
	if s.CPUQuotaMillis > 0 && s.CPUQuotaMillis < 10 {
		return bad("CPUQuotaMillis", "%d is below the minimum of 10", s.CPUQuotaMillis)
	}
	if strings.ContainsAny(s.User, "\x00\n") {
		return bad("User", "%q", truncate(s.User, 80))
	}
	for i, d := range s.CDIDevices {
		if _, _, _, err := parser.ParseQualifiedName(d); err != nil {
			return bad(fmt.Sprintf("CDIDevices[%d]", i), "%q: %s", truncate(d, 80), err.Error())
		}
	}
	for k, v := range s.Labels {
		if k == "" || strings.HasPrefix(k, labelPrefix) {
			return bad("Labels", "key %q is empty or reserved", truncate(k, 80))
		}
		if len(k)+len(v) > 4096 {
			return bad("Labels", "label %q is longer than 4096 bytes", truncate(k, 80))
		}
	}
	return nil
}

func checkAbsClean(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty")
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%q contains NUL", truncate(p, 80))
	case !filepath.IsAbs(p):
		return fmt.Errorf("%q is not absolute", truncate(p, 80))
	case filepath.Clean(p) != p:
		return fmt.Errorf("%q is not clean (want %q)", truncate(p, 80), filepath.Clean(p))
	}
	return nil
}

// containerLabels returns the labels a task's container carries.
func (s *ContainerSpec) containerLabels() map[string]string {
	l := maps.Clone(s.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[LabelTaskID] = s.ID
	return l
}

// droppedCaps are removed from containerd's default capability set. Without
// a user namespace the container's root is the host's root on every bind
// mount, so anything it leaves in an output channel is there for host users
// to find:
//
//   - CAP_MKNOD would let it create device nodes (a world-writable node of
//     the host's disk, say); mknod(2) now fails with EPERM;
//   - CAP_SETFCAP would let it give a program in an output file
//     capabilities (security.capability), setuid in all but name, which the
//     manifest walk does not look for.
//
// Setuid and setgid bits, which need no capability on a file root owns, are
// stripped by the manifest walk after the run (daemon/outputs).
var droppedCaps = []string{"CAP_MKNOD", "CAP_SETFCAP"}

// specOptions are the host facts spec building depends on.
type specOptions struct {
	// limitSwap sets swap equal to the memory limit.
	limitSwap bool
	// cdiSpecDirs are searched for CDI devices.
	cdiSpecDirs []string
	// compatSyscalls keeps the seccomp profile's 32-bit architectures.
	compatSyscalls bool
}

// specOpts returns the options that build s's OCI spec over the image
// configuration img, in order: containerd's default spec, the image's
// environment, command and working directory, then s's overrides, mounts,
// limits, namespaces and hardening, and CDI devices last (they may add
// mounts, devices, environment and hooks that nothing after them resets).
func specOpts(s *ContainerSpec, img ocispec.ImageConfig, o specOptions) []oci.SpecOpts {
	opts := []oci.SpecOpts{
		oci.WithDefaultSpec(),
		oci.WithDefaultUnixDevices,
		withImageConfig(img),
	}
	if len(s.Args) > 0 {
		opts = append(opts, oci.WithProcessArgs(s.Args...))
	}
	opts = append(opts, oci.WithEnv(s.Env))
	if user := s.User; user != "" || img.User != "" {
		if user == "" {
			user = img.User
		}
		opts = append(opts, oci.WithUser(user))
		if !numericUser(user) {
			opts = append(opts, oci.WithAdditionalGIDs(user))
		}
	}
	opts = append(opts, oci.WithMounts(bindMounts(s.Mounts)))

	if s.MemoryLimitBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(s.MemoryLimitBytes)))
		if o.limitSwap {
			opts = append(opts, oci.WithMemorySwap(s.MemoryLimitBytes))
		}
	}
	if s.MemoryReservationBytes > 0 {
		opts = append(opts, withMemoryReservation(s.MemoryReservationBytes))
	}
	if s.CPUQuotaMillis > 0 {
		opts = append(opts, oci.WithCPUCFS(s.CPUQuotaMillis*cpuPeriodMicros/1000, cpuPeriodMicros))
	}
	if s.PidsLimit > 0 {
		opts = append(opts, oci.WithPidsLimit(s.PidsLimit))
	}
	if s.NetworkHost {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf)
	} else {
		// Its own UTS namespace would otherwise start with the host's name.
		opts = append(opts, oci.WithHostname(hostname(s.ID)))
	}
	if s.ReadOnlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	// Hardening. The default spec already has the default capability set,
	// masked and read-only paths, and no privileged devices; droppedCaps
	// come off it. Seccomp's default profile depends on the capabilities,
	// so it comes after them.
	opts = append(opts, oci.WithDroppedCapabilities(droppedCaps), oci.WithNoNewPrivileges, seccomp.WithDefaultProfile())
	if !o.compatSyscalls {
		opts = append(opts, withNativeSeccompArch(goruntime.GOARCH))
	}
	if len(s.CDIDevices) > 0 {
		// CDI edits may set environment variables too (each GPU device sets
		// NVIDIA_VISIBLE_DEVICES to itself alone); the caller's Env is
		// applied again after them so that it wins.
		opts = append(opts, withCDIDevices(o.cdiSpecDirs, s.CDIDevices), oci.WithEnv(s.Env))
	}
	return opts
}

// nativeSeccompArch is the seccomp architecture of each GOARCH whose
// kernel also has 32-bit entry points that containerd's default profile
// lists beside the native one.
var nativeSeccompArch = map[string]specs.Arch{
	"amd64": specs.ArchX86_64,
	"arm64": specs.ArchAARCH64,
}

// withNativeSeccompArch narrows the seccomp filter to goarch's native
// system call architecture. containerd's default profile also lists the
// 32-bit ones (i386 and x32 on amd64, arm on arm64), and runc compiles the
// whole rule set once for each: on amd64 the filter's load at every
// container start takes about half the CPU time with one architecture.
// A system call made through an architecture the filter does not list
// kills the calling thread with SIGSYS (runc's bad-architecture action), so
// a 32-bit program dies at its first one; the kernel's compat paths stay
// out of the container's reach. GOARCHes not in nativeSeccompArch keep the
// profile as it is.
func withNativeSeccompArch(goarch string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		native, ok := nativeSeccompArch[goarch]
		if !ok || s.Linux == nil || s.Linux.Seccomp == nil {
			return nil
		}
		s.Linux.Seccomp.Architectures = []specs.Arch{native}
		return nil
	}
}

// SeccompProfile is the seccomp profile a task's container gets with
// Config.Allow32BitSyscalls set to allow32Bit (containerd's default profile
// for the spec's capabilities, narrowed to the native architecture unless
// allow32Bit), in the OCI form runc reads; the CLI benchmarks give it to
// `ctr run --seccomp-profile` for a baseline under the same filter.
func SeccompProfile(allow32Bit bool) (*specs.LinuxSeccomp, error) {
	ctx := namespaces.WithNamespace(context.Background(), "pcnode")
	s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "seccomp-profile"},
		specOpts(&ContainerSpec{ID: "seccomp-profile"}, ocispec.ImageConfig{}, specOptions{compatSyscalls: allow32Bit})...)
	if err != nil {
		return nil, err
	}
	if s.Linux == nil || s.Linux.Seccomp == nil {
		return nil, errors.New("the spec has no seccomp profile")
	}
	return s.Linux.Seccomp, nil
}

// withImageConfig applies the image's environment, entrypoint and command,
// and working directory, as containerd's WithImageConfig does, but from a
// configuration already read (so spec building is testable without
// containerd). The user is applied separately.
func withImageConfig(img ocispec.ImageConfig) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		env := img.Env
		if len(env) == 0 {
			env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		}
		s.Process.Env = slices.Clone(env)
		s.Process.Args = append(slices.Clone(img.Entrypoint), img.Cmd...)
		s.Process.Cwd = img.WorkingDir
		if s.Process.Cwd == "" {
			s.Process.Cwd = "/"
		}
		return nil
	}
}

// hostname derives a container's host name from its id: at most 63
// characters (a DNS label), lower case, "." turned into "-".
func hostname(id string) string {
	h := strings.ToLower(strings.ReplaceAll(id, ".", "-"))
	if len(h) > 63 {
		h = h[:63]
	}
	return strings.Trim(h, "-_")
}

// numericUser reports whether user is "uid:gid" with both numeric, which
// needs no lookup in the image.
func numericUser(user string) bool {
	u, g, ok := strings.Cut(user, ":")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(u, 10, 32)
	_, err2 := strconv.ParseUint(g, 10, 32)
	return err1 == nil && err2 == nil
}

func bindMounts(ms []Mount) []specs.Mount {
	out := make([]specs.Mount, 0, len(ms))
	for _, m := range ms {
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		out = append(out, specs.Mount{
			Type:        "bind",
			Source:      m.Source,
			Destination: m.Destination,
			Options:     []string{"rbind", mode, "nosuid", "nodev"},
		})
	}
	return out
}

func withMemoryReservation(b int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.Memory == nil {
			s.Linux.Resources.Memory = &specs.LinuxMemory{}
		}
		s.Linux.Resources.Memory.Reservation = &b
		return nil
	}
}

// withCDIDevices injects CDI devices described by the specs in dirs.
func withCDIDevices(dirs, devices []string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		// A fresh cache per container: it reads the spec files now, so a
		// spec written since the last start counts, and starts no watcher.
		cache, err := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false))
		if err != nil {
			return fmt.Errorf("%w: reading CDI specs from %s: %s", ErrDeviceUnavailable, strings.Join(dirs, ", "), err.Error())
		}
		unresolved, err := cache.InjectDevices(s, devices...)
		switch {
		case len(unresolved) > 0:
			msg := fmt.Sprintf("%s not described by any CDI spec under %s", strings.Join(unresolved, ", "), strings.Join(dirs, ", "))
			for file, errs := range cache.GetErrors() {
				msg += fmt.Sprintf("; invalid spec %s: %v", file, errors.Join(errs...))
			}
			return fmt.Errorf("%w: %s", ErrDeviceUnavailable, msg)
		case err != nil:
			return fmt.Errorf("%w: %s", ErrDeviceUnavailable, err.Error())
		}
		return nil
	}
}
