package daemon

import (
	"testing"

	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestAllocate(t *testing.T) {
	d, root := stepDaemon(t, newFakeRuntime(stepImage))
	task := stepTask(t, d, root)
	r := stepRunner(t, d, task.GetId())
	r.alloc = sched.Assignment{ID: task.GetId(), Resources: sched.Resources{MilliCPU: 500, MemoryBytes: 1 << 20}}
	// Run, then run again as after a crash right after it: same record.
	for run := range 2 {
		got, err := r.allocate()
		if err != nil {
			t.Fatalf("allocate() run %d error = %v", run, err)
		}
		if got.GetState() != pcnodev1.TaskState_TASK_STATE_PREPARING || got.GetAllocation().GetCpuMillis() != 500 || got.GetAllocation().GetMemoryBytes() != 1<<20 {
			t.Errorf("allocate() run %d = %v, allocation %v; want PREPARING with 500m, 1Mi", run, got.GetState(), got.GetAllocation())
		}
	}
	if n := len(d.rt.(*fakeRuntime).calls); n != 0 {
		t.Errorf("allocate() made %d runtime calls, want none", n)
	}
}

func TestAllocateUnknownTask(t *testing.T) {
	d, _ := stepDaemon(t, newFakeRuntime())
	r := stepRunner(t, d, "no-such-task")
	if _, err := r.allocate(); err == nil {
		t.Errorf("allocate() of a task not in the store = nil error, want one")
	}
}
