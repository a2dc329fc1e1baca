package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestPrepareOutputs(t *testing.T) {
	for _, preserve := range []bool{false, true} {
		name := "empty"
		if preserve {
			name = "preserve"
		}
		t.Run(name, func(t *testing.T) {
			d, root := stepDaemon(t, newFakeRuntime(stepImage), "out")
			stale := filepath.Join(root, "out", "stale.txt")
			if err := os.WriteFile(stale, []byte("earlier run"), 0o644); err != nil {
				t.Fatal(err)
			}
			task := stepTask(t, d, root, "out", "new/deeper")
			task.Spec.PreserveOutputs = preserve
			r := stepRunner(t, d, task.GetId())
			// The second run is a crash after the first: the daemon's
			// table of opened directories is empty again.
			for run := range 2 {
				d.dropChannels(task.GetId())
				if err := r.prepareOutputs(task); err != nil {
					t.Fatalf("prepareOutputs() run %d error = %v", run, err)
				}
				if c := d.taskChannelsOf(task.GetId()); c == nil || len(c.outputs) != 2 {
					t.Fatalf("prepareOutputs() run %d opened %v, want both outputs", run, c)
				}
				_, err := os.Stat(stale)
				if preserve != (err == nil) {
					t.Errorf("prepareOutputs() run %d: stale file: %v, want kept %v", run, err, preserve)
				}
				if fi, err := os.Stat(filepath.Join(root, "new", "deeper")); err != nil || !fi.IsDir() {
					t.Errorf("prepareOutputs() run %d: missing output not created: %v", run, err)
				}
			}
			if got := getTask(t, d, task.GetId()); got.GetState() != pcnodev1.TaskState_TASK_STATE_QUEUED {
				t.Errorf("prepareOutputs() changed the record to %v, want it untouched", got.GetState())
			}
		})
	}
}

func TestPrepareOutputsRefusesSymlink(t *testing.T) {
	d, root := stepDaemon(t, newFakeRuntime(stepImage), "elsewhere")
	if err := os.Symlink(filepath.Join(root, "elsewhere"), filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	task := stepTask(t, d, root, "out")
	r := stepRunner(t, d, task.GetId())
	err := r.prepareOutputs(task)
	var se *stepError
	if !errors.As(err, &se) || se.reason != pcnodev1.TaskReason_TASK_REASON_START_ERROR {
		t.Fatalf("prepareOutputs() through a symlink error = %v, want a START_ERROR step error", err)
	}
}
