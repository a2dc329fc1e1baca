package daemon

import (
	"context"
	"errors"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// start has containerd create the container and start its process, then
// records RUNNING with the start time.
//
// Reads: the task record, the spec create built. Writes: a container,
// snapshot and task in containerd (runtime.Start leaves nothing behind
// when it fails), the task record (RUNNING, start time, image digest).
//
// Re-run: never while a container of the task exists — recovery decides
// instead (recover.go): a container only created is deleted and the task
// queued again, so this step runs again from an empty slate; a container
// whose process was started (crash after the start, before RUNNING was
// written) is adopted: RUNNING is recorded and the task resumes at
// supervise. So a task's process is started at most once.
//
// A start that fails with containerd unreachable returns a
// *containerdDownError: the runner waits for containerd and asks it what
// start left (none, created or started) before it queues the task again or
// adopts it (step_requeue.go), by the same rules as recovery.
func (r *runner) start(task *pcnodev1.Task) (*pcnodev1.Task, error) {
	d := r.d
	ctx, cancel := r.stepCtx(task)
	defer cancel()
	cs, err := r.create(ctx, task)
	defer d.unstage(r.id)
	if err != nil {
		return task, err
	}
	cs.AfterCreate = func() { crashAt(crashAfterContainerCreated) }
	started, err := r.rt.Start(ctx, cs)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return task, failStep(pcnodev1.TaskReason_TASK_REASON_TIMEOUT, "startup timeout (%s) passed while starting: %v", d.startupTimeout(task), err)
		}
		if cd := containerdDown("starting the container", err, true); cd != nil {
			return task, cd
		}
		if errors.Is(err, runtime.ErrImageNotFound) {
			return task, failStep(pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR, "image %q: %v", task.GetSpec().GetImage(), err)
		}
		return task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "starting the container: %v", err)
	}
	crashAt(crashAfterStarted)
	task, err = r.markRunning(context.WithoutCancel(ctx), timestamppb.Now(), started.ImageDigest)
	if err != nil {
		return task, err
	}
	r.log.Info("task running", "image", task.GetSpec().GetImage(), "digest", task.GetImageDigest(), "pid", started.PID)
	return task, nil
}

// markRunning records RUNNING, the start time and the digest of the image
// run (when known), and clears the message, which said why the task was
// waiting ("waiting for resources", a requeue's reason) and no longer holds.
// Recovery uses it too, to adopt a container whose process an earlier
// daemon started.
func (r *runner) markRunning(ctx context.Context, at *timestamppb.Timestamp, digest string) (*pcnodev1.Task, error) {
	task, err := r.d.update(ctx, r.id, func(t *pcnodev1.Task) {
		t.State = pcnodev1.TaskState_TASK_STATE_RUNNING
		t.Message = ""
		t.StartTime = at
		if digest != "" {
			t.ImageDigest = digest
		}
	})
	if err != nil {
		return task, err
	}
	crashAt(crashAfterRunning)
	return task, nil
}
