package daemon

import (
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// defaultLimits are the memory limit (bytes) and CPU limit (milli-CPU) a
// task gets when it names none: tasks.default_memory_limit and
// tasks.default_cpu_limit, lowered to the node's capacity when it is
// smaller. 0: no default.
func (d *Daemon) defaultLimits() (memBytes, milliCPU int64) {
	memBytes = d.cfg.Tasks.DefaultMemoryLimit.Bytes()
	milliCPU = d.cfg.Tasks.DefaultCPULimit.Millis()
	if c := d.capacity.MemoryBytes; c > 0 && memBytes > c {
		memBytes = c
	}
	if c := d.capacity.MilliCPU; c > 0 && milliCPU > c {
		milliCPU = c
	}
	return memBytes, milliCPU
}

// applyDefaultLimits fills in what inst's resources leave unset, so that
// the task record shows what the container gets and what the scheduler
// holds for it:
//
//   - requests: reserved, the figures the scheduler reserves for the task
//     (its requests, else its limits, else the node's default requests),
//     made explicit so that recomputing the reservation from the instance
//     (after a restart) gives the same figures, not the default limits;
//   - limits: the node's default limits (defaultLimits), raised to the
//     request when that is larger, so that no task runs without a memory
//     limit and CPU quota unless the node is configured so.
//
// A value inst sets is never changed. inst may be nil (nothing to do).
func (d *Daemon) applyDefaultLimits(inst *pcnodev1.TaskInstance, reserved sched.Resources) {
	if inst == nil {
		return
	}
	if inst.Resources == nil {
		inst.Resources = &pcnodev1.ResourceRequirements{}
	}
	r := inst.Resources
	if r.Requests == nil {
		r.Requests = &pcnodev1.ResourceList{}
	}
	if r.Limits == nil {
		r.Limits = &pcnodev1.ResourceList{}
	}
	if r.Requests.MemoryBytes == 0 {
		r.Requests.MemoryBytes = reserved.MemoryBytes
	}
	if r.Requests.CpuMillis == 0 {
		r.Requests.CpuMillis = reserved.MilliCPU
	}
	mem, cpu := d.defaultLimits()
	if r.Limits.MemoryBytes == 0 && mem > 0 {
		r.Limits.MemoryBytes = max(mem, r.Requests.MemoryBytes)
	}
	if r.Limits.CpuMillis == 0 && cpu > 0 {
		r.Limits.CpuMillis = max(cpu, r.Requests.CpuMillis, config.MinDefaultCPULimit)
	}
}
