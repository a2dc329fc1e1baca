package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// unavailable is an error of containerd being unreachable, as the runtime
// returns it.
func unavailable(what string) error {
	return fmt.Errorf("%s: %w at /run/test.sock: connection refused", what, runtime.ErrUnavailable)
}

// admit queues stored task id as submit does and runs one pass of the
// schedule loop: the scheduler admits it and launch starts its runner,
// which it returns.
func admit(t *testing.T, d *Daemon, id string) *runner {
	t.Helper()
	task := getTask(t, d, id)
	if _, ok := d.queued[id]; !ok {
		d.enqueue(context.Background(), task, d.schedRequest(task.GetSpec(), task.GetInstance()), nil)
	}
	for _, a := range d.sched.Schedule() {
		d.launch(a)
	}
	d.mu.Lock()
	r := d.runners[id]
	d.mu.Unlock()
	if r == nil {
		t.Fatalf("task %s not admitted", id)
	}
	t.Cleanup(r.cancel)
	return r
}

// wantRequeued checks that task id is back in the queue after containerd
// went away: QUEUED with a message naming containerd, no allocation, no
// runner, queued in the scheduler and the daemon, its directories closed,
// its allocation released.
func wantRequeued(t *testing.T, d *Daemon, id string) {
	t.Helper()
	waitRunnersDone(t, d)
	got := getTask(t, d, id)
	if got.GetState() != pcnodev1.TaskState_TASK_STATE_QUEUED || got.GetAllocation() != nil ||
		!strings.Contains(got.GetMessage(), "requeued: containerd unreachable") {
		t.Errorf("task after containerd went away = %v allocation %v %q; want QUEUED, no allocation, a message saying containerd was unreachable",
			got.GetState(), got.GetAllocation(), got.GetMessage())
	}
	if IsFinal(got.GetState()) {
		t.Fatalf("task ended %v/%v: containerd being unreachable must not end it", got.GetState(), got.GetReason())
	}
	d.mu.Lock()
	_, queued := d.queued[id]
	d.mu.Unlock()
	if snap := d.sched.Snapshot(); !queued || snap.Queued != 1 || snap.Running != 0 || snap.Allocated.MilliCPU != 0 {
		t.Errorf("after the requeue: in d.queued %v, scheduler %d queued %d running %d milli-CPU allocated; want queued, nothing allocated",
			queued, snap.Queued, snap.Running, snap.Allocated.MilliCPU)
	}
	if c := d.taskChannelsOf(id); c != nil {
		t.Errorf("the requeued task's opened directories are still registered")
	}
}

// TestRequeueWhenImageUnavailable: containerd unreachable while the image
// is resolved puts the task back in the queue; once admitted again it runs
// to its real end, started once.
func TestRequeueWhenImageUnavailable(t *testing.T) {
	for _, method := range []string{"GetImage", "Pull"} {
		t.Run(method, func(t *testing.T) {
			rt := newFakeRuntime(stepImage)
			d, root := stepDaemon(t, rt, "out")
			task := stepTask(t, d, root, "out")
			id := task.GetId()
			rt.autoExit[id] = runtime.ExitStatus{Code: 3}
			if method == "Pull" {
				rt.failNext("GetImage", stepImage, fmt.Errorf("image: %w", runtime.ErrImageNotFound))
			}
			rt.failNext(method, stepImage, unavailable(method))
			r := admit(t, d, id)
			<-r.done
			wantRequeued(t, d, id)
			if n := rt.count("Start", id); n != 0 {
				t.Errorf("Start called %d times before the requeue, want 0", n)
			}

			r = admit(t, d, id) // containerd is back
			<-r.done
			got := getTask(t, d, id)
			wantState(t, got, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT)
			if got.GetExitCode() != 3 || rt.count("Start", id) != 1 {
				t.Errorf("task = exit %d, Start called %d times; want exit 3, started once", got.GetExitCode(), rt.count("Start", id))
			}
		})
	}
}

// TestRequeueWhenPullCutOff: a pull that fails with an error not saying
// containerd was unreachable (a content stream cut: "failed to send
// write: EOF") while containerd does not answer is containerd's outage:
// the task is queued again, not failed IMAGE_ERROR. With containerd
// answering, the same error is the task's.
func TestRequeueWhenPullCutOff(t *testing.T) {
	for _, down := range []bool{true, false} {
		t.Run(fmt.Sprintf("containerd down %v", down), func(t *testing.T) {
			rt := newFakeRuntime(stepImage)
			d, root := stepDaemon(t, rt)
			task := stepTask(t, d, root)
			id := task.GetId()
			rt.failNext("GetImage", stepImage, fmt.Errorf("image: %w", runtime.ErrImageNotFound))
			rt.failNext("Pull", stepImage, errors.New("failed to copy: failed to send write: EOF"))
			if down {
				rt.failNext("Version", "", unavailable("version"))
			}
			r := admit(t, d, id)
			<-r.done
			if down {
				wantRequeued(t, d, id)
				return
			}
			wantState(t, getTask(t, d, id), pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR)
		})
	}
}

// leavingStart is a runtime whose first Start fails with containerd
// unreachable after leaving a container in state left ("" none, created,
// running), as a Start cut off by containerd going away can.
type leavingStart struct {
	*fakeRuntime
	left runtime.State

	mu     sync.Mutex
	failed bool
}

func (l *leavingStart) Start(ctx context.Context, spec runtime.ContainerSpec) (runtime.Started, error) {
	l.mu.Lock()
	first := !l.failed
	l.failed = true
	l.mu.Unlock()
	if !first {
		return l.fakeRuntime.Start(ctx, spec)
	}
	l.fakeRuntime.mu.Lock()
	l.fakeRuntime.calls = append(l.fakeRuntime.calls, "Start "+spec.ID)
	l.fakeRuntime.mu.Unlock()
	if l.left != "" {
		l.addContainer(spec.ID, l.left, runtime.ExitStatus{})
	}
	return runtime.Started{}, unavailable("start task " + spec.ID)
}

// TestRequeueWhenStartUnavailable: a start cut off by containerd going
// away is settled once containerd answers, by what it holds: no container
// or a created one (deleted) sends the task back to the queue; a started
// one is adopted and never started again.
func TestRequeueWhenStartUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		left runtime.State
	}{
		{"nothing created", ""},
		{"created, never started", runtime.StateCreated},
		{"started", runtime.StateRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &leavingStart{fakeRuntime: newFakeRuntime(stepImage), left: tc.left}
			d, root := stepDaemon(t, rt.fakeRuntime, "out")
			d.rt = rt
			task := stepTask(t, d, root, "out")
			id := task.GetId()
			rt.autoExit[id] = runtime.ExitStatus{Code: 3}
			r := admit(t, d, id)
			if tc.left == runtime.StateRunning {
				deadline := time.Now().Add(10 * time.Second)
				for getTask(t, d, id).GetState() != pcnodev1.TaskState_TASK_STATE_RUNNING {
					if time.Now().After(deadline) {
						t.Fatalf("task %v 10 s after the start was cut off, want RUNNING (adopted)", getTask(t, d, id).GetState())
					}
					time.Sleep(5 * time.Millisecond)
				}
				rt.exitContainer(id, runtime.ExitStatus{Code: 3})
				<-r.done
				got := getTask(t, d, id)
				wantState(t, got, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT)
				if n := rt.count("Start", id); n != 1 {
					t.Errorf("Start called %d times, want once: an adopted process is never started again", n)
				}
				if st := rt.state(id); st != "" {
					t.Errorf("container %q at the end, want deleted", st)
				}
				return
			}
			<-r.done
			wantRequeued(t, d, id)
			if st := rt.state(id); st != "" {
				t.Errorf("container %q after the requeue, want none (a created-only one is deleted)", st)
			}
			r = admit(t, d, id)
			<-r.done
			got := getTask(t, d, id)
			wantState(t, got, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT)
			if got.GetExitCode() != 3 || rt.count("Start", id) != 2 {
				t.Errorf("task = exit %d, Start called %d times; want exit 3, the cut-off start and one more", got.GetExitCode(), rt.count("Start", id))
			}
		})
	}
}

// TestRequeueRefusedAfterStop: a task whose cancel came first is not
// queued again; once requeued, a runner refuses stop requests, and a
// cancel finds the task in the queue and ends it CANCELLED.
func TestRequeueRefusedAfterStop(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)

	cancelled := stepTask(t, d, root)
	r := stepRunner(t, d, cancelled.GetId())
	r.requestStop(stopCancel, 0)
	if r.requeue(cancelled, unavailable("pull")) {
		t.Errorf("requeue() of a cancelled task = true, want refused")
	}

	task := stepTask(t, d, root)
	id := task.GetId()
	rt.failNext("GetImage", stepImage, unavailable("GetImage"))
	r = admit(t, d, id)
	<-r.done
	wantRequeued(t, d, id)
	if out := r.requestStop(stopCancel, time.Second); !out.gone {
		t.Errorf("requestStop() on a runner that requeued its task = %+v, want gone", out)
	}
	got, err := d.cancelTask(context.Background(), id, nil)
	if err != nil {
		t.Fatalf("cancelTask() of the requeued task = %v", err)
	}
	wantState(t, got, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED)
}

// TestCollectUsageWaitsForContainerd: usage unreadable because containerd
// is unreachable is read again once it answers, not left out.
func TestCollectUsageWaitsForContainerd(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	id := task.GetId()
	rt.addContainer(id, runtime.StateStopped, runtime.ExitStatus{Code: 3})
	rt.usage[id] = runtime.Usage{PeakMemoryBytes: 4096}
	rt.failNext("Usage", id, unavailable("metrics"))
	rt.failNext("Usage", id, unavailable("metrics"))
	o, err := stepRunner(t, d, id).collectUsage(context.Background(), task, runtime.ExitStatus{Code: 3})
	if err != nil || o.usage.GetPeakMemoryBytes() != 4096 {
		t.Errorf("collectUsage() through an outage = %+v, %v; want the usage read once containerd answered", o, err)
	}
	if n := rt.count("Usage", id); n != 3 {
		t.Errorf("Usage called %d times, want 3 (two while unreachable)", n)
	}
	// Detached while waiting: it stops.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rt.failNext("Usage", id, unavailable("metrics"))
	if _, err := stepRunner(t, d, id).collectUsage(ctx, task, runtime.ExitStatus{Code: 3}); err == nil {
		t.Errorf("collectUsage() detached while containerd is unreachable = nil error, want ctx's")
	}
}

// TestCleanupWaitsForContainerd: a delete that finds containerd
// unreachable is tried again once it answers; the log is sealed only
// after the container is gone.
func TestCleanupWaitsForContainerd(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	id := task.GetId()
	rt.addContainer(id, runtime.StateStopped, runtime.ExitStatus{})
	rt.failNext("Delete", id, unavailable("delete"))
	rt.failNext("Delete", id, unavailable("delete"))
	stepRunner(t, d, id).cleanup(context.Background())
	if st := rt.state(id); st != "" {
		t.Errorf("container after cleanup through an outage = %q, want deleted", st)
	}
	if n := rt.count("Delete", id); n != 3 {
		t.Errorf("Delete called %d times, want 3 (two while unreachable)", n)
	}
	if info, err := logs.Stat(d.taskLogDir(id)); err != nil || !info.Ended {
		t.Errorf("log %+v, %v; want sealed", info, err)
	}
}

// TestRunThroughOutageAfterExit: containerd unreachable after the exit
// (usage and delete) holds the task's end, but the task still ends with its
// exit status and usage, its container deleted and its log sealed.
func TestRunThroughOutageAfterExit(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt, "out")
	task := stepTask(t, d, root, "out")
	id := task.GetId()
	rt.autoExit[id] = runtime.ExitStatus{Code: 3}
	rt.usage[id] = runtime.Usage{PeakMemoryBytes: 8192}
	rt.failNext("Usage", id, unavailable("metrics"))
	rt.failNext("Delete", id, unavailable("delete"))
	r := launchTask(t, d, id)
	<-r.done
	got := getTask(t, d, id)
	wantState(t, got, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT)
	if got.GetExitCode() != 3 || got.GetUsage().GetPeakMemoryBytes() != 8192 {
		t.Errorf("task = exit %d usage %v, want exit 3 with the usage read after the outage", got.GetExitCode(), got.GetUsage())
	}
	if st := rt.state(id); st != "" {
		t.Errorf("container %q at the end, want deleted", st)
	}
	if info, err := logs.Stat(d.taskLogDir(id)); err != nil || !info.Ended {
		t.Errorf("log %+v, %v; want sealed", info, err)
	}
}
