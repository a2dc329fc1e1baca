package daemon

import (
	"context"
	"errors"
	"testing"

	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestCleanup(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	rt.addContainer(task.GetId(), runtime.StateStopped, runtime.ExitStatus{Code: 3})
	r := stepRunner(t, d, task.GetId())
	for run := range 2 { // deleting what is gone and sealing a sealed log do nothing
		r.cleanup(context.Background())
		if st := rt.state(task.GetId()); st != "" {
			t.Errorf("cleanup() run %d left the container %q", run, st)
		}
		info, err := logs.Stat(d.taskLogDir(task.GetId()))
		if err != nil || !info.Ended {
			t.Errorf("cleanup() run %d: log %+v, %v; want sealed", run, info, err)
		}
	}
	if n := rt.count("Delete", task.GetId()); n != 2 {
		t.Errorf("Delete called %d times, want 2", n)
	}
}

func TestCleanupDeleteFails(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	rt.addContainer(task.GetId(), runtime.StateStopped, runtime.ExitStatus{})
	rt.failNext("Delete", task.GetId(), errors.New("delete: device or resource busy")) // not containerd unreachable: that is retried (TestCleanupWaitsForContainerd)
	r := stepRunner(t, d, task.GetId())
	r.cleanup(context.Background())
	if st := rt.state(task.GetId()); st != runtime.StateStopped {
		t.Errorf("container after a failed delete = %q, want it still there", st)
	}
	// A restarted daemon cleans up a final task's container.
	if _, err := d.finish(context.Background(), task.GetId(), pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, "exited 0", nil); err != nil {
		t.Fatal(err)
	}
	if err := d.recover(context.Background()); err != nil {
		t.Fatalf("recover() = %v", err)
	}
	if st := rt.state(task.GetId()); st != "" {
		t.Errorf("container of a final task after recover = %q, want deleted", st)
	}
}

func TestCleanupDetached(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	rt.addContainer(task.GetId(), runtime.StateStopped, runtime.ExitStatus{})
	rt.failNext("Delete", task.GetId(), context.Canceled)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stepRunner(t, d, task.GetId()).cleanup(ctx)
	if info, err := logs.Stat(d.taskLogDir(task.GetId())); err == nil && info.Ended {
		t.Errorf("a detached cleanup whose delete failed sealed the log")
	}
}
