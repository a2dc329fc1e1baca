package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// outcome is what collect usage and write manifests found out about a task
// that ended; finish writes it.
type outcome struct {
	state  pcnodev1.TaskState
	reason pcnodev1.TaskReason
	msg    string
	exit   runtime.ExitStatus
	usage  *pcnodev1.Usage // nil: unknown
	// Filled by writeManifests.
	summaries []*pcnodev1.OutputSummary
	warnings  []string
}

// collectUsage reads the exited container's usage from its cgroup (the
// runtime's Wait read it with the exit status; else it is read now) and
// turns the exit status and the reason the daemon stopped it (cancel,
// execution timeout) into the task's outcome.
//
// Reads: containerd (cgroup metrics of the stopped task), the runner's
// stop request. Writes: nothing.
//
// Re-run: it only reads, and the stopped task's cgroup stays until clean
// up deletes it. The stop request is the one recorded on the task
// (Task.stop_request, taken up again by recovery: restoreStop), so a
// cancelled or timed-out task resumed after a crash ends as it would have.
// While containerd cannot be reached it waits for it and reads again
// (waitReachable); other errors leave the usage unknown. It fails only
// when ctx ended (the runner was detached).
func (r *runner) collectUsage(ctx context.Context, task *pcnodev1.Task, exit runtime.ExitStatus) (*outcome, error) {
	var (
		u    runtime.Usage
		uerr error
	)
	if exit.Usage != nil { // read with the exit status (Wait)
		u = *exit.Usage
	} else {
		u, uerr = r.rt.Usage(ctx, r.id)
	}
	for errors.Is(uerr, runtime.ErrUnavailable) && ctx.Err() == nil {
		r.log.Warn("reading usage: containerd unreachable; reading again once it answers", "err", uerr)
		if err := r.d.waitReachable(ctx, uerr); err != nil {
			return nil, err
		}
		u, uerr = r.rt.Usage(ctx, r.id)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if uerr != nil {
		r.log.Warn("reading usage", "err", uerr)
	}
	o := &outcome{
		state: pcnodev1.TaskState_TASK_STATE_SUCCEEDED, reason: pcnodev1.TaskReason_TASK_REASON_COMPLETED, msg: "exited 0",
		exit: exit,
	}
	why, grace := r.stopRequest()
	switch {
	case why == stopCancel:
		o.state, o.reason, o.msg = pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, fmt.Sprintf("cancelled (exit code %d, grace %s)", exit.Code, grace)
	case why == stopTimeout:
		o.state, o.reason, o.msg = pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_TIMEOUT, fmt.Sprintf("execution timeout (%s) reached; stopped with exit code %d", r.d.executionTimeout(task), exit.Code)
	case exit.OOMKilled:
		o.state, o.reason, o.msg = pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_OOM_KILLED,
			fmt.Sprintf("killed by the kernel OOM killer: memory limit %d bytes (exit code %d)", task.GetInstance().GetResources().GetLimits().GetMemoryBytes(), exit.Code)
	case exit.Code != 0:
		o.state, o.reason, o.msg = pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, exitMessage(exit.Code, r.d.cfg.Tasks.Allow32BitSyscalls)
	}
	if uerr == nil {
		o.usage = usageToProto(u)
	}
	if r.peakGPUMemory > 0 {
		if o.usage == nil {
			o.usage = &pcnodev1.Usage{}
		}
		o.usage.PeakGpuMemoryBytes = r.peakGPUMemory
	}
	return o, nil
}

// exitSIGSYS is the exit code the runtime reports for a process killed by
// SIGSYS (128 + 31), which is what the seccomp filter does to a system call
// made through an architecture it does not admit.
const exitSIGSYS = 128 + 31

// exitMessage is the message of a nonzero exit. A SIGSYS death says what
// the likely cause is, since nothing in the task's own log will.
func exitMessage(code int, allow32Bit bool) string {
	if code != exitSIGSYS {
		return fmt.Sprintf("exited %d", code)
	}
	if allow32Bit {
		return fmt.Sprintf("exited %d (killed by SIGSYS: a system call the seccomp filter does not admit)", code)
	}
	return fmt.Sprintf("exited %d (killed by SIGSYS: the seccomp filter admits only the node's native system calls; "+
		"a 32-bit program needs tasks.allow_32bit_syscalls)", code)
}
