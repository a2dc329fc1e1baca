package nvmlgpu_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/gputest"
	"github.com/pcnode/pcnode/gpu/nvmlgpu"
)

func intp(v int) *int     { return &v }
func i64p(v int64) *int64 { return &v }
func boolp(v bool) *bool  { return &v }

func open(t *testing.T, srv *gputest.Server, opts nvmlgpu.Options) *nvmlgpu.Inventory {
	t.Helper()
	opts.Lib = srv
	inv, err := nvmlgpu.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { _ = inv.Close() })
	return inv
}

// dgxDevice is what NewDGXA100's GPU i looks like through the inventory.
func dgxDevice(i int) gpu.Device {
	return gpu.Device{
		Index:                i,
		UUID:                 gputest.UUID(i),
		Model:                "Mock NVIDIA A100-SXM4-40GB",
		PCIBusID:             []string{"00000000:07:00.0", "00000000:08:00.0", "00000000:09:00.0", "00000000:0A:00.0", "00000000:0B:00.0", "00000000:0C:00.0", "00000000:0D:00.0", "00000000:0E:00.0"}[i],
		Minor:                intp(i),
		NUMANode:             intp(i / 4),
		MemoryTotalBytes:     i64p(40 << 30),
		MemoryUsedBytes:      i64p(1 << 30),
		ComputeCapability:    "8.0",
		MIGEnabled:           boolp(false),
		PowerDrawMilliwatts:  i64p(250_000),
		PowerLimitMilliwatts: i64p(400_000),
		TemperatureCelsius:   intp(40 + i),
		UtilizationPercent:   intp(10 * i),
		ECCSingleBitErrors:   i64p(0),
		ECCDoubleBitErrors:   i64p(0),
	}
}

func TestDevicesDGXA100(t *testing.T) {
	srv := gputest.NewDGXA100()
	srv.Update(2, func(g *gputest.GPU) { g.MIGMode = nvml.DEVICE_MIG_ENABLE; g.ECCCorrected = 3; g.ECCUncorrected = 1 })
	inv := open(t, srv, nvmlgpu.Options{})

	got, err := inv.Devices(context.Background())
	if err != nil {
		t.Fatalf("Devices = %v", err)
	}
	var want []gpu.Device
	for i := range 8 {
		want = append(want, dgxDevice(i))
	}
	want[2].MIGEnabled = boolp(true)
	want[2].ECCSingleBitErrors, want[2].ECCDoubleBitErrors = i64p(3), i64p(1)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Devices mismatch (-want +got):\n%s", diff)
	}
	if got, want := inv.System(), (gpu.SystemInfo{DriverVersion: "550.54.15", CUDAVersion: "12.4"}); got != want {
		t.Errorf("System = %+v, want %+v", got, want)
	}
	if inv.Backend() != gpu.BackendNVML {
		t.Errorf("Backend = %q, want %q", inv.Backend(), gpu.BackendNVML)
	}
}

// TestDevicesNotAvailable: a query the driver does not support, or that
// fails, leaves exactly its field unset and never fails the inventory.
func TestDevicesNotAvailable(t *testing.T) {
	for _, tc := range []struct {
		method string
		clear  func(d *gpu.Device)
	}{
		{"GetName", func(d *gpu.Device) { d.Model = "" }},
		{"GetPciInfo", func(d *gpu.Device) { d.PCIBusID = "" }},
		{"GetMinorNumber", func(d *gpu.Device) { d.Minor = nil }},
		{"GetNumaNodeId", func(d *gpu.Device) { d.NUMANode = nil }},
		{"GetMemoryInfo", func(d *gpu.Device) { d.MemoryTotalBytes, d.MemoryUsedBytes = nil, nil }},
		{"GetCudaComputeCapability", func(d *gpu.Device) { d.ComputeCapability = "" }},
		{"GetMigMode", func(d *gpu.Device) { d.MIGEnabled = nil }},
		{"GetPowerUsage", func(d *gpu.Device) { d.PowerDrawMilliwatts = nil }},
		{"GetTemperature", func(d *gpu.Device) { d.TemperatureCelsius = nil }},
		{"GetUtilizationRates", func(d *gpu.Device) { d.UtilizationPercent = nil }},
		{"GetTotalEccErrors", func(d *gpu.Device) { d.ECCSingleBitErrors, d.ECCDoubleBitErrors = nil, nil }},
		{"GetEnforcedPowerLimit", func(d *gpu.Device) {}}, // falls back to GetPowerManagementLimit
	} {
		for _, ret := range []nvml.Return{nvml.ERROR_NOT_SUPPORTED, nvml.ERROR_FUNCTION_NOT_FOUND, nvml.ERROR_NO_PERMISSION} {
			t.Run(tc.method+"/"+ret.Error(), func(t *testing.T) {
				srv := gputest.NewDGXA100()
				srv.FailGPU(5, tc.method, ret)
				inv := open(t, srv, nvmlgpu.Options{SysfsRoot: t.TempDir()})
				got, err := inv.Devices(context.Background())
				if err != nil {
					t.Fatalf("Devices with %s = %v on GPU 5 = %v, want no error", tc.method, ret, err)
				}
				want := dgxDevice(5)
				tc.clear(&want)
				if len(got) != 8 {
					t.Fatalf("Devices returned %d GPUs, want 8", len(got))
				}
				if diff := cmp.Diff(want, got[5]); diff != "" {
					t.Errorf("GPU 5 with %s = %v (-want +got):\n%s", tc.method, ret, diff)
				}
				if diff := cmp.Diff(dgxDevice(4), got[4]); diff != "" {
					t.Errorf("GPU 4 changed by a failure on GPU 5 (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestDevicesNothingSupported(t *testing.T) {
	srv := gputest.NewDGXA100()
	srv.NotSupported(gputest.NotSupportedMethods...)
	srv.Fail("SystemGetDriverVersion", nvml.ERROR_NOT_SUPPORTED)
	srv.Fail("SystemGetCudaDriverVersion", nvml.ERROR_FUNCTION_NOT_FOUND)
	inv := open(t, srv, nvmlgpu.Options{SysfsRoot: t.TempDir()})
	got, err := inv.Devices(context.Background())
	if err != nil {
		t.Fatalf("Devices = %v, want no error", err)
	}
	var want []gpu.Device
	for i := range 8 {
		want = append(want, gpu.Device{Index: i, UUID: gputest.UUID(i)})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Devices mismatch (-want +got):\n%s", diff)
	}
	if inv.System() != (gpu.SystemInfo{}) {
		t.Errorf("System = %+v, want empty", inv.System())
	}
}

// TestNUMAFromSysfs: a driver without nvmlDeviceGetNumaNodeId (the call
// would abort the process) gets the NUMA node from sysfs.
func TestNUMAFromSysfs(t *testing.T) {
	srv := gputest.NewDGXA100()
	srv.MissingSymbols("nvmlDeviceGetNumaNodeId")
	srv.FailGPU(0, "GetNumaNodeId", nvml.ERROR_UNKNOWN) // must not be called
	sysfs := t.TempDir()
	for addr, content := range map[string]string{"0000:07:00.0": "1\n", "0000:08:00.0": "-1\n", "0000:09:00.0": "garbage"} {
		dir := filepath.Join(sysfs, "bus", "pci", "devices", addr)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "numa_node"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inv := open(t, srv, nvmlgpu.Options{SysfsRoot: sysfs})
	got, err := inv.Devices(context.Background())
	if err != nil {
		t.Fatalf("Devices = %v", err)
	}
	for i, want := range []*int{intp(1), nil, nil, nil} {
		if diff := cmp.Diff(want, got[i].NUMANode); diff != "" {
			t.Errorf("GPU %d NUMANode (-want +got):\n%s", i, diff)
		}
	}
	if calls := len(srv.Devices[0].(interface {
		GetNumaNodeIdCalls() []struct{}
	}).GetNumaNodeIdCalls()); calls != 0 {
		t.Errorf("GetNumaNodeId called %d times on a driver without the symbol", calls)
	}
}

func TestDevicesUnidentifiable(t *testing.T) {
	srv := gputest.NewDGXA100()
	srv.FailGPU(3, "DeviceGetHandleByIndex", nvml.ERROR_GPU_IS_LOST)
	srv.FailGPU(6, "GetUUID", nvml.ERROR_UNKNOWN)
	inv := open(t, srv, nvmlgpu.Options{})
	got, err := inv.Devices(context.Background())
	if !errors.Is(err, gpu.ErrDevice) || !errors.Is(err, nvml.ERROR_GPU_IS_LOST) {
		t.Errorf("Devices error = %v, want %v wrapping %v", err, gpu.ErrDevice, nvml.ERROR_GPU_IS_LOST)
	}
	var idx []int
	for _, d := range got {
		idx = append(idx, d.Index)
	}
	if diff := cmp.Diff([]int{0, 1, 2, 4, 5, 7}, idx); diff != "" {
		t.Errorf("Devices returned indexes (-want +got):\n%s", diff)
	}
}

func TestOpenInitFailure(t *testing.T) {
	for _, tc := range []struct {
		ret  nvml.Return
		want string
	}{
		{nvml.ERROR_LIBRARY_NOT_FOUND, "libnvidia-ml.so.1 not found"},
		{nvml.ERROR_DRIVER_NOT_LOADED, "kernel driver is not loaded"},
		{nvml.ERROR_NO_PERMISSION, "no permission"},
		{nvml.ERROR_LIB_RM_VERSION_MISMATCH, "different versions"},
		{nvml.ERROR_UNKNOWN, "init failed"},
	} {
		t.Run(tc.ret.Error(), func(t *testing.T) {
			srv := gputest.NewDGXA100()
			srv.Fail("Init", tc.ret)
			_, err := nvmlgpu.Open(context.Background(), nvmlgpu.Options{Lib: srv})
			if !errors.Is(err, gpu.ErrInit) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open with Init = %v: %v, want %v saying %q", tc.ret, err, gpu.ErrInit, tc.want)
			}
		})
	}
}

func TestClose(t *testing.T) {
	srv := gputest.NewDGXA100()
	inv := open(t, srv, nvmlgpu.Options{})
	if err := inv.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := inv.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if n := len(srv.ShutdownCalls()); n != 1 {
		t.Errorf("Shutdown called %d times, want 1", n)
	}
	if _, err := inv.Devices(context.Background()); !errors.Is(err, gpu.ErrClosed) {
		t.Errorf("Devices after Close = %v, want %v", err, gpu.ErrClosed)
	}
	if _, err := inv.ProcessMemory(context.Background(), srv.UUIDs(), []int{1}); !errors.Is(err, gpu.ErrClosed) {
		t.Errorf("ProcessMemory after Close = %v, want %v", err, gpu.ErrClosed)
	}
}
