package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// termIgnorer is the fake runtime with containers that ignore SIGTERM:
// Stop kills the container (exit 137) only when its grace has passed, as
// runtime.Stop's SIGKILL does. It records each Stop's grace; onStop, when
// set, runs first.
type termIgnorer struct {
	*fakeRuntime
	mu     sync.Mutex
	graces []time.Duration
	onStop func(id string)
}

func (f *termIgnorer) Stop(ctx context.Context, id string, grace time.Duration) error {
	f.mu.Lock()
	f.graces = append(f.graces, grace)
	hook := f.onStop
	f.mu.Unlock()
	if hook != nil {
		hook(id)
	}
	f.fakeRuntime.mu.Lock()
	f.fakeRuntime.calls = append(f.fakeRuntime.calls, "Stop "+id)
	_, err := f.fakeRuntime.container(id)
	f.fakeRuntime.mu.Unlock()
	if err != nil {
		return err
	}
	time.AfterFunc(grace, func() { f.exitContainer(id, runtime.ExitStatus{Code: 137}) })
	return nil
}

func (f *termIgnorer) stopGraces() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.graces...)
}

// wantStopRecord fails t unless sr records a stop for reason with grace
// and a kill time grace after its request time.
func wantStopRecord(t *testing.T, what string, sr *pcnodev1.StopRequest, reason pcnodev1.TaskReason, grace time.Duration) {
	t.Helper()
	if sr.GetReason() != reason || sr.GetGracePeriod().AsDuration() != grace || sr.GetRequestTime() == nil || sr.GetKillTime() == nil {
		t.Errorf("%s: stop_request = %v, want reason %v, grace %v, request and kill times", what, sr, reason, grace)
	}
}

// TestCancelRecordsStopRequest: CancelTask writes the stop request before
// it answers, and an escalation updates it (the request time stays the
// first one's).
func TestCancelRecordsStopRequest(t *testing.T) {
	d := cancelDaemon(t, newStopRuntime())
	task := storeTask(t, d, pcnodev1.TaskState_TASK_STATE_RUNNING)
	id := task.GetId()
	d.runners[id] = d.newRunner(id, sched.Assignment{ID: id}, nil) // supervise is not running: requests are only recorded

	before := time.Now()
	got, err := timedCancel(t, d, id, durationpb.New(time.Minute))
	if err != nil {
		t.Fatalf("cancelTask(1m) = %v", err)
	}
	wantStopRecord(t, "answer of cancelTask(1m)", got.GetStopRequest(), pcnodev1.TaskReason_TASK_REASON_CANCELLED, time.Minute)
	stored := getTask(t, d, id).GetStopRequest()
	wantStopRecord(t, "stored after cancelTask(1m)", stored, pcnodev1.TaskReason_TASK_REASON_CANCELLED, time.Minute)
	first := stored.GetRequestTime().AsTime()
	if first.Before(before) || stored.GetKillTime().AsTime().Sub(first) != time.Minute {
		t.Errorf("stop_request = %v, want requested now and SIGKILL a minute later", stored)
	}

	if _, err := timedCancel(t, d, id, nil); err != nil {
		t.Fatalf("cancelTask(escalation) = %v", err)
	}
	stored = getTask(t, d, id).GetStopRequest()
	wantStopRecord(t, "stored after the escalation", stored, pcnodev1.TaskReason_TASK_REASON_CANCELLED, 0)
	if !stored.GetRequestTime().AsTime().Equal(first) || time.Until(stored.GetKillTime().AsTime()) > 0 {
		t.Errorf("stop_request after the escalation = %v, want the first request time and SIGKILL now", stored)
	}
}

// TestCancelAdmittedSurvivesClose: a cancel answered for a task the
// scheduler had just admitted, when the daemon closes before launch ends
// it, is not lost: the next start ends the task CANCELLED instead of
// running it.
func TestCancelAdmittedSurvivesClose(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	id := task.GetId()
	d.enqueue(context.Background(), task, d.schedRequest(task.GetSpec(), task.GetInstance()), nil)
	admitted := d.sched.Schedule() // launch has not run yet
	if len(admitted) != 1 {
		t.Fatalf("Schedule() = %v, want the task", admitted)
	}
	got, err := d.cancelTask(context.Background(), id, nil)
	if err != nil || !strings.Contains(got.GetMessage(), "admitted just now") {
		t.Fatalf("cancelTask(just admitted) = %q, %v", got.GetMessage(), err)
	}
	wantStopRecord(t, "stored", getTask(t, d, id).GetStopRequest(), pcnodev1.TaskReason_TASK_REASON_CANCELLED, 0)
	d.mu.Lock()
	d.closing = true // Close began: launch starts no runner
	d.mu.Unlock()
	d.launch(admitted[0])
	if got := getTask(t, d, id); got.GetState() != pcnodev1.TaskState_TASK_STATE_QUEUED {
		t.Fatalf("task after launch while closing = %v, want left QUEUED", got.GetState())
	}

	// The next start: a fresh scheduler and queue over the same store.
	s, err := sched.New(sched.Config{Allocatable: sched.Resources{MilliCPU: 8000, MemoryBytes: 8 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	d.sched, d.queued, d.runners, d.closing = s, map[string]*queuedTask{}, map[string]*runner{}, false
	if err := d.recover(context.Background()); err != nil {
		t.Fatalf("recover() = %v", err)
	}
	wantState(t, getTask(t, d, id), pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED)
	if snap := d.sched.Snapshot(); snap.Queued != 0 || d.queued[id] != nil {
		t.Errorf("the cancelled task was queued again")
	}
	if n := rt.count("Start", id); n != 0 {
		t.Errorf("Start called %d times, want none", n)
	}
}

// TestRecoverStopRequest: a daemon restarted while it was stopping a task
// stops it again with what is left of the grace, and the task ends as it
// would have without the restart; a cancelled task that had not started
// ends CANCELLED.
func TestRecoverStopRequest(t *testing.T) {
	cancel, timeout := pcnodev1.TaskReason_TASK_REASON_CANCELLED, pcnodev1.TaskReason_TASK_REASON_TIMEOUT
	for _, tc := range []struct {
		name      string
		state     pcnodev1.TaskState
		container runtime.State // "": none
		exit      runtime.ExitStatus
		reason    pcnodev1.TaskReason // of the stop request
		killIn    time.Duration       // from now: SIGKILL due (negative: passed)
		want      pcnodev1.TaskState
		wantWhy   pcnodev1.TaskReason
		stopped   bool // recovery signals the container again
	}{
		{name: "running, cancel, grace passed", state: pcnodev1.TaskState_TASK_STATE_RUNNING, container: runtime.StateRunning,
			reason: cancel, killIn: -5 * time.Second, want: pcnodev1.TaskState_TASK_STATE_CANCELLED, wantWhy: cancel, stopped: true},
		{name: "running, cancel, grace left", state: pcnodev1.TaskState_TASK_STATE_RUNNING, container: runtime.StateRunning,
			reason: cancel, killIn: 400 * time.Millisecond, want: pcnodev1.TaskState_TASK_STATE_CANCELLED, wantWhy: cancel, stopped: true},
		{name: "running, timeout", state: pcnodev1.TaskState_TASK_STATE_RUNNING, container: runtime.StateRunning,
			reason: timeout, killIn: -time.Second, want: pcnodev1.TaskState_TASK_STATE_FAILED, wantWhy: timeout, stopped: true},
		{name: "exited during the restart, cancel", state: pcnodev1.TaskState_TASK_STATE_RUNNING, container: runtime.StateStopped,
			exit: runtime.ExitStatus{Code: 143}, reason: cancel, killIn: time.Minute, want: pcnodev1.TaskState_TASK_STATE_CANCELLED, wantWhy: cancel},
		{name: "preparing, started, cancel", state: pcnodev1.TaskState_TASK_STATE_PREPARING, container: runtime.StateRunning,
			reason: cancel, killIn: -time.Second, want: pcnodev1.TaskState_TASK_STATE_CANCELLED, wantWhy: cancel, stopped: true},
		{name: "preparing, created, cancel", state: pcnodev1.TaskState_TASK_STATE_PREPARING, container: runtime.StateCreated,
			reason: cancel, killIn: time.Minute, want: pcnodev1.TaskState_TASK_STATE_CANCELLED, wantWhy: cancel},
		{name: "preparing, no container, cancel", state: pcnodev1.TaskState_TASK_STATE_PREPARING,
			reason: cancel, killIn: time.Minute, want: pcnodev1.TaskState_TASK_STATE_CANCELLED, wantWhy: cancel},
		{name: "queued, cancel", state: pcnodev1.TaskState_TASK_STATE_QUEUED,
			reason: cancel, want: pcnodev1.TaskState_TASK_STATE_CANCELLED, wantWhy: cancel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &termIgnorer{fakeRuntime: newFakeRuntime(stepImage)}
			d, root := stepDaemon(t, rt.fakeRuntime)
			d.rt = rt
			task := stepTask(t, d, root)
			id := task.GetId()
			grace := 8 * time.Second
			killAt := time.Now().Add(tc.killIn)
			if _, err := d.update(context.Background(), id, func(t *pcnodev1.Task) {
				t.State = tc.state
				if tc.state != pcnodev1.TaskState_TASK_STATE_QUEUED {
					t.Allocation = &pcnodev1.Allocation{CpuMillis: 100}
				}
				if tc.state == pcnodev1.TaskState_TASK_STATE_RUNNING {
					t.StartTime = timestamppb.Now()
				}
				t.StopRequest = &pcnodev1.StopRequest{Reason: tc.reason, RequestTime: timestamppb.New(killAt.Add(-grace)),
					GracePeriod: durationpb.New(grace), KillTime: timestamppb.New(killAt)}
			}); err != nil {
				t.Fatal(err)
			}
			if tc.container != "" {
				rt.addContainer(id, tc.container, tc.exit)
			}
			if err := d.recover(context.Background()); err != nil {
				t.Fatalf("recover() = %v", err)
			}
			got := waitFinal(t, d, id)
			ended := time.Now()
			wantState(t, got, tc.want, tc.wantWhy)
			waitRunnersDone(t, d)
			if d.queued[id] != nil {
				t.Errorf("task queued again")
			}
			if st := rt.state(id); st != "" {
				t.Errorf("container %q at the end, want deleted", st)
			}
			if n := rt.count("Start", id); n != 0 {
				t.Errorf("Start called %d times, want none", n)
			}
			graces := rt.stopGraces()
			if !tc.stopped {
				// (An exited container may be signalled again: harmless.)
				if tc.container != runtime.StateStopped && len(graces) != 0 {
					t.Errorf("Stop called with %v, want not at all", graces)
				}
				return
			}
			if len(graces) == 0 || graces[0] > max(tc.killIn, 0) {
				t.Fatalf("Stop graces %v, want one no longer than what was left (%v)", graces, max(tc.killIn, 0))
			}
			if tc.killIn > 0 && ended.Before(killAt.Add(-50*time.Millisecond)) {
				t.Errorf("task ended %v before its SIGKILL was due", killAt.Sub(ended))
			}
			if got.GetExitCode() != 137 || !strings.Contains(got.GetMessage(), "137") {
				t.Errorf("task = exit %d %q, want 137 (SIGKILL)", got.GetExitCode(), got.GetMessage())
			}
			if tc.wantWhy == cancel && !strings.Contains(got.GetMessage(), fmt.Sprintf("grace %s", grace)) {
				t.Errorf("message %q, want the grace in force (%s) named", got.GetMessage(), grace)
			}
		})
	}
}

// TestTimeoutRecordsStopRequest: at the execution deadline the stop
// request is written before the container is signalled.
func TestTimeoutRecordsStopRequest(t *testing.T) {
	rt := &termIgnorer{fakeRuntime: newFakeRuntime(stepImage)}
	d, root := stepDaemon(t, rt.fakeRuntime)
	d.rt = rt
	d.cfg.Tasks.ExecutionTimeout.Duration = 50 * time.Millisecond
	d.cfg.Tasks.StopGracePeriod.Duration = 100 * time.Millisecond
	task := stepTask(t, d, root)
	id := task.GetId()
	var (
		mu     sync.Mutex
		atStop *pcnodev1.StopRequest
	)
	rt.onStop = func(string) {
		mu.Lock()
		defer mu.Unlock()
		if stored, err := d.store.GetTask(context.Background(), id); err == nil && atStop == nil {
			atStop = stored.GetStopRequest()
		}
	}
	r := launchTask(t, d, id)
	<-r.done
	mu.Lock()
	defer mu.Unlock()
	wantStopRecord(t, "stored when Stop was called", atStop, pcnodev1.TaskReason_TASK_REASON_TIMEOUT, 100*time.Millisecond)
	got := getTask(t, d, id)
	wantState(t, got, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_TIMEOUT)
	if got.GetExitCode() != 137 {
		t.Errorf("exit code %d, want 137", got.GetExitCode())
	}
}

// TestDetachTimeout: detach gives up on a runner that does not stop after
// detachTimeout (5 s), having cancelled its context; Close then goes on.
func TestDetachTimeout(t *testing.T) {
	d := &Daemon{log: slog.New(slog.DiscardHandler)}
	r := d.newRunner("t1", sched.Assignment{ID: "t1"}, nil) // never run: done never closes
	start := time.Now()
	r.detach()
	took := time.Since(start)
	if r.ctx.Err() == nil {
		t.Errorf("detach() left the runner's context live")
	}
	if took < detachTimeout || took > detachTimeout+time.Second {
		t.Errorf("detach() of a runner that never stops took %v, want %v", took, detachTimeout)
	}
	if detachTimeout != 5*time.Second {
		t.Errorf("detachTimeout = %v, want 5s as docs/lifecycle.md says", detachTimeout)
	}

	// A runner that stops at its context is waited for, briefly.
	r2 := d.newRunner("t2", sched.Assignment{ID: "t2"}, nil)
	go func() { <-r2.ctx.Done(); time.Sleep(20 * time.Millisecond); close(r2.done) }()
	start = time.Now()
	r2.detach()
	select {
	case <-r2.done:
	default:
		t.Errorf("detach() returned before the runner stopped")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("detach() of a runner that stops at once took %v", took)
	}
}
