package nvmlgpu_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/nvmlgpu"
)

// TestRealNVML runs the backend against the machine's own driver. Without
// one it checks that Open fails with the operator's hint; with one it
// checks the GPUs' basic attributes and that every GPU can be watched.
func TestRealNVML(t *testing.T) {
	ctx := context.Background()
	inv, err := nvmlgpu.Open(ctx, nvmlgpu.Options{})
	if err != nil {
		if !errors.Is(err, gpu.ErrInit) {
			t.Fatalf("Open(real NVML) = %v, want nil or %v", err, gpu.ErrInit)
		}
		if strings.Contains(err.Error(), "libnvidia-ml.so.1 not found") {
			t.Skipf("no NVIDIA driver on this machine (Open says: %v); the real-NVML path is not exercised", err)
		}
		t.Fatalf("Open(real NVML) = %v", err)
	}
	defer inv.Close()
	sys := inv.System()
	t.Logf("driver %s, CUDA %s", sys.DriverVersion, sys.CUDAVersion)
	if sys.DriverVersion == "" {
		t.Error("System().DriverVersion is empty on a machine with a driver")
	}
	devs, err := inv.Devices(ctx)
	if err != nil {
		t.Fatalf("Devices = %v", err)
	}
	var uuids []string
	for _, d := range devs {
		t.Logf("%+v", d)
		if !strings.HasPrefix(d.UUID, "GPU-") || d.Model == "" || d.MemoryTotalBytes == nil || *d.MemoryTotalBytes <= 0 || d.Minor == nil {
			t.Errorf("GPU %d lacks basic attributes: %+v", d.Index, d)
		}
		uuids = append(uuids, d.UUID)
	}
	if len(uuids) == 0 {
		t.Skip("driver present but no GPU")
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var unwatched map[string]error
	err = inv.EventSource(100*time.Millisecond).Watch(wctx, uuids, func(u map[string]error) { unwatched = u }, func(ev gpu.Event) {
		t.Logf("event: %+v", ev)
	})
	if err != nil || len(unwatched) != 0 {
		t.Errorf("Watch = %v with unwatched %v, want every GPU watched", err, unwatched)
	}
	if _, err := inv.ProcessMemory(ctx, uuids, []int{1}); err != nil {
		t.Errorf("ProcessMemory = %v", err)
	}
}
