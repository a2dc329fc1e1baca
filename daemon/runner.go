package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// A task's life is a list of steps, one goroutine per task once the
// scheduler admits it (docs/lifecycle.md lists their guarantees):
//
//	allocate         PREPARING with the scheduler's allocation (step_allocate.go)
//	resolve image    image present or pulled; late template resolution;
//	                 digest and default limits written (step_image.go)
//	prepare outputs  host directories opened without following symlinks,
//	                 checked for overlap, outputs emptied (step_prepare.go)
//	create           outputs owned by the task's user; container spec;
//	                 staging mounts of the opened directories (step_create.go)
//	start            container created and started; RUNNING (step_start.go)
//	supervise        wait for exit, execution timeout, cancels (step_supervise.go)
//	collect usage    exit status and cgroup usage to an outcome (step_usage.go)
//	write manifests  output manifests walked and stored (step_manifests.go)
//	finish           final state written (step_finish.go)
//	clean up         container deleted; log sealed (step_cleanup.go)
//
// Each step is a method of runner in its own file. Every step may be cut
// short by a crash at any point and is safe to run again from what it left
// (the crash points of crashpoint.go sit between its durable effects);
// recovery (recover.go) decides from the store and containerd at which step
// a task resumes. A runner that is detached (daemon shutdown) stops at the
// next step boundary without touching the container; the next daemon start
// resumes it the same way.

// stopReason says why the daemon stopped a container.
type stopReason int

const (
	stopNone stopReason = iota
	stopCancel
	stopTimeout
)

type runner struct {
	d     *Daemon
	rt    containerRuntime // d.rt: what the steps say to containerd
	id    string
	log   *slog.Logger
	alloc sched.Assignment
	auth  *runtime.Auth

	ctx    context.Context // cancelled on detach
	cancel context.CancelFunc
	done   chan struct{}

	resolvedLate  bool  // resolveImage resolved the template just now; prepareOutputs checks the spec's paths
	peakGPUMemory int64 // highest sampled GPU memory of the task's processes; supervise's goroutine only

	mu        sync.Mutex
	stopWhy   stopReason
	stopGrace time.Duration // grace in force: the first request's, or the shorter one of an escalation
	stopBy    time.Time     // when SIGKILL is due
	stopCh    chan struct{} // closed when a stop is first requested
	escalate  chan struct{} // (buffered 1) signalled when a later request shortens the grace
}

func (d *Daemon) newRunner(id string, a sched.Assignment, auth *runtime.Auth) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	return &runner{
		d: d, rt: d.rt, id: id, alloc: a, auth: auth,
		log: d.log.With("task", id),
		ctx: ctx, cancel: cancel,
		done:     make(chan struct{}),
		stopCh:   make(chan struct{}),
		escalate: make(chan struct{}, 1),
	}
}

// detachTimeout bounds how long detach waits for a runner to reach a step
// boundary. Every step stops at the runner's context; what is left after it
// (a store write under way, a containerd call returning) takes well under
// this.
const detachTimeout = 5 * time.Second

// detach stops the runner without touching its container, waiting at most
// detachTimeout for it to stop. A task detached during collect stays
// RUNNING with its stopped container: the next start resumes it at
// supervise, whose Wait returns at once, and collects again.
func (r *runner) detach() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(detachTimeout):
		r.log.Warn("runner did not stop within the detach timeout; leaving it", "timeout", detachTimeout)
	}
}

// waitCleanup waits until the runner of task id, if one exists, has ended
// (its container deleted and its log sealed), or ctx ends: a reader of a
// final task's log then sees all of it.
func (d *Daemon) waitCleanup(ctx context.Context, id string) {
	d.mu.Lock()
	r := d.runners[id]
	d.mu.Unlock()
	if r == nil {
		return
	}
	select {
	case <-r.done:
	case <-ctx.Done():
	}
}

// stopOutcome is what a stop request did.
type stopOutcome struct {
	first     bool          // this request started the stop
	escalated bool          // this request shortened the grace of an earlier one
	why       stopReason    // the reason in force (the first request's)
	left      time.Duration // from now until SIGKILL is due
}

// requestStop asks the runner to stop the container for why, with grace.
// The first request sets the reason and closes stopCh. A later one cannot
// change the reason, but when its grace ends before what is left of the
// grace in force, it replaces it (0: SIGKILL now) and signals escalate, on
// which supervise signals the container again; a longer grace never
// extends a stop.
func (r *runner) requestStop(why stopReason, grace time.Duration) stopOutcome {
	grace = max(grace, 0)
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.stopWhy == stopNone {
		r.stopWhy, r.stopGrace, r.stopBy = why, grace, now.Add(grace)
		close(r.stopCh)
		return stopOutcome{first: true, why: why, left: grace}
	}
	left := max(r.stopBy.Sub(now), 0)
	if grace >= left {
		return stopOutcome{why: r.stopWhy, left: left}
	}
	r.stopGrace, r.stopBy = grace, now.Add(grace)
	select {
	case r.escalate <- struct{}{}:
	default: // one is pending: supervise reads the new grace when it takes it
	}
	return stopOutcome{escalated: true, why: r.stopWhy, left: grace}
}

// stopRequest returns the reason of the stop and the grace in force.
func (r *runner) stopRequest() (stopReason, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopWhy, r.stopGrace
}

// stopLeft is how long from now until SIGKILL is due (0: now).
func (r *runner) stopLeft() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return max(time.Until(r.stopBy), 0)
}

// signalStop sends SIGTERM to the container and SIGKILL after grace unless
// it exits first (the runtime's Stop), in the background. supervise calls it
// on the first stop request and again on every escalation: each call sends
// SIGTERM again and brings SIGKILL forward to its own grace. While
// containerd cannot be reached it tries again every second, with what is
// left of the grace then, until the runner ends or is detached.
func (r *runner) signalStop(grace time.Duration) {
	go func() {
		for {
			err := r.d.rt.Stop(r.ctx, r.id, grace)
			if err == nil || r.ctx.Err() != nil {
				return
			}
			if !errors.Is(err, runtime.ErrUnavailable) {
				r.log.Warn("stopping container", "grace", grace, "err", err)
				return
			}
			r.log.Warn("stopping container: containerd unreachable; trying again", "err", err)
			select {
			case <-r.done:
				return
			case <-r.ctx.Done():
				return
			case <-time.After(stopRetryInterval):
			}
			grace = r.stopLeft()
		}
	}()
}

// stopRetryInterval is how long signalStop waits before trying again to
// stop a container while containerd cannot be reached.
var stopRetryInterval = time.Second

// stepError is a failed step: the final state to record.
type stepError struct {
	reason pcnodev1.TaskReason
	msg    string
}

func (e *stepError) Error() string { return e.msg }

func failStep(reason pcnodev1.TaskReason, format string, args ...any) error {
	return &stepError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// release frees what the runner holds once it has ended.
func (r *runner) release() {
	r.d.mu.Lock()
	delete(r.d.runners, r.id)
	r.d.mu.Unlock()
	r.d.dropChannels(r.id)
	r.d.sched.Release(r.id)
	// The final state was announced before the resources were free: tell
	// node watchers again now that the allocation is gone.
	r.d.node.changed(pcnodev1.NodeChange_NODE_CHANGE_ALLOCATION)
	r.d.kick()
	close(r.done)
}

// run is the whole life of a freshly admitted task: the steps in order.
func (r *runner) run() {
	defer r.release()
	task, err := r.allocate()
	if err == nil {
		task, err = r.resolveImage(task)
	}
	if err == nil {
		err = r.prepareOutputs(task)
	}
	if err == nil {
		task, err = r.start(task)
	}
	if err != nil {
		r.fail(task, err)
		return
	}
	r.superviseAndCollect(task)
}

// resume follows a task whose container was started by an earlier daemon:
// the steps from supervise on.
func (r *runner) resume(task *pcnodev1.Task) {
	defer r.release()
	r.superviseAndCollect(task)
}

// superviseAndCollect runs the steps from supervise to clean up. Each stops
// when the runner is detached: the task stays RUNNING and its stopped
// container stays, so the next start runs them again.
func (r *runner) superviseAndCollect(task *pcnodev1.Task) {
	exit, err := r.supervise(task)
	if r.ctx.Err() != nil {
		return // detached: the next daemon start picks the task up
	}
	if err != nil {
		r.fail(task, failStep(pcnodev1.TaskReason_TASK_REASON_LOST, "waiting for the container: %v", err))
		return
	}
	crashAt(crashAfterExit)
	out, err := r.collectUsage(r.ctx, task, exit)
	if err != nil {
		return // detached
	}
	if err := r.writeManifests(r.ctx, task, out); err != nil {
		return // detached
	}
	if err := r.finishTask(r.ctx, task, out); err != nil {
		if r.ctx.Err() == nil {
			r.log.Error("recording final state", "err", err)
		}
		return
	}
	r.cleanup(r.ctx)
}

// stepCtx is the context for prepare and start: cancelled on detach, on a
// stop request and at the startup deadline.
func (r *runner) stepCtx(task *pcnodev1.Task) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.ctx)
	if dl := r.d.startupDeadline(task); !dl.IsZero() {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, dl)
		prev := cancel
		cancel = func() { c2(); prev() }
	}
	go func() {
		select {
		case <-r.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (d *Daemon) startupTimeout(task *pcnodev1.Task) time.Duration {
	if t := task.GetSpec().GetStartupTimeout(); t != nil && t.AsDuration() > 0 {
		return t.AsDuration()
	}
	return d.cfg.Tasks.StartupTimeout.Duration
}

func (d *Daemon) startupDeadline(task *pcnodev1.Task) time.Time {
	t := d.startupTimeout(task)
	if t <= 0 {
		return time.Time{}
	}
	return task.GetCreateTime().AsTime().Add(t)
}

func (d *Daemon) executionTimeout(task *pcnodev1.Task) time.Duration {
	if t := task.GetSpec().GetExecutionTimeout(); t != nil && t.AsDuration() > 0 {
		return t.AsDuration()
	}
	return d.cfg.Tasks.ExecutionTimeout.Duration
}

// gracePeriod is the request's grace, else the spec's, else the node's.
func (d *Daemon) gracePeriod(task *pcnodev1.Task, req *durationpb.Duration) time.Duration {
	if req != nil && req.AsDuration() > 0 {
		return req.AsDuration()
	}
	if g := task.GetSpec().GetStopGracePeriod(); g != nil && g.AsDuration() > 0 {
		return g.AsDuration()
	}
	return d.cfg.Tasks.StopGracePeriod.Duration
}
