package daemon

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// preparedRunner runs the steps before start on a fresh task.
func preparedRunner(t *testing.T, d *Daemon, root string) (*runner, *pcnodev1.Task) {
	t.Helper()
	task := stepTask(t, d, root)
	r := stepRunner(t, d, task.GetId())
	task, err := r.allocate()
	if err == nil {
		task, err = r.resolveImage(task)
	}
	if err == nil {
		err = r.prepareOutputs(task)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r, task
}

func TestStart(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	r, task := preparedRunner(t, d, root)
	task, err := d.update(context.Background(), task.GetId(), func(t *pcnodev1.Task) { t.Message = "waiting for resources" })
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.start(task)
	if err != nil {
		t.Fatalf("start() error = %v", err)
	}
	if got.GetState() != pcnodev1.TaskState_TASK_STATE_RUNNING || got.GetStartTime() == nil {
		t.Errorf("start() = %v, start time %v; want RUNNING with a start time", got.GetState(), got.GetStartTime())
	}
	if got.GetImageDigest() != rt.images[stepImage].Digest {
		t.Errorf("start() digest = %q, want the image's", got.GetImageDigest())
	}
	if got.GetMessage() != "" {
		t.Errorf("start() message = %q, want the queued task's message cleared", got.GetMessage())
	}
	if n := rt.count("Start", task.GetId()); n != 1 {
		t.Errorf("runtime Start called %d times, want 1", n)
	}
	if st := rt.state(task.GetId()); st != runtime.StateRunning {
		t.Errorf("container state = %q, want running", st)
	}
	rt.mu.Lock()
	hook := rt.containers[task.GetId()].spec.AfterCreate
	rt.mu.Unlock()
	if hook == nil {
		t.Errorf("start() gave the runtime no AfterCreate hook (the crash point after the container is created)")
	}
	// Started again (no crash can lead here: recovery decides instead),
	// the runtime refuses: never two containers for one task.
	if _, err := r.start(got); err == nil {
		t.Errorf("start() with the container there = nil error, want ErrAlreadyExists")
	}
	if n := len(rt.containers); n != 1 {
		t.Errorf("%d containers after a second start, want 1", n)
	}
}

func TestStartFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		reason pcnodev1.TaskReason
	}{
		{"start error", errors.New("runc: exec format error"), pcnodev1.TaskReason_TASK_REASON_START_ERROR},
		{"image gone", fmt.Errorf("image: %w", runtime.ErrImageNotFound), pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newFakeRuntime(stepImage)
			d, root := stepDaemon(t, rt)
			r, task := preparedRunner(t, d, root)
			rt.failNext("Start", task.GetId(), tc.err)
			_, err := r.start(task)
			var se *stepError
			if !errors.As(err, &se) || se.reason != tc.reason {
				t.Fatalf("start(%s) error = %v, want a %v step error", tc.name, err, tc.reason)
			}
			if got := getTask(t, d, task.GetId()); got.GetState() != pcnodev1.TaskState_TASK_STATE_PREPARING {
				t.Errorf("start(%s) left the task %v, want PREPARING", tc.name, got.GetState())
			}
			// fail records it and cleans up.
			r.fail(task, err)
			got := getTask(t, d, task.GetId())
			wantState(t, got, pcnodev1.TaskState_TASK_STATE_FAILED, tc.reason)
			if st := rt.state(task.GetId()); st != "" {
				t.Errorf("container after a failed start: %q, want none", st)
			}
		})
	}
}

// TestStartContainerdUnavailable: a start that finds containerd
// unreachable is no step failure: it says containerd was unreachable and
// that a container may be left, for the runner to settle
// (TestRequeueWhenStartUnavailable).
func TestStartContainerdUnavailable(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	r, task := preparedRunner(t, d, root)
	rt.failNext("Start", task.GetId(), fmt.Errorf("start: %w", runtime.ErrUnavailable))
	_, err := r.start(task)
	var cd *containerdDownError
	if !errors.As(err, &cd) || !cd.mayExist || !errors.Is(err, runtime.ErrUnavailable) {
		t.Fatalf("start(containerd unavailable) error = %v, want a containerdDownError that may have left a container", err)
	}
	if got := getTask(t, d, task.GetId()); got.GetState() != pcnodev1.TaskState_TASK_STATE_PREPARING {
		t.Errorf("start(containerd unavailable) left the task %v, want PREPARING", got.GetState())
	}
}

// TestStartCrash resumes from what a crash inside start leaves: a container
// only created is deleted and the task queued to start afresh; one whose
// process was started is adopted (RUNNING, supervised), never started
// again.
func TestStartCrash(t *testing.T) {
	for _, tc := range []struct {
		name      string
		left      runtime.State
		wantState pcnodev1.TaskState
	}{
		{"created only", runtime.StateCreated, pcnodev1.TaskState_TASK_STATE_QUEUED},
		{"started, running", runtime.StateRunning, pcnodev1.TaskState_TASK_STATE_RUNNING},
		{"started, exited", runtime.StateStopped, pcnodev1.TaskState_TASK_STATE_FAILED},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newFakeRuntime(stepImage)
			d, root := stepDaemon(t, rt)
			r, task := preparedRunner(t, d, root)
			r.cancel() // the daemon died
			rt.addContainer(task.GetId(), tc.left, runtime.ExitStatus{Code: 3})
			d.dropChannels(task.GetId())

			if err := d.recover(context.Background()); err != nil {
				t.Fatalf("recover() = %v", err)
			}
			id := task.GetId()
			switch tc.wantState {
			case pcnodev1.TaskState_TASK_STATE_QUEUED:
				got := getTask(t, d, id)
				if got.GetState() != tc.wantState || got.GetAllocation() != nil {
					t.Errorf("after recover: %v, allocation %v; want QUEUED without one", got.GetState(), got.GetAllocation())
				}
				if st := rt.state(id); st != "" {
					t.Errorf("the created-only container is %q after recover, want deleted", st)
				}
				if _, queued := d.queued[id]; !queued {
					t.Errorf("task not handed to the scheduler again")
				}
			case pcnodev1.TaskState_TASK_STATE_RUNNING:
				got := getTask(t, d, id)
				if got.GetState() != tc.wantState || got.GetStartTime() == nil {
					t.Errorf("after recover: %v, start time %v; want RUNNING with one", got.GetState(), got.GetStartTime())
				}
				rt.exitContainer(id, runtime.ExitStatus{Code: 3})
				fallthrough
			default:
				got := waitFinal(t, d, id)
				wantState(t, got, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT)
				if got.GetExitCode() != 3 {
					t.Errorf("exit code = %d, want 3", got.GetExitCode())
				}
				waitRunnersDone(t, d)
				if st := rt.state(id); st != "" {
					t.Errorf("container is %q at the end, want deleted", st)
				}
			}
			if n := rt.count("Start", id); n != 0 {
				t.Errorf("runtime Start called %d times by the recovering daemon, want 0", n)
			}
		})
	}
}
