package gpu_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/gpu"
)

func intp(v int) *int     { return &v }
func i64p(v int64) *int64 { return &v }
func boolp(v bool) *bool  { return &v }

func TestNewStatic(t *testing.T) {
	sys := gpu.SystemInfo{DriverVersion: "550.54.15", CUDAVersion: "12.4"}
	inv, err := gpu.NewStatic([]gpu.StaticGPU{
		{Index: 1, UUID: "GPU-b", Model: "fake", MemoryBytes: 16 << 30, NUMANode: intp(1), Minor: intp(7)},
		{Index: 0, UUID: "GPU-a", Model: "fake", PCIBusID: "00000000:07:00.0", ComputeCapability: "8.0"},
	}, sys)
	if err != nil {
		t.Fatalf("NewStatic = %v", err)
	}
	got, err := inv.Devices(context.Background())
	if err != nil {
		t.Fatalf("Devices = %v", err)
	}
	want := []gpu.Device{
		{Index: 0, UUID: "GPU-a", Model: "fake", PCIBusID: "00000000:07:00.0", ComputeCapability: "8.0", Minor: intp(0)},
		{Index: 1, UUID: "GPU-b", Model: "fake", MemoryTotalBytes: i64p(16 << 30), NUMANode: intp(1), Minor: intp(7)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Devices mismatch (-want +got):\n%s", diff)
	}
	if inv.Backend() != gpu.BackendStatic || inv.System() != sys {
		t.Errorf("Backend, System = %q, %+v, want %q, %+v", inv.Backend(), inv.System(), gpu.BackendStatic, sys)
	}

	// Devices hands out copies.
	*got[1].NUMANode = 9
	again, _ := inv.Devices(context.Background())
	if *again[1].NUMANode != 1 {
		t.Errorf("Devices shares pointers with the inventory: NUMANode = %d after caller changed its copy", *again[1].NUMANode)
	}

	if err := inv.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if _, err := inv.Devices(context.Background()); !errors.Is(err, gpu.ErrClosed) {
		t.Errorf("Devices after Close = %v, want %v", err, gpu.ErrClosed)
	}
}

func TestNewStaticInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		gpus []gpu.StaticGPU
	}{
		{"empty uuid", []gpu.StaticGPU{{Index: 0}}},
		{"uuid with slash", []gpu.StaticGPU{{Index: 0, UUID: "GPU-../../etc"}}},
		{"uuid with newline", []gpu.StaticGPU{{Index: 0, UUID: "GPU-a\nX=1"}}},
		{"uuid with comma", []gpu.StaticGPU{{Index: 0, UUID: "GPU-a,GPU-b"}}},
		{"negative index", []gpu.StaticGPU{{Index: -1, UUID: "GPU-a"}}},
		{"duplicate index", []gpu.StaticGPU{{Index: 0, UUID: "GPU-a"}, {Index: 0, UUID: "GPU-b"}}},
		{"duplicate uuid", []gpu.StaticGPU{{Index: 0, UUID: "GPU-a"}, {Index: 1, UUID: "GPU-a"}}},
		{"negative memory", []gpu.StaticGPU{{Index: 0, UUID: "GPU-a", MemoryBytes: -1}}},
		{"negative numa", []gpu.StaticGPU{{Index: 0, UUID: "GPU-a", NUMANode: intp(-1)}}},
		{"negative minor", []gpu.StaticGPU{{Index: 0, UUID: "GPU-a", Minor: intp(-2)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gpu.NewStatic(tc.gpus, gpu.SystemInfo{})
			if !errors.Is(err, gpu.ErrInvalidConfig) {
				t.Errorf("NewStatic(%+v) = %v, want %v", tc.gpus, err, gpu.ErrInvalidConfig)
			}
		})
	}
}

func TestNone(t *testing.T) {
	inv := gpu.NewNone()
	got, err := inv.Devices(context.Background())
	if err != nil || len(got) != 0 || got == nil {
		t.Errorf("Devices = %v, %v, want an empty non-nil list", got, err)
	}
	if inv.Backend() != gpu.BackendNone || inv.System() != (gpu.SystemInfo{}) {
		t.Errorf("Backend, System = %q, %+v, want %q and nothing", inv.Backend(), inv.System(), gpu.BackendNone)
	}
}

func TestDeviceClone(t *testing.T) {
	d := gpu.Device{
		UUID: "GPU-a", Minor: intp(0), NUMANode: intp(1), MemoryTotalBytes: i64p(1), MemoryUsedBytes: i64p(2),
		MIGEnabled: boolp(true), PowerDrawMilliwatts: i64p(3), PowerLimitMilliwatts: i64p(4),
		TemperatureCelsius: intp(5), UtilizationPercent: intp(6), ECCSingleBitErrors: i64p(7), ECCDoubleBitErrors: i64p(8),
	}
	c := d.Clone()
	if diff := cmp.Diff(d, c); diff != "" {
		t.Fatalf("Clone differs (-orig +clone):\n%s", diff)
	}
	for name, pair := range map[string][2]any{
		"Minor": {d.Minor, c.Minor}, "NUMANode": {d.NUMANode, c.NUMANode},
		"MemoryTotalBytes": {d.MemoryTotalBytes, c.MemoryTotalBytes}, "MemoryUsedBytes": {d.MemoryUsedBytes, c.MemoryUsedBytes},
		"MIGEnabled": {d.MIGEnabled, c.MIGEnabled}, "PowerDrawMilliwatts": {d.PowerDrawMilliwatts, c.PowerDrawMilliwatts},
		"PowerLimitMilliwatts": {d.PowerLimitMilliwatts, c.PowerLimitMilliwatts}, "TemperatureCelsius": {d.TemperatureCelsius, c.TemperatureCelsius},
		"UtilizationPercent": {d.UtilizationPercent, c.UtilizationPercent}, "ECCSingleBitErrors": {d.ECCSingleBitErrors, c.ECCSingleBitErrors},
		"ECCDoubleBitErrors": {d.ECCDoubleBitErrors, c.ECCDoubleBitErrors},
	} {
		if pair[0] == pair[1] {
			t.Errorf("Clone shares field %s", name)
		}
	}
}

func TestValidateUUID(t *testing.T) {
	for _, tc := range []struct {
		uuid string
		ok   bool
	}{
		{"GPU-8e3c3a1b-1f2d-4c5e-9a7b-0123456789ab", true},
		{"MIG-GPU-1/2/3", false},
		{"fake0", true},
		{"0", true},
		{"", false},
		{"-GPU", false},
		{"GPU a", false},
		{"GPU=a", false},
		{strings.Repeat("a", 129), false},
	} {
		t.Run(tc.uuid, func(t *testing.T) {
			err := gpu.ValidateUUID(tc.uuid)
			if (err == nil) != tc.ok {
				t.Errorf("ValidateUUID(%q) = %v, want ok=%v", tc.uuid, err, tc.ok)
			}
		})
	}
}

// TestStaticReadings: declared readings are reported as the device's
// current ones, copied (a caller changing one changes nothing), and
// undeclared ones stay nil.
func TestStaticReadings(t *testing.T) {
	used, util, temp, power := int64(3<<30), 42, 61, int64(250000)
	s, err := gpu.NewStatic([]gpu.StaticGPU{
		{Index: 0, UUID: "GPU-0", MemoryBytes: 16 << 30, MemoryUsedBytes: &used, UtilizationPercent: &util, TemperatureCelsius: &temp, PowerDrawMilliwatts: &power},
		{Index: 1, UUID: "GPU-1"},
	}, gpu.SystemInfo{})
	if err != nil {
		t.Fatal(err)
	}
	used, util = 0, 0 // the declaration was copied
	devs, err := s.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	d := devs[0]
	if d.MemoryUsedBytes == nil || *d.MemoryUsedBytes != 3<<30 || d.UtilizationPercent == nil || *d.UtilizationPercent != 42 ||
		d.TemperatureCelsius == nil || *d.TemperatureCelsius != 61 || d.PowerDrawMilliwatts == nil || *d.PowerDrawMilliwatts != 250000 {
		t.Errorf("Devices()[0] readings = %v %v %v %v, want 3Gi 42 61 250000", d.MemoryUsedBytes, d.UtilizationPercent, d.TemperatureCelsius, d.PowerDrawMilliwatts)
	}
	*devs[0].UtilizationPercent = 99
	again, _ := s.Devices(context.Background())
	if *again[0].UtilizationPercent != 42 {
		t.Errorf("a caller's change of a returned reading changed the inventory")
	}
	if o := devs[1]; o.MemoryUsedBytes != nil || o.UtilizationPercent != nil || o.TemperatureCelsius != nil || o.PowerDrawMilliwatts != nil {
		t.Errorf("Devices()[1] has readings it never declared: %+v", o)
	}
}
