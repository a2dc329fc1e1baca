package cdi_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	oci "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	cdiapi "tags.cncf.io/container-device-interface/pkg/cdi"
	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/cdi"
)

func intp(v int) *int { return &v }

// fakeDev makes a device root with the given node names as plain files.
func fakeDev(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var twoGPUs = []gpu.Device{
	{Index: 0, UUID: "GPU-aaaa", Minor: intp(0)},
	{Index: 1, UUID: "GPU-bbbb", Minor: intp(3)},
}

func TestBuildSpec(t *testing.T) {
	dev := fakeDev(t, "nvidiactl", "nvidia-uvm", "nvidia0", "nvidia3")
	spec, err := cdi.BuildSpec(twoGPUs, cdi.Options{DevRoot: dev})
	if err != nil {
		t.Fatalf("BuildSpec = %v", err)
	}
	node := func(name string) *specs.DeviceNode {
		return &specs.DeviceNode{Path: "/dev/" + name, HostPath: filepath.Join(dev, name)}
	}
	gpu0 := specs.ContainerEdits{Env: []string{"NVIDIA_VISIBLE_DEVICES=GPU-aaaa"}, DeviceNodes: []*specs.DeviceNode{node("nvidia0")}}
	gpu1 := specs.ContainerEdits{Env: []string{"NVIDIA_VISIBLE_DEVICES=GPU-bbbb"}, DeviceNodes: []*specs.DeviceNode{node("nvidia3")}}
	want := &specs.Spec{
		Version: spec.Version,
		Kind:    "nvidia.com/gpu",
		Devices: []specs.Device{
			{Name: "GPU-aaaa", ContainerEdits: gpu0}, {Name: "0", ContainerEdits: gpu0},
			{Name: "GPU-bbbb", ContainerEdits: gpu1}, {Name: "1", ContainerEdits: gpu1},
		},
		// nvidia-uvm-tools and nvidia-modeset do not exist: left out.
		ContainerEdits: specs.ContainerEdits{DeviceNodes: []*specs.DeviceNode{node("nvidiactl"), node("nvidia-uvm")}},
	}
	if diff := cmp.Diff(want, spec); diff != "" {
		t.Errorf("BuildSpec mismatch (-want +got):\n%s", diff)
	}
	if spec.Version == "" {
		t.Error("BuildSpec left cdiVersion empty")
	}
}

func TestBuildSpecHostDevNoHostPath(t *testing.T) {
	if _, err := os.Stat("/dev/nvidiactl"); err == nil {
		t.Skip("this host has NVIDIA device nodes; the test wants a host without")
	}
	_, err := cdi.BuildSpec(twoGPUs, cdi.Options{})
	if err == nil || !strings.Contains(err.Error(), "nvidiactl") {
		t.Errorf("BuildSpec on a host without /dev/nvidiactl = %v, want an error naming it", err)
	}
}

func TestBuildSpecInvalid(t *testing.T) {
	dev := fakeDev(t, "nvidiactl", "nvidia0", "nvidia1")
	for _, tc := range []struct {
		name    string
		devices []gpu.Device
		devRoot string
		want    string
	}{
		{"no gpu", nil, dev, "no gpu"},
		{"no minor", []gpu.Device{{Index: 0, UUID: "GPU-a"}}, dev, "minor number unknown"},
		{"missing node", []gpu.Device{{Index: 0, UUID: "GPU-a", Minor: intp(5)}}, dev, "nvidia5"},
		{"bad uuid", []gpu.Device{{Index: 0, UUID: "GPU-a/../../x", Minor: intp(0)}}, dev, "uuid"},
		{"duplicate uuid", []gpu.Device{{Index: 0, UUID: "GPU-a", Minor: intp(0)}, {Index: 1, UUID: "GPU-a", Minor: intp(1)}}, dev, "twice"},
		{"uuid equal to an index", []gpu.Device{{Index: 0, UUID: "1", Minor: intp(0)}, {Index: 1, UUID: "GPU-b", Minor: intp(1)}}, dev, "twice"},
		{"no nvidiactl", []gpu.Device{{Index: 0, UUID: "GPU-a", Minor: intp(0)}}, fakeDev(t, "nvidia0"), "nvidiactl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cdi.BuildSpec(tc.devices, cdi.Options{DevRoot: tc.devRoot})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("BuildSpec(%+v) = %v, want an error mentioning %q", tc.devices, err, tc.want)
			}
		})
	}
}

func TestWriteSpecThenAvailable(t *testing.T) {
	dev := fakeDev(t, "nvidiactl", "nvidia0", "nvidia3")
	root := t.TempDir()
	etc, run := filepath.Join(root, "etc-cdi"), filepath.Join(root, "run-cdi")
	path, err := cdi.WriteSpec(run, twoGPUs, cdi.Options{DevRoot: dev})
	if err != nil {
		t.Fatalf("WriteSpec = %v", err)
	}
	if path != filepath.Join(run, cdi.SpecFileName) {
		t.Errorf("WriteSpec path = %q, want %q", path, filepath.Join(run, cdi.SpecFileName))
	}
	read, err := cdiapi.ReadSpec(path, 0)
	if err != nil {
		t.Fatalf("CDI cannot read the written spec: %v", err)
	}
	var names []string
	for _, d := range read.Devices {
		names = append(names, d.Name)
	}
	if diff := cmp.Diff([]string{"GPU-aaaa", "0", "GPU-bbbb", "1"}, names); diff != "" {
		t.Errorf("device names (-want +got):\n%s", diff)
	}

	dirs := []string{etc, run} // etc does not exist: defines nothing
	a, err := cdi.Available(dirs, []string{"GPU-aaaa", "GPU-zzzz", "GPU-bbbb"})
	if err != nil {
		t.Fatalf("Available = %v", err)
	}
	want := cdi.Availability{Present: []string{"GPU-aaaa", "GPU-bbbb"}, Missing: []string{"GPU-zzzz"}}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("Available mismatch (-want +got):\n%s", diff)
	}

	if err := cdi.Check(dirs, []string{"GPU-aaaa", "GPU-bbbb"}); err != nil {
		t.Errorf("Check(present) = %v, want nil", err)
	}
	err = cdi.Check(dirs, []string{"GPU-aaaa", "GPU-zzzz"})
	if !errors.Is(err, gpu.ErrNoCDIDevice) || !strings.Contains(err.Error(), "GPU-zzzz") ||
		!strings.Contains(err.Error(), etc) || !strings.Contains(err.Error(), "nvidia-ctk cdi generate") {
		t.Errorf("Check(missing) = %v, want %v naming the GPU, the dirs and the fix", err, gpu.ErrNoCDIDevice)
	}

	// Rewriting replaces the spec.
	if _, err := cdi.WriteSpec(run, twoGPUs[:1], cdi.Options{DevRoot: dev}); err != nil {
		t.Fatalf("second WriteSpec = %v", err)
	}
	if a, _ := cdi.Available(dirs, []string{"GPU-bbbb"}); len(a.Missing) != 1 {
		t.Errorf("Available after rewriting without GPU-bbbb = %+v, want it missing", a)
	}
}

func TestAvailableBrokenSpecs(t *testing.T) {
	dev := fakeDev(t, "nvidiactl", "nvidia0", "nvidia3")
	dir1, dir2 := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dir1, "broken.yaml"), []byte("cdiVersion: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The same device twice at the same priority: CDI drops it.
	if _, err := cdi.WriteSpec(dir2, twoGPUs, cdi.Options{DevRoot: dev}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir2, cdi.SpecFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, "copy.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := cdi.Available([]string{dir1, dir2}, []string{"GPU-aaaa"})
	if err != nil {
		t.Fatalf("Available = %v", err)
	}
	if len(a.Missing) != 1 || !slices.ContainsFunc(a.SpecErrors, func(s string) bool { return strings.Contains(s, "broken.yaml") }) ||
		!slices.ContainsFunc(a.SpecErrors, func(s string) bool { return strings.Contains(s, "conflicting device") }) {
		t.Errorf("Available with broken and conflicting specs = %+v, want GPU-aaaa missing and both problems reported", a)
	}
	if err := cdi.Check([]string{dir1, dir2}, []string{"GPU-aaaa"}); err == nil || !strings.Contains(err.Error(), "broken.yaml") {
		t.Errorf("Check = %v, want it to name the broken spec", err)
	}
}

func TestNames(t *testing.T) {
	if got, want := cdi.DeviceName("GPU-aaaa"), "nvidia.com/gpu=GPU-aaaa"; got != want {
		t.Errorf("DeviceName = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		uuids []string
		want  string
	}{
		{nil, "NVIDIA_VISIBLE_DEVICES=void"},
		{[]string{"GPU-a"}, "NVIDIA_VISIBLE_DEVICES=GPU-a"},
		{[]string{"GPU-a", "GPU-b"}, "NVIDIA_VISIBLE_DEVICES=GPU-a,GPU-b"},
	} {
		if got := cdi.VisibleDevices(tc.uuids); got != tc.want {
			t.Errorf("VisibleDevices(%q) = %q, want %q", tc.uuids, got, tc.want)
		}
	}
}

// TestInjectDevices injects a written spec into an OCI spec the way the
// daemon will. Device nodes must be real, so it needs root (mknod).
func TestInjectDevices(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create device nodes (mknod); run as root")
	}
	dev := t.TempDir()
	for _, n := range []string{"nvidiactl", "nvidia0", "nvidia3"} {
		if err := unix.Mknod(filepath.Join(dev, n), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			t.Skipf("cannot create device nodes here: %v", err)
		}
	}
	dir := t.TempDir()
	if _, err := cdi.WriteSpec(dir, twoGPUs, cdi.Options{DevRoot: dev}); err != nil {
		t.Fatal(err)
	}
	cache, err := cdiapi.NewCache(cdiapi.WithSpecDirs(dir), cdiapi.WithAutoRefresh(false))
	if err != nil {
		t.Fatal(err)
	}
	s := &oci.Spec{Process: &oci.Process{Env: []string{"NVIDIA_VISIBLE_DEVICES=all"}}, Linux: &oci.Linux{}}
	if unresolved, err := cache.InjectDevices(s, cdi.DeviceName("GPU-bbbb")); err != nil {
		t.Fatalf("InjectDevices = %v (unresolved %v)", err, unresolved)
	}
	var paths []string
	for _, d := range s.Linux.Devices {
		paths = append(paths, d.Path)
	}
	slices.Sort(paths)
	if diff := cmp.Diff([]string{"/dev/nvidia3", "/dev/nvidiactl"}, paths); diff != "" {
		t.Errorf("injected device nodes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"NVIDIA_VISIBLE_DEVICES=GPU-bbbb"}, s.Process.Env); diff != "" {
		t.Errorf("env after injection (-want +got):\n%s", diff)
	}
}
