package nvmlgpu_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/gputest"
	"github.com/pcnode/pcnode/gpu/nvmlgpu"
)

func TestProcessMemory(t *testing.T) {
	const mib = 1 << 20
	srv := gputest.NewDGXA100()
	srv.SetProcesses(0,
		[]nvml.ProcessInfo{{Pid: 100, UsedGpuMemory: 300 * mib}, {Pid: 101, UsedGpuMemory: 200 * mib}, {Pid: 999, UsedGpuMemory: 5000 * mib}},
		[]nvml.ProcessInfo{{Pid: 100, UsedGpuMemory: 300 * mib}}, // a C+G process: counted once
	)
	srv.SetProcesses(1, []nvml.ProcessInfo{{Pid: 102, UsedGpuMemory: 1000 * mib}}, nil)
	srv.SetProcesses(2, []nvml.ProcessInfo{{Pid: 100, UsedGpuMemory: 7 * mib}}, nil) // not asked for
	srv.SetProcesses(3, []nvml.ProcessInfo{{Pid: 101, UsedGpuMemory: math.MaxUint64}}, nil)
	inv := open(t, srv, nvmlgpu.Options{})
	u := srv.UUIDs()

	for _, tc := range []struct {
		name  string
		uuids []string
		pids  []int
		want  gpu.ProcessMemory
	}{
		{
			name:  "task on two gpus",
			uuids: []string{u[0], u[1]},
			pids:  []int{100, 101, 102, 103},
			want:  gpu.ProcessMemory{PerGPU: map[string]int64{u[0]: 500 * mib, u[1]: 1000 * mib}, TotalBytes: 1500 * mib},
		},
		{
			name:  "no matching process",
			uuids: []string{u[1]},
			pids:  []int{100},
			want:  gpu.ProcessMemory{PerGPU: map[string]int64{}},
		},
		{
			name:  "memory not reported",
			uuids: []string{u[3]},
			pids:  []int{101},
			want:  gpu.ProcessMemory{PerGPU: map[string]int64{}, Incomplete: true},
		},
		{
			name:  "hostile pids ignored",
			uuids: []string{u[0]},
			pids:  []int{-1, 0, math.MaxInt32 + 10, 101},
			want:  gpu.ProcessMemory{PerGPU: map[string]int64{u[0]: 200 * mib}, TotalBytes: 200 * mib},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := inv.ProcessMemory(context.Background(), tc.uuids, tc.pids)
			if err != nil {
				t.Fatalf("ProcessMemory = %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ProcessMemory(%v, %v) mismatch (-want +got):\n%s", tc.uuids, tc.pids, diff)
			}
		})
	}
}

func TestProcessMemoryErrors(t *testing.T) {
	srv := gputest.NewDGXA100()
	srv.SetProcesses(0, []nvml.ProcessInfo{{Pid: 100, UsedGpuMemory: 42}}, nil)
	srv.Fail("GetGraphicsRunningProcesses", nvml.ERROR_NOT_SUPPORTED)
	inv := open(t, srv, nvmlgpu.Options{})

	got, err := inv.ProcessMemory(context.Background(), srv.UUIDs()[:1], []int{100})
	want := gpu.ProcessMemory{PerGPU: map[string]int64{gputest.UUID(0): 42}, TotalBytes: 42, Incomplete: true}
	if err != nil || !cmp.Equal(want, got) {
		t.Errorf("ProcessMemory without graphics list = %+v, %v, want %+v", got, err, want)
	}

	if _, err := inv.ProcessMemory(context.Background(), []string{"GPU-nope"}, []int{100}); !errors.Is(err, gpu.ErrUnknownGPU) {
		t.Errorf("ProcessMemory(unknown gpu) = %v, want %v", err, gpu.ErrUnknownGPU)
	}
}
