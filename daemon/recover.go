package daemon

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// recover reconciles the store with containerd after a start:
//   - QUEUED tasks are queued again;
//   - PREPARING tasks lost their preparation: any container is removed and
//     they are queued again;
//   - RUNNING tasks whose container still exists are re-attached (a stopped
//     one finishes at once with its real exit status and outputs); their
//     host directories are opened again without following symlinks, so
//     later tasks' outputs are checked against them (channels.go);
//   - RUNNING tasks whose container vanished become LOST.
func (d *Daemon) recover(ctx context.Context) error {
	tasks, err := d.store.Unfinished(ctx)
	if err != nil {
		return err
	}
	containers, err := d.rt.ListContainers(ctx)
	if err != nil {
		return err
	}
	byTask := map[string]runtime.ContainerInfo{}
	for _, c := range containers {
		byTask[c.TaskID] = c
	}
	for _, t := range tasks {
		id := t.GetId()
		c, has := byTask[id]
		delete(byTask, id)
		switch t.GetState() {
		case pcnodev1.TaskState_TASK_STATE_PREPARING:
			if has {
				_ = d.rt.Delete(ctx, id)
			}
			t, err = d.update(ctx, id, func(t *pcnodev1.Task) {
				t.State = pcnodev1.TaskState_TASK_STATE_QUEUED
				t.Message = "requeued: the daemon restarted while preparing"
				t.Allocation = nil
			})
			if err != nil {
				return err
			}
			fallthrough
		case pcnodev1.TaskState_TASK_STATE_QUEUED:
			d.enqueue(ctx, t, d.schedRequest(t.GetSpec(), t.GetInstance()), nil)
		case pcnodev1.TaskState_TASK_STATE_RUNNING:
			if !has {
				d.sealLog(ctx, id)
				warnings := d.fixOutputs(ctx, t) // it ran: leave no privilege in its outputs
				if _, err := d.finish(ctx, id, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_LOST,
					"the container vanished while the daemon was down", func(t *pcnodev1.Task) { t.Warnings = append(t.Warnings, warnings...) }); err != nil {
					return err
				}
				continue
			}
			req := d.schedRequest(t.GetSpec(), t.GetInstance())
			req.ID, req.Submitted = id, t.GetCreateTime().AsTime()
			var uuids []string
			for _, g := range t.GetAllocation().GetGpus() {
				uuids = append(uuids, g.GetUuid())
			}
			if err := d.sched.Restore(req, uuids); err != nil {
				d.log.Warn("restoring allocation", "task", id, "err", err)
			}
			a, _ := d.sched.Allocation(id)
			d.reopenChannels(t)
			r := d.newRunner(id, a, nil)
			d.mu.Lock()
			d.runners[id] = r
			d.mu.Unlock()
			d.log.Info("re-attached task", "task", id, "container_state", string(c.State))
			go r.resume(t)
		}
	}
	for id, c := range byTask {
		d.log.Warn("container in pcnode's namespace has no unfinished task; leaving it", "container", c.ID, "task", id, "state", string(c.State))
	}
	return nil
}

// retentionLoop removes finished tasks and their logs once they are older
// than tasks.retention.
func (d *Daemon) retentionLoop(ctx context.Context) {
	interval := min(time.Hour, max(d.cfg.Tasks.Retention.Duration/10, time.Minute))
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		d.expire(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Daemon) expire(ctx context.Context, now time.Time) {
	if d.cfg.Tasks.Retention.Duration <= 0 {
		return
	}
	ids, err := d.store.DeleteFinishedBefore(ctx, now.Add(-d.cfg.Tasks.Retention.Duration))
	for _, id := range ids {
		if rerr := os.RemoveAll(d.taskLogDir(id)); rerr != nil {
			d.log.Warn("removing logs of expired task", "task", id, "err", rerr)
		}
	}
	if len(ids) > 0 {
		d.log.Info("removed expired tasks", "count", len(ids))
	}
	if err != nil {
		d.log.Error("retention", "err", fmt.Errorf("deleting expired tasks: %w", err))
	}
}
