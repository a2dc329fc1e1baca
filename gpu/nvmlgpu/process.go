package nvmlgpu

import (
	"context"
	"fmt"
	"math"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/pcnode/pcnode/gpu"
)

// ProcessMemory samples the GPU memory that the processes pids use on the
// GPUs uuids (NVML's compute and graphics process lists; a process in both
// counts once). PIDs are host PIDs, as NVML reports them. A GPU that is not
// found is an error wrapping gpu.ErrUnknownGPU; a list the driver does not
// offer, or a process whose memory it does not report, sets Incomplete.
func (inv *Inventory) ProcessMemory(ctx context.Context, uuids []string, pids []int) (gpu.ProcessMemory, error) {
	want := make(map[uint32]bool, len(pids))
	for _, p := range pids {
		if p > 0 && p <= math.MaxUint32 {
			want[uint32(p)] = true
		}
	}
	out := gpu.ProcessMemory{PerGPU: map[string]int64{}}
	err := inv.use(func() error {
		for _, uuid := range uuids {
			if err := ctx.Err(); err != nil {
				return err
			}
			h, ret := inv.lib.DeviceGetHandleByUUID(uuid)
			if ret != nvml.SUCCESS {
				if ret == nvml.ERROR_NOT_FOUND || ret == nvml.ERROR_INVALID_ARGUMENT {
					return fmt.Errorf("%w: %s", gpu.ErrUnknownGPU, uuid)
				}
				return fmt.Errorf("%w: gpu %s: handle: %w", gpu.ErrDevice, uuid, ret)
			}
			type key struct{ pid, gi, ci uint32 }
			used := map[key]uint64{}
			for _, list := range []func() ([]nvml.ProcessInfo, nvml.Return){
				h.GetComputeRunningProcesses, h.GetGraphicsRunningProcesses,
			} {
				procs, ret := list()
				if ret != nvml.SUCCESS {
					out.Incomplete = true
					inv.optional(uuid, "running processes", ret)
					continue
				}
				for _, p := range procs {
					if !want[p.Pid] {
						continue
					}
					if p.UsedGpuMemory == math.MaxUint64 { // NVML_VALUE_NOT_AVAILABLE
						out.Incomplete = true
						continue
					}
					k := key{p.Pid, p.GpuInstanceId, p.ComputeInstanceId}
					used[k] = max(used[k], p.UsedGpuMemory)
				}
			}
			var sum int64
			for _, b := range used {
				sum += clampInt64(b)
			}
			if len(used) > 0 {
				out.PerGPU[uuid] = sum
				out.TotalBytes += sum
			}
		}
		return nil
	})
	if err != nil {
		return gpu.ProcessMemory{}, err
	}
	return out, nil
}
