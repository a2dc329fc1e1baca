package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// recover resumes every task an earlier daemon left unfinished, at the
// step that the stored state and containerd together say comes next. It is
// not a second lifecycle: each case below hands the task to the steps of
// runner.go.
//
// QUEUED: queued again (the scheduler admits it; run starts at allocate).
//
// PREPARING (allocate, resolve image, prepare outputs, create or start
// were under way):
//   - no container: nothing durable outside the store happened but the
//     image and emptied outputs, which the steps redo; queued again with
//     no allocation, so that they run from allocate;
//   - a container whose task was never started (containerd says created;
//     crash inside runtime.Start): it is deleted — no process ran — and
//     the task queued again as above, so start creates it afresh;
//   - a container whose task was started (running, paused, stopped or of
//     unknown state: crash after the start, before RUNNING was written):
//     the process ran and must not run again, so it is adopted: the
//     allocation restored, RUNNING written with the container's creation
//     time as the start time (markRunning), and the task resumed at
//     supervise like a RUNNING one.
//
// RUNNING:
//   - a container (any state): resumed at supervise; a stopped one's Wait
//     returns at once with its real exit status, then collect usage, write
//     manifests, finish and clean up run (again, if a crash or a detach cut
//     them short: each is safe to re-run). A container that exists without
//     a task (containerd lost it, as on a host reboot) fails at supervise as
//     LOST;
//   - no container: the container is deleted only after the final state
//     is written, and RUNNING is written only after the container was
//     started, so no crash of the daemon leads here; the container was
//     removed behind the daemon's back (or containerd's state was lost),
//     and its exit status with it: the task is LOST, its outputs are made
//     safe (fixOutputs) and its log sealed.
//
// Final tasks are not unfinished, but their clean up may be: a container
// in pcnode's namespace whose task is final (crash after the final state)
// is deleted and its log sealed; a final task's log without its end marker
// (crash after the delete), of a task finished within recentLogWindow, is
// sealed in the background after the start (checkRecentLogs). A container
// of no known task is left alone.
//
// A stop request recorded on the task (Task.stop_request: a cancel or an
// execution timeout the earlier daemon had begun) is taken up: a task with
// a cancel that had not started (QUEUED, or PREPARING without a started
// container) ends CANCELLED instead of being queued again; a resumed one
// gets the request back (restoreStop), so supervise signals it again at
// once with what is left of its grace (SIGKILL when it has passed) and it
// ends CANCELLED or FAILED/TIMEOUT as without the restart.
//
// Host directories of resumed tasks are opened again without following
// symlinks, so later tasks' outputs are checked against them
// (channels.go).
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
		cancelled := stopReasonOf(t.GetStopRequest().GetReason()) == stopCancel
		switch t.GetState() {
		case pcnodev1.TaskState_TASK_STATE_PREPARING:
			if has && c.State != runtime.StateCreated {
				d.log.Info("adopting a container started before the daemon recorded RUNNING", "task", id, "container_state", string(c.State))
				if err := d.resumeTask(ctx, t, c, true); err != nil {
					return err
				}
				continue
			}
			if has {
				// Should the delete fail, start finds the container there
				// and fails the task (ErrAlreadyExists): never a second one.
				if err := d.rt.Delete(ctx, id); err != nil {
					d.log.Warn("deleting the never-started container of a preparing task", "task", id, "err", err)
				}
			}
			if cancelled {
				if err := d.cancelledBeforeStart(ctx, id); err != nil {
					return err
				}
				continue
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
			if cancelled { // answered "admitted just now" by a daemon that closed before it ended the task
				if err := d.cancelledBeforeStart(ctx, id); err != nil {
					return err
				}
				continue
			}
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
			if err := d.resumeTask(ctx, t, c, false); err != nil {
				return err
			}
		}
	}
	for id, c := range byTask {
		t, err := d.store.GetTask(ctx, id)
		if err == nil && IsFinal(t.GetState()) {
			d.log.Info("cleaning up the container of a finished task", "task", id, "container_state", string(c.State))
			if derr := d.rt.Delete(ctx, id); errors.Is(derr, runtime.ErrUnavailable) {
				// containerd went away meanwhile: delete it (and then seal
				// the log) once it is back, without holding up the start.
				d.wg.Add(1)
				go func() { defer d.wg.Done(); d.cleanupTask(ctx, id) }()
				continue
			} else if derr != nil {
				d.log.Warn("deleting the container of a finished task", "task", id, "err", derr)
			}
			d.sealLog(ctx, id)
			continue
		}
		d.log.Warn("container in pcnode's namespace has no unfinished task; leaving it", "container", c.ID, "task", id, "state", string(c.State))
	}
	d.checkRecentLogs(ctx)
	return nil
}

// resumeTask restores a started task's allocation and opened directories
// and starts its runner at supervise; adopt first records RUNNING for a
// task still PREPARING (its process was started).
func (d *Daemon) resumeTask(ctx context.Context, t *pcnodev1.Task, c runtime.ContainerInfo, adopt bool) error {
	id := t.GetId()
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
	r := d.newRunner(id, a, nil)
	r.restoreStop(t.GetStopRequest())
	if adopt {
		at := timestamppb.Now()
		if !c.Created.IsZero() {
			at = timestamppb.New(c.Created)
		}
		var err error
		if t, err = r.markRunning(ctx, at, ""); err != nil {
			d.sched.Release(id)
			return err
		}
	}
	d.reopenChannels(t)
	d.mu.Lock()
	d.runners[id] = r
	d.mu.Unlock()
	d.log.Info("re-attached task", "task", id, "container_state", string(c.State))
	go r.resume(t)
	return nil
}

// cancelledBeforeStart ends a task whose recorded cancel came before its
// container started: CANCELLED, its log sealed.
func (d *Daemon) cancelledBeforeStart(ctx context.Context, id string) error {
	d.sealLog(ctx, id)
	_, err := d.finish(ctx, id, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED,
		"cancelled before the container started (the daemon restarted meanwhile)", nil)
	return err
}

// recentLogWindow is how recently a final task must have finished for the
// start's check of its log (checkRecentLogs): a log left unsealed by a
// crash belongs to a task that finished just before the crash, and reading
// every retained log at every start would cost a full read of each.
const recentLogWindow = 24 * time.Hour

// checkRecentLogs seals, in the background, the log of every final task
// that finished within recentLogWindow and whose log has no end marker (a
// crash between deleting its container and sealing its log, with a log
// driver that could not seal it itself): its followers would otherwise
// wait for more. The tasks come from the store's by_finish index, not
// from the logs directory, so that a start never lists or stats the logs
// of every retained task; the check itself reads each recent log's newest
// segment, which on a node of many tasks takes seconds, so it runs after
// the start, newest first (a crash leaves the newest unsealed), and a
// reader of a log not yet checked checks it first (ReadTaskLog,
// checkLogBeforeRead).
func (d *Daemon) checkRecentLogs(ctx context.Context) {
	ids, err := d.store.FinishedSince(ctx, time.Now().Add(-recentLogWindow))
	if err != nil {
		d.log.Warn("listing the tasks finished within a day, whose logs are checked", "err", err)
	}
	done := d.setUnchecked(ids)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(done)
		start := time.Now()
		next := make(chan string)
		var wg sync.WaitGroup
		for range recentLogWorkers() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range next {
					if d.isUnchecked(id) {
						d.sealIfOpen(ctx, id)
						d.checked(id)
					}
				}
			}()
		}
	feed:
		for _, id := range ids {
			select {
			case next <- id:
			case <-ctx.Done():
				break feed
			}
		}
		close(next)
		wg.Wait()
		if len(ids) > 0 && ctx.Err() == nil {
			d.log.Info("checked the logs of the tasks finished within a day", "count", len(ids), "took", time.Since(start).Round(time.Millisecond))
		}
	}()
}

// recentLogWorkers is how many logs checkRecentLogs checks at once: half
// the CPUs, one to four, so that the check leaves the daemon room.
func recentLogWorkers() int {
	return min(4, max(1, goruntime.NumCPU()/2))
}

// checkLogBeforeRead seals final task id's log before it is read when the
// start's check (checkRecentLogs) has not come to it yet.
func (d *Daemon) checkLogBeforeRead(ctx context.Context, id string) {
	if d.isUnchecked(id) {
		d.sealIfOpen(ctx, id)
		d.checked(id)
	}
}

// sealIfOpen seals final task id's log when it exists and has no end
// marker. Sealing is idempotent (logs.Seal waits for the log's lock and
// appends no second marker), so two callers at once do no harm.
func (d *Daemon) sealIfOpen(ctx context.Context, id string) {
	info, err := logs.Stat(d.taskLogDir(id))
	if err != nil || info.Ended {
		return // no log (absent logs are tolerated), or sealed
	}
	if t, err := d.store.GetTask(ctx, id); err == nil && IsFinal(t.GetState()) {
		d.log.Info("sealing the log of a finished task left open by a crash", "task", id)
		d.sealLog(ctx, id)
	}
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
