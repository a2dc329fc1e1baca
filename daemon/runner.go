package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

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
//
// containerd going away is not a task's failure (step_requeue.go): a task
// whose resolve image or start met containerd unreachable goes back to the
// queue (after start: once containerd says whether the container was
// created or started), and the steps after supervise wait for containerd
// and try again (waitReachable).

// stopReason says why the daemon stopped a container.
type stopReason int

const (
	stopNone stopReason = iota
	stopCancel
	stopTimeout
)

// taskReason is how the task record spells a stop reason (StopRequest.reason).
func (w stopReason) taskReason() pcnodev1.TaskReason {
	switch w {
	case stopCancel:
		return pcnodev1.TaskReason_TASK_REASON_CANCELLED
	case stopTimeout:
		return pcnodev1.TaskReason_TASK_REASON_TIMEOUT
	}
	return pcnodev1.TaskReason_TASK_REASON_UNSPECIFIED
}

// stopReasonOf is the stop reason of a recorded StopRequest's reason.
func stopReasonOf(r pcnodev1.TaskReason) stopReason {
	switch r {
	case pcnodev1.TaskReason_TASK_REASON_CANCELLED:
		return stopCancel
	case pcnodev1.TaskReason_TASK_REASON_TIMEOUT:
		return stopTimeout
	}
	return stopNone
}

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

	requeued bool // the task went back to the queue (requeue): release leaves the scheduler and channels alone; run's goroutine only

	mu        sync.Mutex
	stopWhy   stopReason
	stopGrace time.Duration // grace in force: the first request's, or the shorter one of an escalation
	stopAt    time.Time     // when the first request came
	stopBy    time.Time     // when SIGKILL is due
	stopCh    chan struct{} // closed when a stop is first requested
	escalate  chan struct{} // (buffered 1) signalled when a later request shortens the grace
	gone      bool          // the runner handed its task back to the queue: stop requests are refused (cancelTask looks again)
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
	gone      bool          // refused: the runner handed its task back to the queue
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
	if r.gone {
		return stopOutcome{gone: true}
	}
	now := time.Now()
	if r.stopWhy == stopNone {
		r.stopWhy, r.stopGrace, r.stopAt, r.stopBy = why, grace, now, now.Add(grace)
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

// stopRecord is the stop request in force as the task record keeps it
// (Task.stop_request); nil when none was made.
func (r *runner) stopRecord() *pcnodev1.StopRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopWhy == stopNone {
		return nil
	}
	return &pcnodev1.StopRequest{
		Reason:      r.stopWhy.taskReason(),
		RequestTime: timestamppb.New(r.stopAt),
		GracePeriod: durationpb.New(r.stopGrace),
		KillTime:    timestamppb.New(r.stopBy),
	}
}

// persistStop writes the stop request in force to the task record, with
// the message msg(state) when msg is not nil, and returns the task; a
// finished task is returned unchanged. CancelTask answers, and supervise
// signals a timeout stop, only after it: a daemon restarted during the
// grace period stops the task again (restoreStop). The write is read from
// the runner inside the store's transaction, so of two racing writers
// (a cancel and the execution timeout) the last one writes the latest
// request. It is bounded by storeTimeout and not cut short by ctx.
func (r *runner) persistStop(ctx context.Context, msg func(pcnodev1.TaskState) string) (*pcnodev1.Task, error) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	return r.d.update(wctx, r.id, func(t *pcnodev1.Task) {
		if IsFinal(t.GetState()) {
			return
		}
		t.StopRequest = r.stopRecord()
		if msg != nil {
			t.Message = msg(t.GetState())
		}
	})
}

// restoreStop takes up the stop request an earlier daemon recorded for a
// task this runner resumes: the same reason, the grace in force and the
// same SIGKILL time, so that supervise signals the container again at once
// with what is left of the grace (SIGKILL at once when it has passed), and
// collect usage judges the outcome by the reason (CANCELLED, TIMEOUT). It
// is called before the runner's goroutine starts.
func (r *runner) restoreStop(sr *pcnodev1.StopRequest) {
	why := stopReasonOf(sr.GetReason())
	if why == stopNone {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopWhy != stopNone {
		return
	}
	r.stopWhy, r.stopGrace = why, max(sr.GetGracePeriod().AsDuration(), 0)
	r.stopAt, r.stopBy = sr.GetRequestTime().AsTime(), sr.GetKillTime().AsTime()
	close(r.stopCh)
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

// release frees what the runner holds once it has ended. A runner that
// handed its task back to the queue (requeue) released the allocation and
// the opened directories then, and a new runner of the task may hold them
// now: it leaves them alone.
func (r *runner) release() {
	r.d.mu.Lock()
	if r.d.runners[r.id] == r {
		delete(r.d.runners, r.id)
	}
	r.d.mu.Unlock()
	if !r.requeued {
		r.d.dropChannels(r.id)
		r.d.sched.Release(r.id)
	}
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
	var cd *containerdDownError
	if err != nil && errors.As(err, &cd) && r.ctx.Err() == nil {
		// Not the task's failure: back to the queue, or adopted when start
		// turns out to have started the process (containerdGone).
		var adopted *pcnodev1.Task
		if adopted, err = r.containerdGone(task, cd); err == nil {
			if adopted == nil {
				return // queued again, or detached
			}
			task = adopted
		}
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
