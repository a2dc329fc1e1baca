package daemontest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/cdi"
	"github.com/pcnode/pcnode/internal/testenv"
)

// FakeGPUModel and FakeGPUMemory are what NewFakeGPUs declares for every
// fake GPU.
const (
	FakeGPUModel  = "NVIDIA Fake GPU (pcnode test)"
	FakeGPUMemory = "16Gi"
)

// FakeGPUs are GPUs that exist only for a test: character device nodes
// made with mknod in a private directory (major 1, minor 3, like
// /dev/null, so a container may open and read them), a CDI spec for them
// written by gpu/cdi, and their declaration for the "static" backend.
type FakeGPUs struct {
	// Static declares the GPUs: index i, UUID FakeGPUUUID(i), FakeGPUModel,
	// FakeGPUMemory, NUMA node i.
	Static []config.StaticGPU
	// DevRoot holds nvidiactl and nvidia<index> for every GPU; inside a
	// container they appear as /dev/nvidiactl and /dev/nvidia<index>.
	DevRoot string
	// SpecDir holds the CDI spec (cdi.SpecFileName) defining the devices
	// nvidia.com/gpu=<uuid> and nvidia.com/gpu=<index>.
	SpecDir string
}

// FakeGPUUUID returns the UUID of fake GPU i (0 to 8), its digit repeated
// in the shape of a real one: "GPU-11111111-1111-1111-1111-111111111111"
// for 0.
func FakeGPUUUID(i int) string {
	d := strconv.Itoa(i + 1)
	return "GPU-" + strings.Repeat(d, 8) + "-" + strings.Repeat(d, 4) + "-" + strings.Repeat(d, 4) + "-" +
		strings.Repeat(d, 4) + "-" + strings.Repeat(d, 12)
}

// NewFakeGPUs makes n (1 to 9) fake GPUs for t. Making device nodes needs
// root: without it t is skipped (or failed under `make test`, see testenv).
func NewFakeGPUs(t testing.TB, n int) *FakeGPUs {
	t.Helper()
	if n < 1 || n > 9 {
		t.Fatalf("daemontest: NewFakeGPUs(%d): want 1 to 9 GPUs", n)
	}
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "needs root to make device nodes for fake GPUs")
	}
	f := &FakeGPUs{DevRoot: t.TempDir(), SpecDir: t.TempDir()}
	mknod := func(name string) {
		t.Helper()
		if err := syscall.Mknod(filepath.Join(f.DevRoot, name), syscall.S_IFCHR|0o666, (1<<8)|3); err != nil {
			testenv.Unavailable(t, "cannot make device nodes for fake GPUs: "+err.Error())
		}
	}
	mknod("nvidiactl")
	all := make([]int, n)
	for i := range n {
		mknod("nvidia" + strconv.Itoa(i))
		f.Static = append(f.Static, config.StaticGPU{
			Index: i, UUID: FakeGPUUUID(i), Model: FakeGPUModel,
			Memory: config.MustQuantity(FakeGPUMemory), NUMANode: i,
		})
		all[i] = i
	}
	f.writeSpec(t, f.SpecDir, all)
	return f
}

// UUIDs returns the GPUs' UUIDs in index order.
func (f *FakeGPUs) UUIDs() []string {
	out := make([]string, len(f.Static))
	for i, g := range f.Static {
		out[i] = g.UUID
	}
	return out
}

// Configure sets cfg's GPU section to the static backend with these GPUs,
// reading CDI specs from specDirs, or from f.SpecDir when none are given.
// Use it in Options.Configure.
func (f *FakeGPUs) Configure(cfg *config.Config, specDirs ...string) {
	cfg.GPU.Backend = gpu.BackendStatic
	cfg.GPU.Static = append([]config.StaticGPU(nil), f.Static...)
	if len(specDirs) == 0 {
		specDirs = []string{f.SpecDir}
	}
	cfg.GPU.CDISpecDirs = append([]string(nil), specDirs...)
}

// SpecFor writes, into a new directory, a CDI spec for only the GPUs with
// the given indices, and returns the directory.
func (f *FakeGPUs) SpecFor(t testing.TB, indices ...int) string {
	t.Helper()
	dir := t.TempDir()
	f.writeSpec(t, dir, indices)
	return dir
}

// writeSpec writes the CDI spec for the GPUs with indices into dir.
func (f *FakeGPUs) writeSpec(t testing.TB, dir string, indices []int) {
	t.Helper()
	var devices []gpu.Device
	for _, i := range indices {
		if i < 0 || i >= len(f.Static) {
			t.Fatalf("daemontest: SpecFor(%d): there are %d fake GPUs", i, len(f.Static))
		}
		minor := i
		devices = append(devices, gpu.Device{Index: i, UUID: f.Static[i].UUID, Minor: &minor})
	}
	if _, err := cdi.WriteSpec(dir, devices, cdi.Options{DevRoot: f.DevRoot}); err != nil {
		t.Fatalf("daemontest: cdi.WriteSpec(%q) = %v", dir, err)
	}
}
