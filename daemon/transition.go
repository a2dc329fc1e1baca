package daemon

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// IsFinal reports whether s is a final state.
func IsFinal(s pcnodev1.TaskState) bool {
	switch s {
	case pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskState_TASK_STATE_CANCELLED:
		return true
	}
	return false
}

// update writes a change to a task and, when its state changed, announces
// it. The write happens before the announcement, always.
func (d *Daemon) update(ctx context.Context, id string, fn func(*pcnodev1.Task)) (*pcnodev1.Task, error) {
	// Writers run concurrently: bbolt serialises the transactions, and the
	// announcement (events.flush) publishes, under its own lock, every
	// change written since the last one in revision order, so watchers
	// see each task's changes in the order they were written, each after
	// its write. Holding one lock across a write and its announcement
	// would keep the next write waiting for the fan-out to every watcher.
	// writeMu is taken shared: a test takes it exclusively to hold writes.
	d.writeMu.RLock()
	defer d.writeMu.RUnlock()
	var before pcnodev1.TaskState
	var since time.Time // when the task entered before: the metrics' durations
	t, err := d.store.ModifyTask(ctx, id, func(t *pcnodev1.Task) error {
		before, since = t.GetState(), t.GetUpdateTime().AsTime()
		fn(t)
		if t.GetState() != before {
			t.UpdateTime = timestamppb.Now()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if t.GetState() != before {
		d.observeTransition(before, since, t)
		d.announce(t)
	}
	return t, nil
}

// announce publishes the state change just written to t, with every other
// one written since the last announcement, in revision order. The write has
// happened and is durable, so a caller's cancelled context does not stop its
// announcement.
func (d *Daemon) announce(t *pcnodev1.Task) {
	if err := d.events.flush(context.Background(), d.store); err != nil {
		d.log.Error("announcing state changes", "task", t.GetId(), "err", err)
	}
	d.node.changed(pcnodev1.NodeChange_NODE_CHANGE_ALLOCATION)
}

// publish sends a non-state event of a task.
func (d *Daemon) publish(id string, ev *pcnodev1.TaskEvent) {
	ev.TaskId = id
	if ev.Time == nil {
		ev.Time = timestamppb.Now()
	}
	d.events.publish(ev)
}

// finish moves a task to its final state with reason and message.
func (d *Daemon) finish(ctx context.Context, id string, state pcnodev1.TaskState, reason pcnodev1.TaskReason, msg string, fn func(*pcnodev1.Task)) (*pcnodev1.Task, error) {
	return d.update(ctx, id, func(t *pcnodev1.Task) {
		if IsFinal(t.GetState()) {
			return
		}
		t.State, t.Reason, t.Message = state, reason, msg
		t.FinishTime = timestamppb.New(time.Now())
		if fn != nil {
			fn(t)
		}
	})
}
