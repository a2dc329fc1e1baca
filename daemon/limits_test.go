package daemon

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestApplyDefaultLimits(t *testing.T) {
	const gi = int64(1 << 30)
	res := func(reqMem, reqCPU, limMem, limCPU int64) *pcnodev1.ResourceRequirements {
		return &pcnodev1.ResourceRequirements{
			Requests: &pcnodev1.ResourceList{MemoryBytes: reqMem, CpuMillis: reqCPU},
			Limits:   &pcnodev1.ResourceList{MemoryBytes: limMem, CpuMillis: limCPU},
		}
	}
	for _, tc := range []struct {
		name     string
		memLimit string // tasks.default_memory_limit
		cpuLimit string // tasks.default_cpu_limit
		capacity sched.Resources
		have     *pcnodev1.ResourceRequirements
		reserved sched.Resources
		want     *pcnodev1.ResourceRequirements
	}{
		{name: "nothing named gets the defaults", memLimit: "4Gi", cpuLimit: "2",
			reserved: sched.Resources{MemoryBytes: 128 << 20, MilliCPU: 100},
			want:     res(128<<20, 100, 4*gi, 2000)},
		{name: "nil resources", memLimit: "4Gi", cpuLimit: "2", have: nil,
			reserved: sched.Resources{MemoryBytes: gi, MilliCPU: 1000},
			want:     res(gi, 1000, 4*gi, 2000)},
		{name: "own limits kept", memLimit: "4Gi", cpuLimit: "2", have: res(gi, 500, 8*gi, 4000),
			reserved: sched.Resources{MemoryBytes: gi, MilliCPU: 500},
			want:     res(gi, 500, 8*gi, 4000)},
		{name: "own small limits kept", memLimit: "4Gi", cpuLimit: "2", have: res(0, 0, 64<<20, 100),
			reserved: sched.Resources{MemoryBytes: 64 << 20, MilliCPU: 100},
			want:     res(64<<20, 100, 64<<20, 100)},
		{name: "request above the default limit raises it", memLimit: "4Gi", cpuLimit: "2", have: res(16*gi, 6000, 0, 0),
			reserved: sched.Resources{MemoryBytes: 16 * gi, MilliCPU: 6000},
			want:     res(16*gi, 6000, 16*gi, 6000)},
		{name: "lowered to the node", memLimit: "4Gi", cpuLimit: "2", capacity: sched.Resources{MemoryBytes: 2 * gi, MilliCPU: 1000},
			reserved: sched.Resources{MemoryBytes: 128 << 20, MilliCPU: 100},
			want:     res(128<<20, 100, 2*gi, 1000)},
		{name: "no default limits configured", memLimit: "0", cpuLimit: "0",
			reserved: sched.Resources{MemoryBytes: 128 << 20, MilliCPU: 100},
			want:     res(128<<20, 100, 0, 0)},
		{name: "gpus and selector untouched", memLimit: "1Gi", cpuLimit: "1",
			have: &pcnodev1.ResourceRequirements{
				Requests:    &pcnodev1.ResourceList{Gpus: 1},
				GpuSelector: &pcnodev1.GpuSelector{Model: "A100"},
			},
			reserved: sched.Resources{MemoryBytes: 128 << 20, MilliCPU: 100, GPUs: 1},
			want: &pcnodev1.ResourceRequirements{
				Requests:    &pcnodev1.ResourceList{Gpus: 1, MemoryBytes: 128 << 20, CpuMillis: 100},
				Limits:      &pcnodev1.ResourceList{MemoryBytes: gi, CpuMillis: 1000},
				GpuSelector: &pcnodev1.GpuSelector{Model: "A100"},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := testDaemon(t)
			d.cfg.Tasks.DefaultMemoryLimit = config.MustQuantity(tc.memLimit)
			d.cfg.Tasks.DefaultCPULimit = config.MustQuantity(tc.cpuLimit)
			d.capacity = tc.capacity
			inst := &pcnodev1.TaskInstance{Resources: tc.have}
			d.applyDefaultLimits(inst, tc.reserved)
			if diff := cmp.Diff(tc.want, inst.GetResources(), protocmp.Transform()); diff != "" {
				t.Errorf("applyDefaultLimits(%v, %+v) (-want +got):\n%s", tc.have, tc.reserved, diff)
			}
			// The scheduler's figures recomputed from the instance (as after
			// a restart) are what was reserved.
			got := d.schedRequest(&pcnodev1.TaskSpec{}, inst).Requests
			if got.MemoryBytes != tc.reserved.MemoryBytes || got.MilliCPU != tc.reserved.MilliCPU {
				t.Errorf("schedRequest after applyDefaultLimits = %+v, want the reservation %+v", got, tc.reserved)
			}
			// Idempotent.
			again := &pcnodev1.TaskInstance{Resources: inst.GetResources()}
			d.applyDefaultLimits(again, tc.reserved)
			if diff := cmp.Diff(tc.want, again.GetResources(), protocmp.Transform()); diff != "" {
				t.Errorf("applyDefaultLimits twice (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("nil instance", func(t *testing.T) {
		d, _ := testDaemon(t)
		d.applyDefaultLimits(nil, sched.Resources{MemoryBytes: 1})
	})
}

func TestContainerSpecDefaultUser(t *testing.T) {
	for _, tc := range []struct {
		name, nodeUser, specUser, want string
	}{
		{"image's user", "", "", ""},
		{"node default", "1000:1000", "", "1000:1000"},
		{"spec wins", "1000:1000", "0:0", "0:0"},
		{"spec without node default", "", "nobody", "nobody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := testDaemon(t)
			d.cfg.Tasks.DefaultUser = tc.nodeUser
			task := &pcnodev1.Task{Id: "t1", Spec: &pcnodev1.TaskSpec{Image: "img", User: tc.specUser}, Instance: &pcnodev1.TaskInstance{}}
			got, err := d.containerSpec(task, sched.Assignment{ID: "t1"})
			if err != nil {
				t.Fatalf("containerSpec = %v", err)
			}
			if got.User != tc.want {
				t.Errorf("containerSpec(node user %q, spec user %q).User = %q, want %q", tc.nodeUser, tc.specUser, got.User, tc.want)
			}
		})
	}
}
