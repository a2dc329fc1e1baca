package daemon

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/logs"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestRecoverSealsFinishedLog: a crash between the delete and the seal
// leaves a final task's log unsealed; the next start seals it, in the
// background, when the task finished within recentLogWindow.
func TestRecoverSealsFinishedLog(t *testing.T) {
	d, root := stepDaemon(t, newFakeRuntime(stepImage))
	ctx := context.Background()
	finished := func() string {
		task := stepTask(t, d, root)
		if _, err := d.finish(ctx, task.GetId(), pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, "exited 0", nil); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(d.taskLogDir(task.GetId()), 0o700); err != nil {
			t.Fatal(err)
		}
		return task.GetId()
	}
	recent := finished()
	// One that finished long ago is not read at all.
	old := finished()
	if _, err := d.store.ModifyTask(ctx, old, func(t *pcnodev1.Task) error {
		t.FinishTime = timestamppb.New(time.Now().Add(-2 * recentLogWindow))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// One without a log directory is left without one.
	absent := finished()
	if err := os.RemoveAll(d.taskLogDir(absent)); err != nil {
		t.Fatal(err)
	}
	if err := d.recover(ctx); err != nil {
		t.Fatalf("recover() = %v", err)
	}
	select {
	case <-d.recentLogsChecked():
	case <-time.After(10 * time.Second):
		t.Fatal("the check of recent logs did not end within 10 s")
	}
	if info, err := logs.Stat(d.taskLogDir(recent)); err != nil || !info.Ended {
		t.Errorf("log %+v, %v after recover, want sealed", info, err)
	}
	if info, err := logs.Stat(d.taskLogDir(old)); err != nil || info.Ended {
		t.Errorf("old log %+v, %v after recover, want it left as it was", info, err)
	}
	if _, err := os.Stat(d.taskLogDir(absent)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("log directory of a task without one after recover: %v, want none", err)
	}
}

// TestReadUncheckedLog: a reader of a final task's log that the start's
// check has not come to yet seals it first, so a follower ends instead of
// waiting for more.
func TestReadUncheckedLog(t *testing.T) {
	d, root := stepDaemon(t, newFakeRuntime(stepImage))
	ctx := context.Background()
	task := stepTask(t, d, root)
	id := task.GetId()
	if _, err := d.finish(ctx, id, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, "exited 0", nil); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d.taskLogDir(id), 0o700); err != nil {
		t.Fatal(err)
	}
	d.setUnchecked([]string{id}) // as checkRecentLogs does, before its pass comes to id
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.ReadTaskLog(rctx, id, logs.ReadOptions{Follow: true}, func([]logs.Entry) error { return nil }); err != nil {
		t.Fatalf("ReadTaskLog(follow) of an unchecked, unsealed log = %v, want it to end", err)
	}
	if d.isUnchecked(id) {
		t.Errorf("task %s still unchecked after its log was read", id)
	}
	if info, err := logs.Stat(d.taskLogDir(id)); err != nil || !info.Ended {
		t.Errorf("log %+v, %v after the read, want sealed", info, err)
	}
}
