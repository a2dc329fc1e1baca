package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/runtime"
)

func TestSupervise(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	rt.addContainer(task.GetId(), runtime.StateRunning, runtime.ExitStatus{})
	r := stepRunner(t, d, task.GetId())
	go func() {
		time.Sleep(20 * time.Millisecond)
		rt.exitContainer(task.GetId(), runtime.ExitStatus{Code: 3})
	}()
	exit, err := r.supervise(task)
	if err != nil || exit.Code != 3 {
		t.Fatalf("supervise() = %+v, %v; want exit 3", exit, err)
	}
	// Re-run, as a restarted daemon does with a stopped container: Wait
	// returns at once with the same status.
	exit, err = stepRunner(t, d, task.GetId()).supervise(task)
	if err != nil || exit.Code != 3 {
		t.Fatalf("supervise() again = %+v, %v; want exit 3", exit, err)
	}
}

func TestSuperviseExecutionTimeout(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	d.cfg.Tasks.ExecutionTimeout.Duration = 50 * time.Millisecond
	task := stepTask(t, d, root)
	task.StartTime = timestamppb.Now()
	rt.addContainer(task.GetId(), runtime.StateRunning, runtime.ExitStatus{})
	r := stepRunner(t, d, task.GetId())
	exit, err := r.supervise(task)
	if err != nil || exit.Code != 143 {
		t.Fatalf("supervise() = %+v, %v; want the stop's exit 143", exit, err)
	}
	if why, _ := r.stopRequest(); why != stopTimeout {
		t.Errorf("stop reason = %v, want stopTimeout", why)
	}
	if n := rt.count("Stop", task.GetId()); n != 1 {
		t.Errorf("Stop called %d times, want 1", n)
	}
}

func TestSuperviseContainerGone(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	r := stepRunner(t, d, task.GetId())
	if _, err := r.supervise(task); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("supervise() without a container error = %v, want ErrNotFound", err)
	}
	// Detached while waiting: it returns at once.
	rt.addContainer(task.GetId(), runtime.StateRunning, runtime.ExitStatus{})
	r = stepRunner(t, d, task.GetId())
	r.cancel()
	if _, err := r.supervise(task); !errors.Is(err, context.Canceled) {
		t.Fatalf("supervise() detached error = %v, want context.Canceled", err)
	}
}
