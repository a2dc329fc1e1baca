package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/config"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

func TestExpire(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	ts := func(ago time.Duration) *timestamppb.Timestamp { return timestamppb.New(now.Add(-ago)) }
	tasks := map[string]*pcnodev1.Task{
		"old-succeeded": {State: pcnodev1.TaskState_TASK_STATE_SUCCEEDED,
			CreateTime: ts(3 * time.Hour), StartTime: ts(150 * time.Minute), FinishTime: ts(2 * time.Hour)},
		"recent-failed": {State: pcnodev1.TaskState_TASK_STATE_FAILED,
			CreateTime: ts(3 * time.Hour), FinishTime: ts(10 * time.Minute)},
		"old-running": {State: pcnodev1.TaskState_TASK_STATE_RUNNING,
			CreateTime: ts(3 * time.Hour), StartTime: ts(3 * time.Hour)},
	}
	for _, tc := range []struct {
		name      string
		retention time.Duration
		wantGone  []string
	}{
		{name: "1h", retention: time.Hour, wantGone: []string{"old-succeeded"}},
		{name: "off", retention: 0},
		{name: "longer than every task", retention: 4 * time.Hour},
		{name: "5m", retention: 5 * time.Minute, wantGone: []string{"old-succeeded", "recent-failed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.DefaultConfig()
			cfg.Tasks.Retention.Duration = tc.retention
			d := &Daemon{cfg: cfg, log: slog.New(slog.DiscardHandler), store: store.NewMemory(), logsRoot: t.TempDir()}
			ids := map[string]string{} // name → task id
			for name, task := range tasks {
				task.Id = store.NewID(now.Add(-3 * time.Hour))
				ids[name] = task.Id
				if _, _, err := d.store.CreateTask(ctx, task, "", nil); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(d.taskLogDir(task.Id), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d.taskLogDir(task.Id), "container.log"), []byte("line\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			// Logs of an unknown task are not the sweep's business.
			stray := filepath.Join(d.logsRoot, "not-a-task")
			if err := os.MkdirAll(stray, 0o700); err != nil {
				t.Fatal(err)
			}

			d.expire(ctx, now)

			gone := map[string]bool{}
			for _, name := range tc.wantGone {
				gone[name] = true
			}
			for name, id := range ids {
				_, err := d.store.GetTask(ctx, id)
				_, statErr := os.Stat(d.taskLogDir(id))
				if gone[name] {
					if !errors.Is(err, store.ErrNotFound) {
						t.Errorf("retention %s: GetTask(%s) after expire = %v, want %v", tc.retention, name, err, store.ErrNotFound)
					}
					if !errors.Is(statErr, os.ErrNotExist) {
						t.Errorf("retention %s: log directory of %s after expire: stat = %v, want it removed", tc.retention, name, statErr)
					}
					continue
				}
				if err != nil {
					t.Errorf("retention %s: GetTask(%s) after expire = %v, want the task kept", tc.retention, name, err)
				}
				if statErr != nil {
					t.Errorf("retention %s: log directory of %s after expire: stat = %v, want it kept", tc.retention, name, statErr)
				}
			}
			if _, err := os.Stat(stray); err != nil {
				t.Errorf("retention %s: stray log directory after expire: stat = %v, want it kept", tc.retention, err)
			}
		})
	}
}

// A finished task whose logs were never written (it failed before its
// container started) expires without complaint.
func TestExpireWithoutLogs(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	cfg := config.DefaultConfig()
	cfg.Tasks.Retention.Duration = time.Minute
	d := &Daemon{cfg: cfg, log: slog.New(slog.DiscardHandler), store: store.NewMemory(), logsRoot: t.TempDir()}
	id := store.NewID(now.Add(-time.Hour))
	task := &pcnodev1.Task{Id: id, State: pcnodev1.TaskState_TASK_STATE_FAILED, FinishTime: timestamppb.New(now.Add(-time.Hour))}
	if _, _, err := d.store.CreateTask(ctx, task, "", nil); err != nil {
		t.Fatal(err)
	}
	d.expire(ctx, now)
	if _, err := d.store.GetTask(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTask(%s) after expire = %v, want %v", id, err, store.ErrNotFound)
	}
	if _, err := os.Stat(d.logsRoot); err != nil {
		t.Errorf("logs root after expire: stat = %v, want it kept", err)
	}
}
