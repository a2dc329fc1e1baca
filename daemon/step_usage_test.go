package daemon

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestCollectUsage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exit   runtime.ExitStatus
		stop   stopReason
		state  pcnodev1.TaskState
		reason pcnodev1.TaskReason
		msg    string
	}{
		{"exit 0", runtime.ExitStatus{}, stopNone, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, "exited 0"},
		{"exit 3", runtime.ExitStatus{Code: 3}, stopNone, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, "exited 3"},
		{"sigsys", runtime.ExitStatus{Code: 159}, stopNone, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT,
			"exited 159 (killed by SIGSYS: the seccomp filter admits only the node's native system calls; a 32-bit program needs tasks.allow_32bit_syscalls)"},
		{"oom", runtime.ExitStatus{Code: 137, OOMKilled: true}, stopNone, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_OOM_KILLED, "killed by the kernel OOM killer: memory limit 0 bytes (exit code 137)"},
		{"cancel", runtime.ExitStatus{Code: 143}, stopCancel, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, "cancelled (exit code 143, grace 2s)"},
		{"timeout", runtime.ExitStatus{Code: 143}, stopTimeout, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_TIMEOUT, "execution timeout (0s) reached; stopped with exit code 143"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newFakeRuntime(stepImage)
			d, root := stepDaemon(t, rt)
			d.cfg.Tasks.ExecutionTimeout.Duration = 0
			task := stepTask(t, d, root)
			rt.addContainer(task.GetId(), runtime.StateStopped, tc.exit)
			rt.usage[task.GetId()] = runtime.Usage{PeakMemoryBytes: 4096, CPUTime: time.Second}
			r := stepRunner(t, d, task.GetId())
			if tc.stop != stopNone {
				r.requestStop(tc.stop, 2*time.Second)
			}
			for run := range 2 { // it only reads: a re-run finds the same
				o, err := r.collectUsage(context.Background(), task, tc.exit)
				if err != nil {
					t.Fatalf("collectUsage() run %d error = %v", run, err)
				}
				if o.state != tc.state || o.reason != tc.reason || o.msg != tc.msg {
					t.Errorf("collectUsage() run %d = %v/%v %q, want %v/%v %q", run, o.state, o.reason, o.msg, tc.state, tc.reason, tc.msg)
				}
				if o.usage.GetPeakMemoryBytes() != 4096 || o.usage.GetCpuTime().AsDuration() != time.Second {
					t.Errorf("collectUsage() run %d usage = %v, want 4096 bytes, 1s", run, o.usage)
				}
			}
			if got := getTask(t, d, task.GetId()); got.GetState() != task.GetState() {
				t.Errorf("collectUsage() wrote the task (%v)", got.GetState())
			}
		})
	}
}

func TestCollectUsageErrors(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	rt.addContainer(task.GetId(), runtime.StateStopped, runtime.ExitStatus{Code: 3})
	r := stepRunner(t, d, task.GetId())

	// Usage unreadable: the outcome stands without it. (containerd
	// unreachable is waited out instead: TestCollectUsageWaitsForContainerd.)
	rt.failNext("Usage", task.GetId(), fmt.Errorf("metrics: %w", runtime.ErrNotFound))
	o, err := r.collectUsage(context.Background(), task, runtime.ExitStatus{Code: 3})
	if err != nil || o.usage != nil || o.reason != pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT {
		t.Errorf("collectUsage() with usage failing = %+v, %v; want NONZERO_EXIT without usage", o, err)
	}
	// Detached: it stops.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.collectUsage(ctx, task, runtime.ExitStatus{Code: 3}); !errors.Is(err, context.Canceled) {
		t.Errorf("collectUsage() detached error = %v, want context.Canceled", err)
	}
}
