package daemon

import (
	"context"
	"errors"
	"fmt"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// resolveImage makes sure the task's image is in containerd's image store
// (pulling it with the task's credentials when it is not), resolves a task
// whose template could not be resolved at submit against the image, and
// records the image digest and the node's default limits.
//
// Reads: the task record, containerd's images, the registry. Writes:
// containerd's image store (a pull), the task record (instance and
// warnings when resolved late, image digest, default limits). Nothing on
// the host.
//
// Re-run: a present image is not pulled again; a task resolved already is
// not resolved again (its instance is kept); the digest and default limits
// are written with the same values. A task resolved late by a daemon that
// then crashed is taken as resolved at submit by the next one (its host
// paths were resolved and checked when they were written). A crash inside a pull leaves content
// that containerd's garbage collection or the next pull reuses.
//
// containerd unreachable (runtime.ErrUnavailable, or any error while
// containerd does not answer a ping: outageCause) is returned as a
// *containerdDownError: the runner queues the task again (step_requeue.go).
func (r *runner) resolveImage(task *pcnodev1.Task) (*pcnodev1.Task, error) {
	d := r.d
	ctx, cancel := r.stepCtx(task)
	defer cancel()
	img, err := d.ensureImage(ctx, task, r.auth, func(p *pcnodev1.ImageProgress) {
		d.publish(r.id, &pcnodev1.TaskEvent{Event: &pcnodev1.TaskEvent_ImageProgress{ImageProgress: p}})
	})
	if err != nil {
		err = d.outageCause(ctx, err)
		if cd := containerdDown(fmt.Sprintf("resolving image %q", task.GetSpec().GetImage()), err, false); cd != nil && ctx.Err() == nil {
			return task, cd
		}
		return task, r.startupTimedOut(ctx, task, failStep(pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR, "image %q: %v", task.GetSpec().GetImage(), err))
	}
	if task.GetInstance() == nil {
		r.resolvedLate = true
		inst, warnings, err := d.resolveWithImage(ctx, task.GetSpec(), img)
		if err != nil {
			err = d.outageCause(ctx, err)
			if cd := containerdDown("reading the image's processing-container.json", err, false); cd != nil && ctx.Err() == nil {
				return task, cd
			}
			return task, r.startupTimedOut(ctx, task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "resolving the task against image %s: %v", img.Digest, err))
		}
		task, err = d.update(ctx, r.id, func(t *pcnodev1.Task) {
			t.Instance = inst
			t.Warnings = append(t.Warnings, warnings...)
		})
		if err != nil {
			return task, err
		}
	}
	task, err = d.update(ctx, r.id, func(t *pcnodev1.Task) {
		t.ImageDigest = img.Digest
		// Also for an instance resolved just now, or by an older daemon.
		d.applyDefaultLimits(t.Instance, r.alloc.Resources)
	})
	if err != nil {
		return task, err
	}
	crashAt(crashAfterImage)
	return task, nil
}

// startupTimedOut turns err into a TIMEOUT failure when ctx (a step
// context) ended at the task's startup deadline.
func (r *runner) startupTimedOut(ctx context.Context, task *pcnodev1.Task, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return failStep(pcnodev1.TaskReason_TASK_REASON_TIMEOUT, "startup timeout (%s) passed while preparing: %v", r.d.startupTimeout(task), err)
	}
	return err
}
