package daemon

import (
	"context"
	"errors"

	"github.com/pcnode/pcnode/daemon/outputs"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// prepare: PREPARING, image, late resolution, outputs.
func (r *runner) prepare() (*pcnodev1.Task, error) {
	d := r.d
	task, err := d.update(r.ctx, r.id, func(t *pcnodev1.Task) {
		t.State = pcnodev1.TaskState_TASK_STATE_PREPARING
		t.Allocation = allocationToProto(r.alloc)
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.stepCtx(task)
	defer cancel()
	timedOut := func(err error) error {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return failStep(pcnodev1.TaskReason_TASK_REASON_TIMEOUT, "startup timeout (%s) passed while preparing: %v", d.startupTimeout(task), err)
		}
		return err
	}

	img, err := d.ensureImage(ctx, task, r.auth, func(p *pcnodev1.ImageProgress) {
		d.publish(r.id, &pcnodev1.TaskEvent{Event: &pcnodev1.TaskEvent_ImageProgress{ImageProgress: p}})
	})
	if err != nil {
		return task, timedOut(failStep(pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR, "image %q: %v", task.GetSpec().GetImage(), err))
	}
	late := task.GetInstance() == nil
	if late {
		inst, warnings, err := d.resolveWithImage(ctx, task.GetSpec(), img)
		if err != nil {
			return task, timedOut(failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "resolving the task against image %s: %v", img.Digest, err))
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
	// Host directories: opened once without following symlinks, checked
	// for overlap on the opened objects, then emptied through them (see
	// channels.go).
	chans, err := d.openChannels(task, late)
	if err != nil {
		return task, timedOut(failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err))
	}
	if err := d.claimChannels(chans); err != nil {
		chans.close()
		return task, timedOut(failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err))
	}
	if task.GetSpec().GetPreserveOutputs() {
		return task, nil
	}
	for i, dir := range chans.outputs {
		root, err := dir.OpenRoot()
		if err == nil {
			err = outputs.Empty(ctx, root, dir.Path())
			root.Close()
		}
		if err != nil {
			return task, timedOut(failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "output channel %q: %v", task.GetInstance().GetOutputs()[i].GetName(), err))
		}
	}
	return task, nil
}
