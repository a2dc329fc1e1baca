package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// stopRuntime is a container that ignores SIGTERM: Wait returns only once
// a Stop with grace 0 (SIGKILL at once) came, with exit code 137. It
// records every Stop's grace and every Start. Other calls are not expected
// (the embedded interface is nil).
type stopRuntime struct {
	containerRuntime

	mu          sync.Mutex
	graces      []time.Duration
	starts      int
	unreachable int // this many Stop calls fail first, as with containerd down
	killed      chan struct{}
	onceKil     sync.Once
}

func newStopRuntime() *stopRuntime { return &stopRuntime{killed: make(chan struct{})} }

func (f *stopRuntime) Wait(ctx context.Context, _ string) (runtime.ExitStatus, error) {
	select {
	case <-f.killed:
		return runtime.ExitStatus{Code: 137, ExitedAt: time.Now()}, nil
	case <-ctx.Done():
		return runtime.ExitStatus{}, ctx.Err()
	}
}

func (f *stopRuntime) Stop(_ context.Context, _ string, grace time.Duration) error {
	f.mu.Lock()
	f.graces = append(f.graces, grace)
	down := f.unreachable > 0
	f.unreachable--
	f.mu.Unlock()
	if down {
		return fmt.Errorf("stop: %w", runtime.ErrUnavailable)
	}
	if grace == 0 {
		f.onceKil.Do(func() { close(f.killed) })
	}
	return nil
}

func (f *stopRuntime) Start(context.Context, runtime.ContainerSpec) (runtime.Started, error) {
	f.mu.Lock()
	f.starts++
	f.mu.Unlock()
	return runtime.Started{}, errors.New("stopRuntime: no container is ever started")
}

func (f *stopRuntime) Delete(context.Context, string) error { return nil }
func (f *stopRuntime) Usage(context.Context, string) (runtime.Usage, error) {
	return runtime.Usage{}, nil
}

func (f *stopRuntime) stops() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.graces...)
}

// cancelDaemon is a Daemon with a memory store, a scheduler with room for
// one task, and rt; no loop runs (kick only marks the wake channel).
func cancelDaemon(t *testing.T, rt containerRuntime) *Daemon {
	t.Helper()
	s, err := sched.New(sched.Config{Allocatable: sched.Resources{MilliCPU: 4000, MemoryBytes: 4 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig()
	cfg.Tasks.ExecutionTimeout.Duration = 0
	cfg.Tasks.StartupTimeout.Duration = 0
	return &Daemon{
		cfg:      cfg,
		log:      slog.New(slog.DiscardHandler),
		store:    store.NewMemory(),
		rt:       rt,
		sched:    s,
		events:   newBroker(),
		node:     newNodeWatch(),
		logsRoot: filepath.Join(t.TempDir(), "logs"),
		wake:     make(chan struct{}, 1),

		taskTable: taskTable{runners: map[string]*runner{}, queued: map[string]*queuedTask{}},
	}
}

// storeTask stores a task in state and returns it.
func storeTask(t *testing.T, d *Daemon, state pcnodev1.TaskState) *pcnodev1.Task {
	t.Helper()
	now := time.Now()
	task := &pcnodev1.Task{
		Id: store.NewID(now), State: state, Spec: &pcnodev1.TaskSpec{Image: "registry.example.org/pc:1"},
		CreateTime: timestamppb.New(now),
	}
	if state == pcnodev1.TaskState_TASK_STATE_RUNNING {
		task.StartTime = timestamppb.New(now)
	}
	got, _, err := d.store.CreateTask(context.Background(), task, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// timedCancel runs cancelTask and fails the test when it took 100 ms or
// more: a cancel never waits for the container.
func timedCancel(t *testing.T, d *Daemon, id string, grace *durationpb.Duration) (*pcnodev1.Task, error) {
	t.Helper()
	start := time.Now()
	task, err := d.cancelTask(context.Background(), id, grace)
	if took := time.Since(start); took >= 100*time.Millisecond {
		t.Errorf("cancelTask(%s, %v) took %v, want well under a second", id, grace, took)
	}
	return task, err
}

func waitState(t *testing.T, d *Daemon, id string, want pcnodev1.TaskState) *pcnodev1.Task {
	t.Helper()
	var task *pcnodev1.Task
	waitFor(t, "task "+id+" "+want.String(), func() bool {
		var err error
		task, err = d.store.GetTask(context.Background(), id)
		return err == nil && task.GetState() == want
	})
	return task
}

func TestRequestStopEscalates(t *testing.T) {
	for _, tc := range []struct {
		name          string
		first, second time.Duration
		escalated     bool
		wantGrace     time.Duration
	}{
		{"shorter grace escalates", time.Minute, 5 * time.Second, true, 5 * time.Second},
		{"zero kills now", time.Minute, 0, true, 0},
		{"longer grace does not extend", 5 * time.Second, time.Minute, false, 5 * time.Second},
		{"equal grace changes nothing", 5 * time.Second, 5 * time.Second, false, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &runner{stopCh: make(chan struct{}), escalate: make(chan struct{}, 1)}
			if why, grace := r.stopRequest(); why != stopNone || grace != 0 {
				t.Fatalf("stopRequest() = %v, %v before any request, want none", why, grace)
			}
			out := r.requestStop(stopTimeout, tc.first)
			if !out.first || out.escalated || out.left != tc.first || out.why != stopTimeout {
				t.Errorf("requestStop(timeout, %v) = %+v, want first, left %v", tc.first, out, tc.first)
			}
			select {
			case <-r.stopCh:
			default:
				t.Fatal("requestStop did not close stopCh")
			}
			out = r.requestStop(stopCancel, tc.second)
			if out.first || out.escalated != tc.escalated || out.why != stopTimeout {
				t.Errorf("requestStop(cancel, %v) = %+v, want escalated %v, the first reason kept", tc.second, out, tc.escalated)
			}
			if out.left > tc.wantGrace || out.left < tc.wantGrace-time.Second {
				t.Errorf("requestStop(cancel, %v).left = %v, want about %v", tc.second, out.left, tc.wantGrace)
			}
			signalled := false
			select {
			case <-r.escalate:
				signalled = true
			default:
			}
			if signalled != tc.escalated {
				t.Errorf("escalate signalled = %v, want %v", signalled, tc.escalated)
			}
			if why, grace := r.stopRequest(); why != stopTimeout || grace != tc.wantGrace {
				t.Errorf("stopRequest() = %v, %v, want %v, %v", why, grace, stopTimeout, tc.wantGrace)
			}
			if left := r.stopLeft(); left > tc.wantGrace {
				t.Errorf("stopLeft() = %v, want at most %v", left, tc.wantGrace)
			}
		})
	}
}

// TestSuperviseEscalation: a container ignoring SIGTERM, stopped with a
// minute's grace, is signalled again by a second request with grace 0 and
// supervise returns its exit at once.
func TestSuperviseEscalation(t *testing.T) {
	rt := newStopRuntime()
	d := cancelDaemon(t, rt)
	task := storeTask(t, d, pcnodev1.TaskState_TASK_STATE_RUNNING)
	r := d.newRunner(task.GetId(), sched.Assignment{ID: task.GetId()}, nil)
	type result struct {
		exit runtime.ExitStatus
		err  error
	}
	done := make(chan result, 1)
	go func() {
		exit, err := r.supervise(task)
		done <- result{exit, err}
	}()
	t.Cleanup(r.cancel)
	r.requestStop(stopCancel, time.Minute)
	waitFor(t, "the first Stop", func() bool { return len(rt.stops()) == 1 })
	select {
	case res := <-done:
		t.Fatalf("supervise returned %+v before the grace ended or an escalation", res)
	case <-time.After(50 * time.Millisecond):
	}
	start := time.Now()
	r.requestStop(stopCancel, 0)
	select {
	case res := <-done:
		if res.err != nil || res.exit.Code != 137 {
			t.Errorf("supervise() = %+v, %v, want exit 137", res.exit, res.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("supervise did not return after the escalation to SIGKILL")
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("escalation took %v to end the container, want well under a second", took)
	}
	g := rt.stops()
	if len(g) != 2 || g[0] > time.Minute || g[0] < time.Minute-time.Second || g[1] != 0 {
		t.Errorf("Stop graces = %v, want [about 1m, 0s]", g)
	}
}

func TestCancelTaskQueued(t *testing.T) {
	d := cancelDaemon(t, newStopRuntime())
	task := storeTask(t, d, pcnodev1.TaskState_TASK_STATE_QUEUED)
	d.enqueue(context.Background(), task, d.schedRequest(task.GetSpec(), nil), nil)
	got, err := timedCancel(t, d, task.GetId(), nil)
	if err != nil {
		t.Fatalf("cancelTask(queued) = %v", err)
	}
	if got.GetState() != pcnodev1.TaskState_TASK_STATE_CANCELLED || got.GetMessage() != "cancelled while queued" {
		t.Errorf("cancelTask(queued) = %v %q, want CANCELLED %q", got.GetState(), got.GetMessage(), "cancelled while queued")
	}
	if len(d.queued) != 0 || len(d.sched.Schedule()) != 0 {
		t.Errorf("after cancel: queued %v, scheduler still admits something; want both empty", d.queued)
	}
	// Cancelling a finished task returns it unchanged.
	again, err := timedCancel(t, d, task.GetId(), durationpb.New(time.Second))
	if err != nil || again.GetState() != pcnodev1.TaskState_TASK_STATE_CANCELLED || again.GetMessage() != got.GetMessage() {
		t.Errorf("cancelTask(cancelled) = %v %q, %v; want it unchanged", again.GetState(), again.GetMessage(), err)
	}
}

// TestCancelTaskAdmitted: a cancel between the scheduler's admission and
// the runner's start is recorded and returns at once; launch then ends the
// task CANCELLED without starting anything.
func TestCancelTaskAdmitted(t *testing.T) {
	rt := newStopRuntime()
	d := cancelDaemon(t, rt)
	task := storeTask(t, d, pcnodev1.TaskState_TASK_STATE_QUEUED)
	d.enqueue(context.Background(), task, d.schedRequest(task.GetSpec(), nil), nil)
	as := d.sched.Schedule()
	if len(as) != 1 {
		t.Fatalf("Schedule() = %v, want the task admitted", as)
	}
	got, err := timedCancel(t, d, task.GetId(), nil)
	if err != nil {
		t.Fatalf("cancelTask(admitted, not launched) = %v, want the task", err)
	}
	if got.GetState() != pcnodev1.TaskState_TASK_STATE_QUEUED || !strings.HasPrefix(got.GetMessage(), "cancelling: ") {
		t.Errorf("cancelTask(admitted) = %v %q, want QUEUED with a cancelling message", got.GetState(), got.GetMessage())
	}
	d.launch(as[0])
	end := waitState(t, d, task.GetId(), pcnodev1.TaskState_TASK_STATE_CANCELLED)
	if end.GetReason() != pcnodev1.TaskReason_TASK_REASON_CANCELLED || !strings.Contains(end.GetMessage(), "before the container started") {
		t.Errorf("task ended %v %q, want CANCELLED before the container started", end.GetReason(), end.GetMessage())
	}
	waitFor(t, "the runner released", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.runners) == 0
	})
	if _, held := d.sched.Allocation(task.GetId()); held {
		t.Error("the cancelled task still holds its allocation")
	}
	if rt.starts != 0 {
		t.Errorf("runtime Start called %d times, want none", rt.starts)
	}
}

// TestCancelTaskRunning: the first cancel asks for the grace, a second
// escalates to SIGKILL, a third changes nothing; each answers at once and
// says so in the task's message.
func TestCancelTaskRunning(t *testing.T) {
	rt := newStopRuntime()
	d := cancelDaemon(t, rt)
	task := storeTask(t, d, pcnodev1.TaskState_TASK_STATE_RUNNING)
	r := d.newRunner(task.GetId(), sched.Assignment{ID: task.GetId()}, nil)
	d.runners[task.GetId()] = r // as launch does; supervise is not running: requests are only recorded
	for _, step := range []struct {
		grace *durationpb.Duration
		msg   string
		left  time.Duration
	}{
		{durationpb.New(time.Minute), "stopping: SIGTERM sent, SIGKILL in 1m0s", time.Minute},
		{nil, "escalated: SIGKILL sent", 0},
		{durationpb.New(30 * time.Second), "stopping: already requested, SIGKILL in 0s (a longer grace does not extend a stop)", 0},
	} {
		got, err := timedCancel(t, d, task.GetId(), step.grace)
		if err != nil {
			t.Fatalf("cancelTask(%v) = %v", step.grace, err)
		}
		if got.GetState() != pcnodev1.TaskState_TASK_STATE_RUNNING || got.GetMessage() != step.msg {
			t.Errorf("cancelTask(%v) = %v %q, want RUNNING %q", step.grace, got.GetState(), got.GetMessage(), step.msg)
		}
		if why, grace := r.stopRequest(); why != stopCancel || grace != step.left {
			t.Errorf("after cancelTask(%v): stopRequest() = %v %v, want cancel %v", step.grace, why, grace, step.left)
		}
	}
	// Without a grace the first cancel takes the node's.
	task2 := storeTask(t, d, pcnodev1.TaskState_TASK_STATE_RUNNING)
	d.runners[task2.GetId()] = d.newRunner(task2.GetId(), sched.Assignment{ID: task2.GetId()}, nil)
	got, err := timedCancel(t, d, task2.GetId(), nil)
	if want := "stopping: SIGTERM sent, SIGKILL in 10s"; err != nil || got.GetMessage() != want {
		t.Errorf("cancelTask(no grace) = %q, %v, want %q (the node's stop_grace_period)", got.GetMessage(), err, want)
	}
}

// TestCancelTaskNotTakenUp: a task the daemon holds nowhere (not yet
// recovered) is UNAVAILABLE, never INTERNAL, and at once.
func TestCancelTaskNotTakenUp(t *testing.T) {
	d := cancelDaemon(t, newStopRuntime())
	task := storeTask(t, d, pcnodev1.TaskState_TASK_STATE_QUEUED)
	_, err := timedCancel(t, d, task.GetId(), nil)
	var ce *codedError
	if !errors.As(err, &ce) || ce.code != codes.Unavailable {
		t.Fatalf("cancelTask(not taken up) = %v, want UNAVAILABLE", err)
	}
	if !strings.Contains(err.Error(), "try again") {
		t.Errorf("cancelTask(not taken up) = %q, want it to say to try again", err)
	}
}

// TestSignalStopRetriesWhileUnreachable: a stop that finds containerd
// unreachable is tried again until it gets through.
func TestSignalStopRetriesWhileUnreachable(t *testing.T) {
	defer func(i time.Duration) { stopRetryInterval = i }(stopRetryInterval)
	stopRetryInterval = 10 * time.Millisecond
	rt := newStopRuntime()
	rt.unreachable = 2
	d := cancelDaemon(t, rt)
	task := storeTask(t, d, pcnodev1.TaskState_TASK_STATE_RUNNING)
	r := d.newRunner(task.GetId(), sched.Assignment{ID: task.GetId()}, nil)
	t.Cleanup(r.cancel)
	r.requestStop(stopCancel, 0)
	done := make(chan error, 1)
	go func() {
		_, err := r.supervise(task)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("supervise() = %v, want the exit", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the container was never stopped: Stop was not tried again after containerd was unreachable")
	}
	if g := rt.stops(); len(g) != 3 {
		t.Errorf("Stop called %d times (%v), want 3: two unreachable, then through", len(g), g)
	}
}
