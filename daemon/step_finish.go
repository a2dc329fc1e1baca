package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/pcnode/pcnode/daemon/logs"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// fail records a failed step, unless the runner was detached or stopped.
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
	_ = r.d.rt.Delete(ctx, r.id)
	r.d.sealLog(ctx, r.id)
	var warnings []string
	if task.GetStartTime() != nil { // the container ran: its outputs may hold privilege
		warnings = r.d.fixOutputs(ctx, task)
	}
	if _, werr := r.d.finish(ctx, r.id, state, reason, msg, func(t *pcnodev1.Task) {
		t.Warnings = append(t.Warnings, warnings...)
	}); werr != nil {
		r.log.Error("recording failure", "err", werr)
	}
	r.log.Info("task failed", "reason", reason.String(), "msg", msg)
}

// sealLog marks a task's log complete (the driver normally does this itself).
func (d *Daemon) sealLog(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := logs.Seal(ctx, d.taskLogDir(id)); err != nil {
		d.log.Warn("sealing log", "task", id, "err", err)
	}
}
