package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// containerd being unreachable is never a task's failure. A task that meets
// it before its process runs goes back to the queue; the steps after
// supervise wait for containerd and try again. A step's error counts as
// containerd being unreachable when it wraps runtime.ErrUnavailable or when
// containerd does not answer a ping right after it (outageCause).
//
//   - resolve image (GetImage, Pull, reading processing-container.json):
//     nothing of the task is in containerd; the task is queued again at
//     once (requeue): QUEUED with a message, its allocation released, its
//     opened directories closed, its in-memory registry credentials kept.
//     The scheduler admits nothing while containerd is down, and admits
//     it again once containerd is back; its steps start over at allocate.
//   - start (runtime.Start): containerd may hold a created container (its
//     own clean up could not reach containerd either) and, if the start
//     request got through before the answer was lost, a started process.
//     So the runner keeps the allocation and waits for containerd
//     (containerdGone), then asks it: no container, the task is queued
//     again; a created, never started one, it is deleted and the task
//     queued again; a started one is adopted as recovery does (RUNNING with
//     the container's creation time, then supervise): a process is never
//     started twice. Nothing is admitted while containerd is down, so the
//     allocation held meanwhile keeps no other task out. A daemon stopped
//     meanwhile leaves the task PREPARING, which recovery resolves the
//     same way.
//   - collect usage (Usage) and clean up (Delete): retried once containerd
//     answers (waitReachable), until the runner is detached; the final
//     state is never written without usage for that reason, the container
//     never left behind and the log sealed only after the delete.
//     Supervise waits for containerd the same way (step_supervise.go) and
//     so does a stop (signalStop).
//
// A task whose stop was requested (a cancel) is not queued again: it ends
// CANCELLED as a cancel before the start does.

// containerdDownError is a step that failed because containerd could not be
// reached (runtime.ErrUnavailable).
type containerdDownError struct {
	step     string // what the step was doing, for the message
	err      error
	mayExist bool // start: a container (even a started one) may have been left
}

func (e *containerdDownError) Error() string {
	return fmt.Sprintf("containerd unreachable while %s: %v", e.step, e.err)
}

func (e *containerdDownError) Unwrap() error { return e.err }

// containerdDown returns a *containerdDownError for err when err says
// containerd could not be reached, else nil.
func containerdDown(step string, err error, mayExist bool) error {
	if !errors.Is(err, runtime.ErrUnavailable) {
		return nil
	}
	return &containerdDownError{step: step, err: err, mayExist: mayExist}
}

// outageCause returns err, or, when err does not say containerd was
// unreachable but containerd does not answer a ping now (Version, bounded
// by containerdPingTimeout), err joined with runtime.ErrUnavailable. Some
// of containerd's client code reports a connection cut mid-call without
// gRPC's code (a pull's content writer: "failed to send write: EOF"); a
// step that failed while containerd went away is containerd's outage, not
// the task's failure.
func (d *Daemon) outageCause(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, runtime.ErrUnavailable) || ctx.Err() != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, containerdPingTimeout)
	defer cancel()
	_, perr := d.rt.Version(pctx)
	if ctx.Err() != nil || perr == nil || !(errors.Is(perr, runtime.ErrUnavailable) || errors.Is(perr, context.DeadlineExceeded)) {
		return err
	}
	return fmt.Errorf("%w; containerd does not answer (%w): %v", err, runtime.ErrUnavailable, perr)
}

// waitReachable reports err (which found containerd unreachable) to the
// health monitor, waits a little and then until the monitor finds
// containerd up again. It returns ctx's error when ctx ends first.
func (d *Daemon) waitReachable(ctx context.Context, err error) error {
	d.ctrd.down(err)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(containerdRetryMin):
	}
	return d.ctrd.waitContainerd(ctx)
}

// deleteContainer deletes task id's container (gone already is fine),
// trying again each time containerd is back while it cannot be reached.
// It returns ctx's error when ctx ends first, or containerd's other errors.
func (d *Daemon) deleteContainer(ctx context.Context, id string) error {
	warned := false
	for {
		dctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
		err := d.rt.Delete(dctx, id)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, runtime.ErrUnavailable) {
			if err != nil && ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if !warned {
			d.log.Warn("deleting container: containerd unreachable; trying again once it answers", "task", id, "err", err)
			warned = true
		}
		if werr := d.waitReachable(ctx, err); werr != nil {
			return werr
		}
	}
}

// containerdGone handles a step before supervise that failed with
// containerd unreachable (see above). It returns the task to supervise when
// start's container turned out to be started (adopted), nil and nil when
// the task went back to the queue or the runner was detached, and an error
// for fail otherwise.
func (r *runner) containerdGone(task *pcnodev1.Task, cd *containerdDownError) (*pcnodev1.Task, error) {
	d := r.d
	d.ctrd.down(cd.err)
	if cd.mayExist {
		r.log.Warn("containerd unreachable while starting: waiting for it to say whether the container exists", "err", cd.err)
		if _, err := d.update(r.ctx, r.id, func(t *pcnodev1.Task) {
			if !IsFinal(t.GetState()) {
				t.Message = fmt.Sprintf("%v; waiting for containerd to say whether the container was created (the task is queued again if it was not started)", cd)
			}
		}); err != nil && r.ctx.Err() == nil {
			r.log.Warn("recording the wait for containerd", "err", err)
		}
		var found *runtime.ContainerInfo
		cause := cd.err
		for {
			if err := d.waitReachable(r.ctx, cause); err != nil {
				return nil, nil // detached: recovery resolves a PREPARING task
			}
			cs, err := r.rt.ListContainers(r.ctx)
			if errors.Is(err, runtime.ErrUnavailable) {
				cause = err
				continue
			}
			if err != nil {
				if r.ctx.Err() != nil {
					return nil, nil
				}
				return nil, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v; then listing containers: %v", cd, err)
			}
			for i := range cs {
				if cs[i].TaskID == r.id {
					found = &cs[i]
				}
			}
			break
		}
		switch {
		case found == nil: // nothing was created, or start's clean up got through
		case found.State == runtime.StateCreated: // never started: no process ran
			if err := d.deleteContainer(r.ctx, r.id); err != nil {
				if r.ctx.Err() != nil {
					return nil, nil
				}
				return nil, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v; then deleting the created container: %v", cd, err)
			}
		default: // started: it must not run again
			at := timestamppb.Now()
			if !found.Created.IsZero() {
				at = timestamppb.New(found.Created)
			}
			t, err := r.markRunning(context.WithoutCancel(r.ctx), at, "")
			if err != nil {
				return nil, err
			}
			r.log.Info("adopting the container started while containerd was unreachable", "container_state", string(found.State))
			return t, nil
		}
	}
	if !r.requeue(task, cd) {
		return nil, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", cd)
	}
	return nil, nil
}

// requeue hands the runner's task back to the queue: QUEUED with a message
// saying why, its allocation released and cleared, its opened directories
// closed, its registry credentials kept for the next pull. It refuses
// (false) when a stop was requested: the task then ends as a cancel before
// the start. From the moment it accepts, stop requests to this runner are
// refused and cancelTask finds the task in the queue (queuedTask.cancelled
// covers a cancel between the two). While the daemon is closing the task
// is left QUEUED in the store, and the next start queues it.
func (r *runner) requeue(task *pcnodev1.Task, cause error) bool {
	d := r.d
	r.mu.Lock()
	if r.stopWhy != stopNone {
		r.mu.Unlock()
		return false
	}
	r.gone = true
	r.mu.Unlock()
	r.requeued = true
	d.dropChannels(r.id)
	d.sched.Release(r.id)
	d.node.changed(pcnodev1.NodeChange_NODE_CHANGE_ALLOCATION)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), storeTimeout)
	defer cancel()
	msg := fmt.Sprintf("requeued: %v; it runs once containerd is back", cause)
	if t, err := d.update(wctx, r.id, func(t *pcnodev1.Task) {
		t.State = pcnodev1.TaskState_TASK_STATE_QUEUED
		t.Message = msg
		t.Allocation = nil
	}); err != nil {
		// Left PREPARING: allocate writes it again when it is admitted.
		r.log.Error("recording the task queued again", "err", err)
	} else {
		task = t
	}
	req := d.schedRequest(task.GetSpec(), task.GetInstance())
	req.ID, req.Submitted = r.id, task.GetCreateTime().AsTime()
	qt := &queuedTask{auth: r.auth, deadline: d.startupDeadline(task)}
	d.mu.Lock()
	if d.runners[r.id] == r {
		delete(d.runners, r.id)
	}
	closing := d.closing
	if !closing {
		d.queued[r.id] = qt
	}
	d.mu.Unlock()
	r.log.Warn("containerd unreachable before the container started: task queued again", "err", cause)
	if closing {
		return true
	}
	if err := d.sched.Enqueue(req); err != nil {
		d.mu.Lock()
		delete(d.queued, r.id)
		d.mu.Unlock()
		d.sealLog(wctx, r.id)
		d.finish(wctx, r.id, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_START_ERROR, fmt.Sprintf("not admitted again: %v", err), nil)
		return true
	}
	// A cancel between the runner letting go and the scheduler having it
	// was recorded (cancelTask), as enqueue does.
	d.mu.Lock()
	cancelled := qt.cancelled && d.sched.Remove(r.id)
	if cancelled {
		delete(d.queued, r.id)
	}
	d.mu.Unlock()
	if cancelled {
		d.sealLog(wctx, r.id)
		d.finish(wctx, r.id, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, "cancelled while queued", nil)
	}
	d.kick()
	return true
}
