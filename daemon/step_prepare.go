package daemon

import (
	"github.com/pcnode/pcnode/daemon/outputs"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// prepareOutputs opens the task's host directories once, without following
// symlinks, checks them for overlap with every other preparing or running
// task's on the opened objects, creates missing output directories and
// empties the outputs through the opened descriptors (channels.go), unless
// the spec preserves them.
//
// Reads: the task's instance, the data roots. Writes: the daemon's table
// of opened directories (memory), the output directories on the host.
// Nothing in the store or in containerd.
//
// Re-run: opening and the overlap check hold nothing durable; creating an
// existing directory and emptying an empty one do nothing. A crash while
// emptying leaves a partly emptied output, which the re-run empties: the
// container has not run, so nothing of this task is lost.
func (r *runner) prepareOutputs(task *pcnodev1.Task) error {
	d := r.d
	ctx, cancel := r.stepCtx(task)
	defer cancel()
	chans, err := d.openChannels(task, r.resolvedLate)
	if err != nil {
		return r.startupTimedOut(ctx, task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err))
	}
	if err := d.claimChannels(chans); err != nil {
		chans.close()
		return r.startupTimedOut(ctx, task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err))
	}
	if !task.GetSpec().GetPreserveOutputs() {
		for i, dir := range chans.outputs {
			root, err := dir.OpenRoot()
			if err == nil {
				err = outputs.Empty(ctx, root, dir.Path())
				root.Close()
			}
			if err != nil {
				return r.startupTimedOut(ctx, task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "output channel %q: %v", task.GetInstance().GetOutputs()[i].GetName(), err))
			}
		}
	}
	crashAt(crashAfterOutputsEmptied)
	return nil
}
