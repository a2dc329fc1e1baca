package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/google/go-cmp/cmp"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// testImageConfig is an image configuration like the test images'.
var testImageConfig = ocispec.ImageConfig{
	Env:        []string{"PATH=/usr/bin:/bin", "NVIDIA_VISIBLE_DEVICES=all", "KEEP=image"},
	Entrypoint: []string{"/pctest"},
	Cmd:        []string{"env"},
	WorkingDir: "/work",
}

// buildSpec generates the OCI spec for s without containerd.
func buildSpec(t *testing.T, s ContainerSpec, o specOptions) (*oci.Spec, error) {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), "pcnode")
	return oci.GenerateSpec(ctx, nil, &containers.Container{ID: s.ID}, specOpts(&s, testImageConfig, o)...)
}

func mustBuildSpec(t *testing.T, s ContainerSpec, o specOptions) *oci.Spec {
	t.Helper()
	spec, err := buildSpec(t, s, o)
	if err != nil {
		t.Fatalf("building spec for %+v: %v", s, err)
	}
	return spec
}

func TestSpecDefaultsAreHardened(t *testing.T) {
	s := mustBuildSpec(t, ContainerSpec{ID: "task-1", Image: "x"}, specOptions{})

	if got, want := s.Process.Args, []string{"/pctest", "env"}; !slices.Equal(got, want) {
		t.Errorf("Args = %q, want the image's entrypoint+cmd %q", got, want)
	}
	if s.Process.Cwd != "/work" {
		t.Errorf("Cwd = %q, want the image's /work", s.Process.Cwd)
	}
	if !s.Process.NoNewPrivileges {
		t.Error("NoNewPrivileges = false, want true")
	}
	// containerd's default set without CAP_MKNOD and CAP_SETFCAP.
	wantCaps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	for name, got := range map[string][]string{
		"bounding":  s.Process.Capabilities.Bounding,
		"effective": s.Process.Capabilities.Effective,
		"permitted": s.Process.Capabilities.Permitted,
	} {
		if diff := cmp.Diff(wantCaps, got); diff != "" {
			t.Errorf("%s capabilities (-want +got):\n%s", name, diff)
		}
	}
	for _, c := range [][]string{s.Process.Capabilities.Inheritable, s.Process.Capabilities.Ambient} {
		for _, bad := range []string{"CAP_SYS_ADMIN", "CAP_MKNOD", "CAP_SETFCAP"} {
			if slices.Contains(c, bad) {
				t.Errorf("capabilities %v include %s", c, bad)
			}
		}
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) == 0 {
		t.Errorf("Seccomp = %+v, want containerd's default profile (default action errno)", s.Linux.Seccomp)
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("MaskedPaths %v / ReadonlyPaths %v lack the defaults", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if !hasNamespace(s, specs.NetworkNamespace) {
		t.Error("no network namespace: want the container's own (network none)")
	}
	if s.Linux.CgroupsPath != "/pcnode/task-1" {
		t.Errorf("CgroupsPath = %q, want /pcnode/task-1", s.Linux.CgroupsPath)
	}
	if s.Root.Readonly {
		t.Error("Root.Readonly = true without ReadOnlyRootfs")
	}
	if s.Hostname != "task-1" {
		t.Errorf("Hostname = %q, want task-1", s.Hostname)
	}
	for _, d := range s.Linux.Resources.Devices {
		if d.Allow && d.Major == nil && d.Minor == nil && d.Access == "rwm" {
			t.Errorf("device cgroup allows all devices: %+v", d)
		}
	}
	if r := s.Linux.Resources; r.Memory != nil || r.CPU != nil || r.Pids != nil {
		t.Errorf("resources %+v %+v %+v set without limits", r.Memory, r.CPU, r.Pids)
	}
}

func hasNamespace(s *oci.Spec, typ specs.LinuxNamespaceType) bool {
	return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == typ })
}

func TestSpecOverrides(t *testing.T) {
	s := mustBuildSpec(t, ContainerSpec{
		ID:                     "task-2",
		Image:                  "x",
		Args:                   []string{"/bin/other", "a b"},
		Env:                    []string{"NVIDIA_VISIBLE_DEVICES=GPU-1", "NEW=1"},
		MemoryLimitBytes:       64 << 20,
		MemoryReservationBytes: 32 << 20,
		CPUQuotaMillis:         1500,
		PidsLimit:              100,
		NetworkHost:            true,
		ReadOnlyRootfs:         true,
		User:                   "1000:2000",
		Mounts: []Mount{
			{Source: "/srv/in", Destination: "/data/in", ReadOnly: true},
			{Source: "/srv/out", Destination: "/data/out"},
		},
	}, specOptions{limitSwap: true})

	if got, want := s.Process.Args, []string{"/bin/other", "a b"}; !slices.Equal(got, want) {
		t.Errorf("Args = %q, want %q (entrypoint replaced)", got, want)
	}
	wantEnv := []string{"PATH=/usr/bin:/bin", "NVIDIA_VISIBLE_DEVICES=GPU-1", "KEEP=image", "NEW=1"}
	if diff := cmp.Diff(wantEnv, s.Process.Env); diff != "" {
		t.Errorf("Env (-want +got):\n%s", diff)
	}
	if u := s.Process.User; u.UID != 1000 || u.GID != 2000 {
		t.Errorf("User = %+v, want 1000:2000", u)
	}
	mem := s.Linux.Resources.Memory
	if mem == nil || *mem.Limit != 64<<20 || *mem.Swap != 64<<20 || *mem.Reservation != 32<<20 {
		t.Errorf("Memory = %+v, want limit=swap=64Mi reservation=32Mi", mem)
	}
	cpu := s.Linux.Resources.CPU
	if cpu == nil || *cpu.Quota != 150000 || *cpu.Period != 100000 {
		t.Errorf("CPU = %+v, want quota 150000 per 100000", cpu)
	}
	if p := s.Linux.Resources.Pids; p == nil || *p.Limit != 100 {
		t.Errorf("Pids = %+v, want 100", p)
	}
	if hasNamespace(s, specs.NetworkNamespace) {
		t.Error("network namespace present with NetworkHost")
	}
	if s.Hostname != "" {
		t.Errorf("Hostname = %q with NetworkHost, want the host's (unset)", s.Hostname)
	}
	if !s.Root.Readonly {
		t.Error("Root.Readonly = false with ReadOnlyRootfs")
	}
	var binds []specs.Mount
	for _, m := range s.Mounts {
		if m.Type == "bind" && strings.HasPrefix(m.Destination, "/data/") {
			binds = append(binds, m)
		}
	}
	wantBinds := []specs.Mount{
		{Destination: "/data/in", Type: "bind", Source: "/srv/in", Options: []string{"rbind", "ro", "nosuid", "nodev"}},
		{Destination: "/data/out", Type: "bind", Source: "/srv/out", Options: []string{"rbind", "rw", "nosuid", "nodev"}},
	}
	if diff := cmp.Diff(wantBinds, binds); diff != "" {
		t.Errorf("bind mounts (-want +got):\n%s", diff)
	}
	if !s.Process.NoNewPrivileges || s.Linux.Seccomp == nil {
		t.Error("hardening lost when overriding")
	}
}

func TestSpecSwapOnlyWhereAccounted(t *testing.T) {
	s := mustBuildSpec(t, ContainerSpec{ID: "t", Image: "x", MemoryLimitBytes: 1 << 20}, specOptions{limitSwap: false})
	if s.Linux.Resources.Memory.Swap != nil {
		t.Errorf("Swap = %d without swap accounting, want unset", *s.Linux.Resources.Memory.Swap)
	}
}

func TestSpecCDI(t *testing.T) {
	dir := t.TempDir()
	const cdiSpec = `cdiVersion: "0.6.0"
kind: nvidia.com/gpu
devices:
  - name: GPU-aaaa
    containerEdits:
      env: ["PCNODE_FAKE_GPU=aaaa"]
      deviceNodes:
        - path: /dev/pcnode-gpu0
          hostPath: /dev/nvidia0
          type: c
          major: 195
          minor: 0
  - name: GPU-bbbb
    containerEdits:
      deviceNodes:
        - path: /dev/pcnode-gpu1
          hostPath: /dev/nvidia1
          type: c
          major: 195
          minor: 1
containerEdits:
  env: ["PCNODE_CDI=1"]
`
	if err := os.WriteFile(filepath.Join(dir, "pcnode-test.yaml"), []byte(cdiSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	o := specOptions{cdiSpecDirs: []string{dir}}

	s := mustBuildSpec(t, ContainerSpec{ID: "t", Image: "x", CDIDevices: []string{"nvidia.com/gpu=GPU-aaaa"}}, o)
	var nodes []string
	for _, d := range s.Linux.Devices {
		nodes = append(nodes, d.Path)
	}
	if diff := cmp.Diff([]string{"/dev/pcnode-gpu0"}, nodes); diff != "" {
		t.Errorf("device nodes (-want +got):\n%s", diff)
	}
	allowed := false
	for _, d := range s.Linux.Resources.Devices {
		if d.Allow && d.Major != nil && *d.Major == 195 && d.Minor != nil && *d.Minor == 0 {
			allowed = true
		}
		if d.Allow && d.Major != nil && *d.Major == 195 && d.Minor != nil && *d.Minor == 1 {
			t.Errorf("device cgroup allows the GPU not asked for: %+v", d)
		}
	}
	if !allowed {
		t.Errorf("device cgroup %+v does not allow 195:0", s.Linux.Resources.Devices)
	}
	for _, e := range []string{"PCNODE_FAKE_GPU=aaaa", "PCNODE_CDI=1"} {
		if !slices.Contains(s.Process.Env, e) {
			t.Errorf("Env %q lacks %q", s.Process.Env, e)
		}
	}
	if s.Linux.Seccomp == nil || !s.Process.NoNewPrivileges {
		t.Error("hardening lost with CDI devices")
	}

	_, err := buildSpec(t, ContainerSpec{ID: "t", Image: "x", CDIDevices: []string{"nvidia.com/gpu=GPU-cccc"}}, o)
	if !errors.Is(err, ErrDeviceUnavailable) || !strings.Contains(err.Error(), "GPU-cccc") {
		t.Errorf("unknown CDI device: error %v, want ErrDeviceUnavailable naming GPU-cccc", err)
	}
	_, err = buildSpec(t, ContainerSpec{ID: "t", Image: "x", CDIDevices: []string{"nvidia.com/gpu=GPU-aaaa"}}, specOptions{cdiSpecDirs: []string{filepath.Join(dir, "missing")}})
	if !errors.Is(err, ErrDeviceUnavailable) {
		t.Errorf("no CDI spec dir: error %v, want ErrDeviceUnavailable", err)
	}
}

func TestSpecValidate(t *testing.T) {
	ok := func() ContainerSpec {
		return ContainerSpec{ID: "task-1", Image: "x", Mounts: []Mount{{Source: "/srv/in", Destination: "/data/in"}}}
	}
	tests := []struct {
		name  string
		edit  func(*ContainerSpec)
		field string // "" means valid
	}{
		{"valid", func(*ContainerSpec) {}, ""},
		{"empty id", func(s *ContainerSpec) { s.ID = "" }, "ID"},
		{"id with slash", func(s *ContainerSpec) { s.ID = "../x" }, "ID"},
		{"id too long", func(s *ContainerSpec) { s.ID = strings.Repeat("a", 77) }, "ID"},
		{"no image", func(s *ContainerSpec) { s.Image = "" }, "Image"},
		{"env without =", func(s *ContainerSpec) { s.Env = []string{"UNSET"} }, "Env[0]"},
		{"env empty name", func(s *ContainerSpec) { s.Env = []string{"=x"} }, "Env[0]"},
		{"env NUL", func(s *ContainerSpec) { s.Env = []string{"A=\x00"} }, "Env[0]"},
		{"arg NUL", func(s *ContainerSpec) { s.Args = []string{"a\x00"} }, "Args[0]"},
		{"relative source", func(s *ContainerSpec) { s.Mounts[0].Source = "srv/in" }, "Mounts[0].Source"},
		{"unclean source", func(s *ContainerSpec) { s.Mounts[0].Source = "/srv/../etc" }, "Mounts[0].Source"},
		{"relative destination", func(s *ContainerSpec) { s.Mounts[0].Destination = "data" }, "Mounts[0].Destination"},
		{"root destination", func(s *ContainerSpec) { s.Mounts[0].Destination = "/" }, "Mounts[0].Destination"},
		{"proc destination", func(s *ContainerSpec) { s.Mounts[0].Destination = "/proc/sys" }, "Mounts[0].Destination"},
		{"dev destination", func(s *ContainerSpec) { s.Mounts[0].Destination = "/dev" }, "Mounts[0].Destination"},
		{"duplicate destination", func(s *ContainerSpec) { s.Mounts = append(s.Mounts, s.Mounts[0]) }, "Mounts[1].Destination"},
		{"negative memory", func(s *ContainerSpec) { s.MemoryLimitBytes = -1 }, "MemoryLimitBytes"},
		{"reservation over limit", func(s *ContainerSpec) { s.MemoryLimitBytes, s.MemoryReservationBytes = 1, 2 }, "MemoryReservationBytes"},
		{"tiny cpu quota", func(s *ContainerSpec) { s.CPUQuotaMillis = 5 }, "CPUQuotaMillis"},
		{"negative pids", func(s *ContainerSpec) { s.PidsLimit = -1 }, "PidsLimit"},
		{"bad cdi name", func(s *ContainerSpec) { s.CDIDevices = []string{"gpu0"} }, "CDIDevices[0]"},
		{"reserved label", func(s *ContainerSpec) { s.Labels = map[string]string{LabelTaskID: "other"} }, "Labels"},
		{"user newline", func(s *ContainerSpec) { s.User = "root\n" }, "User"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok()
			tt.edit(&s)
			err := s.validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("validate(%+v) = %v, want nil", s, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tt.field+":") {
				t.Fatalf("validate(%+v) = %v, want ErrInvalidArgument naming %s", s, err, tt.field)
			}
		})
	}
}

func TestHostname(t *testing.T) {
	for id, want := range map[string]string{
		"task-1":                "task-1",
		"01J9Z.Run_2":           "01j9z-run_2",
		strings.Repeat("a", 76): strings.Repeat("a", 63),
	} {
		if got := hostname(id); got != want {
			t.Errorf("hostname(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestContainerLabels(t *testing.T) {
	s := ContainerSpec{ID: "task-9", Labels: map[string]string{"team": "a"}}
	want := map[string]string{"team": "a", LabelTaskID: "task-9"}
	if diff := cmp.Diff(want, s.containerLabels()); diff != "" {
		t.Errorf("containerLabels (-want +got):\n%s", diff)
	}
	if _, ok := s.Labels[LabelTaskID]; ok {
		t.Error("containerLabels changed the caller's map")
	}
}

func TestIOCreator(t *testing.T) {
	tests := []struct {
		uri string
		ok  bool
	}{
		{"", true},
		{"file:///var/log/task.log", true},
		{"binary:///usr/bin/pcnoded?mode=log&task=t1", true},
		{"file://host/var/log/x", false},
		{"file:///var/../etc/x", false},
		{"file:relative", false},
		{"fifo:///tmp/x", false},
		{"http://example.com/", false},
		{"://", false},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			_, err := ioCreator(tt.uri)
			if (err == nil) != tt.ok {
				t.Fatalf("ioCreator(%q) = %v, want ok %v", tt.uri, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("ioCreator(%q) = %v, want ErrInvalidArgument", tt.uri, err)
			}
		})
	}
}

func TestLogURIs(t *testing.T) {
	got, err := BinaryLogURI("/usr/bin/pcnoded", map[string]string{"task": "t1"})
	if err != nil || got != "binary:///usr/bin/pcnoded?task=t1" {
		t.Errorf("BinaryLogURI = %q, %v, want binary:///usr/bin/pcnoded?task=t1", got, err)
	}
	if _, err := ioCreator(got); err != nil {
		t.Errorf("ioCreator(BinaryLogURI(...)) = %v", err)
	}
	got, err = FileLogURI("/var/log/t1.log")
	if err != nil || got != "file:///var/log/t1.log" {
		t.Errorf("FileLogURI = %q, %v, want file:///var/log/t1.log", got, err)
	}
	if _, err := BinaryLogURI("relative", nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("BinaryLogURI(relative) = %v, want ErrInvalidArgument", err)
	}
}

// TestSpecSeccompArchitectures checks that the seccomp filter admits only
// the native architecture unless 32-bit system calls are allowed, in which
// case containerd's profile keeps its whole list; the rules are the same.
func TestSpecSeccompArchitectures(t *testing.T) {
	native := mustBuildSpec(t, ContainerSpec{ID: "task-1", Image: "x"}, specOptions{})
	compat := mustBuildSpec(t, ContainerSpec{ID: "task-1", Image: "x"}, specOptions{compatSyscalls: true})
	want, known := nativeSeccompArch[goruntime.GOARCH]
	if !known {
		if diff := cmp.Diff(compat.Linux.Seccomp, native.Linux.Seccomp); diff != "" {
			t.Errorf("on %s the profile changed without compatSyscalls (-compat +native):\n%s", goruntime.GOARCH, diff)
		}
		return
	}
	if got := native.Linux.Seccomp.Architectures; !slices.Equal(got, []specs.Arch{want}) {
		t.Errorf("architectures = %v, want only %v", got, want)
	}
	if got := compat.Linux.Seccomp.Architectures; len(got) < 2 || !slices.Contains(got, want) {
		t.Errorf("architectures with compatSyscalls = %v, want containerd's list (%v and its 32-bit ones)", got, want)
	}
	if diff := cmp.Diff(compat.Linux.Seccomp.Syscalls, native.Linux.Seccomp.Syscalls); diff != "" {
		t.Errorf("rules differ (-compat +native):\n%s", diff)
	}
	if native.Linux.Seccomp.DefaultAction != compat.Linux.Seccomp.DefaultAction {
		t.Errorf("default action %v, want %v", native.Linux.Seccomp.DefaultAction, compat.Linux.Seccomp.DefaultAction)
	}
}

func TestWithNativeSeccompArch(t *testing.T) {
	for _, c := range []struct {
		goarch string
		in     []specs.Arch
		want   []specs.Arch
	}{
		{"amd64", []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}, []specs.Arch{specs.ArchX86_64}},
		{"arm64", []specs.Arch{specs.ArchARM, specs.ArchAARCH64}, []specs.Arch{specs.ArchAARCH64}},
		{"riscv64", []specs.Arch{specs.ArchRISCV64}, []specs.Arch{specs.ArchRISCV64}},
	} {
		s := &oci.Spec{Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{Architectures: slices.Clone(c.in)}}}
		if err := withNativeSeccompArch(c.goarch)(context.Background(), nil, nil, s); err != nil {
			t.Fatal(err)
		}
		if got := s.Linux.Seccomp.Architectures; !slices.Equal(got, c.want) {
			t.Errorf("%s: architectures %v became %v, want %v", c.goarch, c.in, got, c.want)
		}
	}
	// No seccomp section: nothing to narrow, nothing added.
	s := &oci.Spec{Linux: &specs.Linux{}}
	if err := withNativeSeccompArch("amd64")(context.Background(), nil, nil, s); err != nil || s.Linux.Seccomp != nil {
		t.Errorf("without a profile: %v, %+v", err, s.Linux.Seccomp)
	}
}

func TestSeccompProfile(t *testing.T) {
	for _, allow := range []bool{false, true} {
		got, err := SeccompProfile(allow)
		if err != nil {
			t.Fatal(err)
		}
		want := mustBuildSpec(t, ContainerSpec{ID: "task-1", Image: "x"}, specOptions{compatSyscalls: allow}).Linux.Seccomp
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("SeccompProfile(%v) is not a task's (-task +got):\n%s", allow, diff)
		}
	}
}
