package daemon

import (
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// allocate is the first step of an admitted task: it records PREPARING and
// the devices and resources the scheduler assigned (r.alloc), so that a
// restarted daemon restores the same allocation.
//
// Reads: the task record. Writes: the task record (state, allocation).
// Nothing in containerd or on the host.
//
// Re-run: it writes the same values again. A crash after it leaves a
// PREPARING task without a container, which recovery queues again: the
// scheduler assigns it afresh and the steps start over from here.
func (r *runner) allocate() (*pcnodev1.Task, error) {
	task, err := r.d.update(r.ctx, r.id, func(t *pcnodev1.Task) {
		t.State = pcnodev1.TaskState_TASK_STATE_PREPARING
		t.Allocation = allocationToProto(r.alloc)
	})
	if err != nil {
		return nil, err
	}
	crashAt(crashAfterPreparing)
	return task, nil
}
