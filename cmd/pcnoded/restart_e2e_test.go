package main

import (
	"bytes"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage/pattern"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationRestart stops pcnoded while a task runs (SIGTERM, and
// SIGKILL as in a crash) and starts it again on the same state: the
// container keeps running meanwhile, the task is re-attached and finishes
// with its real exit status, and its log has everything, including what was
// written while the daemon was down, without gaps.
func TestIntegrationRestart(t *testing.T) {
	const logBytes = 1 << 20
	wantStdout := append(append([]byte("before\n"), pattern.Bytes(logBytes)...), "after\n"...)

	tests := []struct {
		name string
		// kill stops the daemon with SIGKILL instead of SIGTERM.
		kill bool
		// exitWhileDown waits, with the daemon down, for the container to
		// exit before the restart.
		exitWhileDown bool
		// code is the task's final exit code.
		code int32
	}{
		{name: "reattach after SIGTERM"},
		{name: "reattach after SIGKILL", kill: true},
		{name: "exited while down", exitWhileDown: true, code: 3},
		{name: "exited while down after SIGKILL", kill: true, exitWhileDown: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := daemontest.Start(t, daemontest.Options{})
			img := e2eTestImage(t, d).GetName()
			steps := "echo before -- sleep 4s -- write-stdout 1Mi -- echo after"
			if tt.code != 0 {
				steps += " -- exit 3"
			}
			task := d.Submit(t, e2eSpec(img, "steps", "PCTEST_STEPS="+steps))
			d.WaitLog(t, task.GetId(), "before\n", 0)
			running := d.GetTask(t, task.GetId())

			if tt.kill {
				d.Kill(t)
			} else {
				d.Stop(t)
			}
			if st := d.ContainerStatus(t, task.GetId()); st != containerd.Running {
				t.Fatalf("container of task %s is %q with pcnoded down, want %q: running containers must be left running", task.GetId(), st, containerd.Running)
			}
			if tt.exitWhileDown {
				deadline := time.Now().Add(time.Minute)
				for d.ContainerStatus(t, task.GetId()) == containerd.Running {
					if time.Now().After(deadline) {
						t.Fatalf("container of task %s still running after 1m", task.GetId())
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			d.Restart(t)

			final := d.WaitTask(t, task.GetId(), 0)
			if tt.code == 0 {
				e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
			} else {
				e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, tt.code)
			}
			if !final.GetStartTime().AsTime().Equal(running.GetStartTime().AsTime()) {
				t.Errorf("start_time after restart = %v, want the original %v", final.GetStartTime().AsTime(), running.GetStartTime().AsTime())
			}
			if got := final.GetFinishTime().AsTime().Sub(final.GetStartTime().AsTime()); got < 4*time.Second {
				t.Errorf("task ran %v by its record, want at least its 4s sleep", got)
			}

			c := newE2ELogCheck()
			c.feed(d.TaskLogs(t, task.GetId()))
			if c.err != nil {
				t.Errorf("log after restart: %v", c.err)
			}
			stdout := daemontest.Output(d.TaskLogs(t, task.GetId()), pcnodev1.LogStream_LOG_STREAM_STDOUT)
			if !bytes.Equal(stdout, wantStdout) {
				t.Errorf("stdout after restart = %d bytes (starts %q), want %d bytes: before, 1Mi of pattern, after", len(stdout), stdout[:min(len(stdout), 40)], len(wantStdout))
			}
			if len(c.stderr) != 0 {
				t.Errorf("stderr after restart = %q, want none", c.stderr)
			}
		})
	}
}
