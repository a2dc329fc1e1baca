package daemon

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestCreate(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	r, task := preparedRunner(t, d, root)
	var first runtime.ContainerSpec
	for run := range 2 { // a re-run (after a crash) builds the same container
		cs, err := r.create(context.Background(), task)
		if err != nil {
			t.Fatalf("create() run %d error = %v", run, err)
		}
		if cs.ID != task.GetId() || cs.Image != stepImage || !cmp.Equal(cs.Args, []string{"/pctest", "exit", "3"}) {
			t.Errorf("create() run %d = %+v, want the task's container", run, cs)
		}
		if run == 0 {
			first = cs
		} else if diff := cmp.Diff(first, cs, cmpopts.IgnoreFields(runtime.ContainerSpec{}, "AfterCreate")); diff != "" {
			t.Errorf("create() re-run differs (-first +second):\n%s", diff)
		}
		d.unstage(task.GetId())
	}
	if want := []string{"GetImage " + stepImage}; !cmp.Equal(rt.calls, want) { // resolveImage's
		t.Errorf("runtime calls %q, want %q: create makes none", rt.calls, want)
	}
}

func TestCreateWithoutPreparedOutputs(t *testing.T) {
	d, root := stepDaemon(t, newFakeRuntime(stepImage))
	task := stepTask(t, d, root)
	r := stepRunner(t, d, task.GetId())
	_, err := r.create(context.Background(), task)
	var se *stepError
	if !errors.As(err, &se) || se.reason != pcnodev1.TaskReason_TASK_REASON_START_ERROR {
		t.Fatalf("create() before prepareOutputs error = %v, want a START_ERROR step error", err)
	}
}

func TestCreateMissingSecret(t *testing.T) {
	d, root := stepDaemon(t, newFakeRuntime(stepImage))
	r, task := preparedRunner(t, d, root)
	task.Instance.Env = []*pcnodev1.EnvVar{{Name: "TOKEN", Secret: "api-token"}}
	_, err := r.create(context.Background(), task)
	var se *stepError
	if !errors.As(err, &se) || se.reason != pcnodev1.TaskReason_TASK_REASON_START_ERROR {
		t.Fatalf("create() with a secret and no secret store error = %v, want a START_ERROR step error", err)
	}
}
