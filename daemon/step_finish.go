package daemon

import (
	"context"
	"errors"

	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// finishTask writes the task's final state from o: state, reason,
// message, exit code, finish time (never before the start time), usage,
// output summaries and warnings.
//
// Reads: the task record. Writes: the task record (final; announced to
// watchers).
//
// Re-run: finish leaves a task that is final already as it is. Before it
// the task is RUNNING with its stopped container, and a restarted daemon
// runs supervise, collect usage and write manifests again; after it, only
// clean up remains, which recovery runs for a final task whose container
// is still there. The container is deleted only after this write, so its
// exit status is never lost to a crash.
func (r *runner) finishTask(ctx context.Context, task *pcnodev1.Task, o *outcome) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	r.releaseResources()
	_, err := r.d.finish(wctx, r.id, o.state, o.reason, o.msg, func(t *pcnodev1.Task) {
		t.ExitCode = int32(o.exit.Code)
		if !o.exit.ExitedAt.IsZero() {
			// start_time is taken when containerd's Start returns, so a
			// task that exits at once can have exited "before" it: a
			// task never finishes before it started.
			at := o.exit.ExitedAt
			if st := t.GetStartTime(); st != nil && at.Before(st.AsTime()) {
				at = st.AsTime()
			}
			t.FinishTime = timestamppb.New(at)
		}
		t.Usage = o.usage
		t.Outputs = o.summaries
		t.Warnings = append(t.Warnings, o.warnings...)
	})
	if err != nil {
		return err
	}
	crashAt(crashAfterFinal)
	r.log.Info("task finished", "state", o.state.String(), "reason", o.reason.String(), "exit_code", o.exit.Code)
	return nil
}

// fail records a failed step, unless the runner was detached: the final
// state first (with warnings about outputs a started container may have
// left privileged), then clean up.
//
// Re-run: as finishTask and cleanup. A crash before the final state is
// written leaves the task PREPARING (queued again by recovery) or RUNNING
// (resumed by recovery).
func (r *runner) fail(task *pcnodev1.Task, err error) {
	if r.ctx.Err() != nil {
		return
	}
	ctx := context.Background()
	state, reason, msg := pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_START_ERROR, err.Error()
	var se *stepError
	if errors.As(err, &se) {
		reason = se.reason
	}
	if why, _ := r.stopRequest(); why == stopCancel {
		state, reason, msg = pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, "cancelled before the container started"
	}
	var warnings []string
	if task.GetStartTime() != nil { // the container ran: its outputs may hold privilege
		warnings = r.d.fixOutputs(ctx, task)
	}
	r.releaseResources()
	if _, werr := r.d.finish(ctx, r.id, state, reason, msg, func(t *pcnodev1.Task) {
		t.Warnings = append(t.Warnings, warnings...)
	}); werr != nil {
		r.log.Error("recording failure", "err", werr)
	}
	// Clean up stops at a detach (the next start cleans up a final task's
	// container); the final state above is written regardless.
	r.cleanup(r.ctx)
	r.log.Info("task failed", "reason", reason.String(), "msg", msg)
}

// releaseResources gives the task's CPU, memory and GPUs back to the
// scheduler and closes its opened host directories before its final state
// is written: its process has exited (or never started), so whoever sees
// the final state (a watcher, WaitTask, a central scheduler, an Airflow
// task submitting the next step on these outputs) finds the resources free
// in GetNode and the directories claimable by the next task, although
// clean up (deleting the container, which can take a while) comes after.
// release does both again, harmlessly, when the runner ends.
func (r *runner) releaseResources() {
	r.d.dropChannels(r.id)
	if r.d.sched.Release(r.id) {
		r.d.kick()
	}
}
