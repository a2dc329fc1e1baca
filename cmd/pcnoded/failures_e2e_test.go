package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationTaskEnds checks how tasks end: OOM, timeout, cancel,
// non-zero exit and a missing image, each with its state, reason and exit
// code.
func TestIntegrationTaskEnds(t *testing.T) {
	reg := daemontest.NewRegistry(t, "", "")
	d := daemontest.Start(t, daemontest.Options{Configure: func(c *config.Config) {
		c.Registries = append(c.Registries, config.Registry{Host: reg.Host, Insecure: true})
	}})
	img := e2eTestImage(t, d).GetName()

	t.Run("memory within limit succeeds with peak memory recorded", func(t *testing.T) {
		task, _ := d.Run(t, e2eSpec(img, "alloc", "BYTES=64Mi", "HOLD=1s"))
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
		if got, min := task.GetUsage().GetPeakMemoryBytes(), int64(64<<20); got < min {
			t.Errorf("usage.peak_memory_bytes = %d, want at least %d (64Mi were resident)", got, min)
		}
		if got := task.GetUsage().GetCpuTime().AsDuration(); got <= 0 {
			t.Errorf("usage.cpu_time = %v, want > 0", got)
		}
	})

	t.Run("memory over limit is OOM_KILLED", func(t *testing.T) {
		// The alloc template limits memory to 128Mi.
		task, _ := d.Run(t, e2eSpec(img, "alloc", "BYTES=512Mi", "HOLD=10s"))
		if task.GetState() != pcnodev1.TaskState_TASK_STATE_FAILED || task.GetReason() != pcnodev1.TaskReason_TASK_REASON_OOM_KILLED {
			t.Errorf("alloc 512Mi under a 128Mi limit ended %v/%v exit %d (%q), want FAILED/OOM_KILLED",
				task.GetState(), task.GetReason(), task.GetExitCode(), task.GetMessage())
		}
		if task.GetInstance().GetResources().GetLimits().GetMemoryBytes() != 128<<20 {
			t.Errorf("instance memory limit = %d, want %d (template)", task.GetInstance().GetResources().GetLimits().GetMemoryBytes(), 128<<20)
		}
	})

	t.Run("over-long task is TIMEOUT", func(t *testing.T) {
		spec := e2eSpec(img, "sleep", "DURATION=60s")
		spec.ExecutionTimeout = durationpb.New(2 * time.Second)
		spec.StopGracePeriod = durationpb.New(time.Second)
		start := time.Now()
		task, _ := d.Run(t, spec)
		elapsed := time.Since(start)
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_TIMEOUT, task.GetExitCode())
		if ran := task.GetFinishTime().AsTime().Sub(task.GetStartTime().AsTime()); ran < 2*time.Second || ran > 5*time.Second {
			t.Errorf("start_time→finish_time = %v, want 2s timeout + at most 1s grace + slack (<5s)", ran)
		}
		if elapsed > 30*time.Second {
			t.Errorf("RunTask took %v for a task with a 2s execution timeout", elapsed)
		}
	})

	t.Run("exit code 3 is NONZERO_EXIT", func(t *testing.T) {
		task, _ := d.Run(t, e2eSpec(img, "exit", "CODE=3"))
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, 3)
	})

	t.Run("missing image is IMAGE_ERROR naming it", func(t *testing.T) {
		ref := reg.Ref("pcnode/missing", "1")
		spec := &pcnodev1.TaskSpec{
			Name:  "missing-image",
			Image: ref,
			Template: &pcnodev1.TaskSpec_InlineTemplate{InlineTemplate: &pcnodev1.TaskTemplate{
				Identifier: "inline",
				Command:    []string{"/pctest", "exit", "0"},
			}},
		}
		task, _ := d.Run(t, spec)
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR, 0)
		if !strings.Contains(task.GetMessage(), "pcnode/missing") {
			t.Errorf("IMAGE_ERROR message = %q, want it to name the image %s", task.GetMessage(), ref)
		}
	})

	t.Run("missing image with a template from the image", func(t *testing.T) {
		// The template cannot be read from an image that is not there: the
		// spec is refused naming the image, or the task ends IMAGE_ERROR
		// naming it.
		ref := reg.Ref("pcnode/missing", "2")
		resp, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: e2eSpec(ref, "exit", "CODE=0")})
		if err != nil {
			if !strings.Contains(err.Error(), "pcnode/missing") {
				t.Errorf("SubmitTask(missing image %s) = %v, want an error naming the image", ref, client.FromError(err))
			}
			t.Logf("SubmitTask(missing image) refused: %v", client.FromError(err))
			return
		}
		task := d.WaitTask(t, resp.GetTask().GetId(), 0)
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR, 0)
		if !strings.Contains(task.GetMessage(), "pcnode/missing") {
			t.Errorf("IMAGE_ERROR message = %q, want it to name the image %s", task.GetMessage(), ref)
		}
	})
}

// TestIntegrationCancel checks that a cancelled task is CANCELLED within
// its grace period + 1 s, as seen through the API. It runs pcnoded without
// the race detector, whose exit delay in the log driver would add 1 s to
// every task's end (daemontest.Options.NoRace).
func TestIntegrationCancel(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoRace: true, Configure: func(c *config.Config) {
		c.Resources.MaxConcurrent = 1
	}})
	img := e2eTestImage(t, d).GetName()

	t.Run("cancel waits the grace period then kills", func(t *testing.T) {
		// SIGTERM is ignored, so only SIGKILL after the grace period ends it.
		spec := e2eSpec(img, "steps", "PCTEST_STEPS=ignore-sigterm -- echo ready -- sleep 60s")
		task := d.Submit(t, spec)
		d.WaitLog(t, task.GetId(), "ready\n", 0)
		const grace = 2 * time.Second
		elapsed := e2eCancel(t, d, task.GetId(), grace)
		final := d.GetTask(t, task.GetId())
		e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, final.GetExitCode())
		if elapsed > grace+time.Second {
			t.Errorf("cancelled task ignoring SIGTERM ended %v after CancelTask, want within grace %v + 1s", elapsed, grace)
		}
		if elapsed < grace-200*time.Millisecond {
			t.Errorf("cancelled task ignoring SIGTERM ended %v after CancelTask, before its grace period %v", elapsed, grace)
		}
		logs := string(daemontest.Output(d.TaskLogs(t, task.GetId()), pcnodev1.LogStream_LOG_STREAM_STDERR))
		if !strings.Contains(logs, "pctest: SIGTERM ignored") {
			t.Errorf("stderr of the cancelled task = %q, want the SIGTERM it ignored", logs)
		}
	})

	t.Run("cancel of a task that honours SIGTERM ends at once", func(t *testing.T) {
		spec := e2eSpec(img, "steps", "PCTEST_STEPS=echo ready -- sleep 60s")
		task := d.Submit(t, spec)
		d.WaitLog(t, task.GetId(), "ready\n", 0)
		const grace = 10 * time.Second
		elapsed := e2eCancel(t, d, task.GetId(), grace)
		final := d.GetTask(t, task.GetId())
		e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, final.GetExitCode())
		if elapsed > 3*time.Second {
			t.Errorf("cancelled task honouring SIGTERM ended %v after CancelTask, want well before its %v grace", elapsed, grace)
		}
		// Cancelling a finished task returns it unchanged.
		resp, err := d.Client.Tasks.CancelTask(t.Context(), &pcnodev1.CancelTaskRequest{TaskId: task.GetId()})
		if err != nil {
			t.Fatalf("CancelTask(finished %s) = %v, want the task unchanged", task.GetId(), client.FromError(err))
		}
		if got := resp.GetTask(); got.GetState() != final.GetState() || !got.GetFinishTime().AsTime().Equal(final.GetFinishTime().AsTime()) {
			t.Errorf("CancelTask(finished) = %v finished %v, want %v finished %v", got.GetState(), got.GetFinishTime().AsTime(), final.GetState(), final.GetFinishTime().AsTime())
		}
	})

	t.Run("cancel of a queued task ends it at once without starting it", func(t *testing.T) {
		blocker := d.Submit(t, e2eSpec(img, "sleep", "DURATION=60s"))
		d.WaitState(t, blocker.GetId(), pcnodev1.TaskState_TASK_STATE_RUNNING, 0)
		queued := d.Submit(t, e2eSpec(img, "exit", "CODE=0"))
		if got := d.GetTask(t, queued.GetId()).GetState(); got != pcnodev1.TaskState_TASK_STATE_QUEUED {
			t.Fatalf("second task on a node for 1 concurrent task is %v, want QUEUED", got)
		}
		if elapsed := e2eCancel(t, d, queued.GetId(), 10*time.Second); elapsed > time.Second {
			t.Errorf("cancelled queued task ended %v after CancelTask, want at once", elapsed)
		}
		final := d.GetTask(t, queued.GetId())
		e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, 0)
		if final.GetStartTime() != nil {
			t.Errorf("cancelled queued task has start_time %v, want none", final.GetStartTime().AsTime())
		}
		e2eCancel(t, d, blocker.GetId(), time.Second)
	})
}

// e2eCancel cancels task id with grace and returns how long it took from
// the CancelTask call until GetTask showed a final state.
func e2eCancel(t *testing.T, d *daemontest.Daemon, id string, grace time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), grace+time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := d.Client.Tasks.CancelTask(ctx, &pcnodev1.CancelTaskRequest{TaskId: id, GracePeriod: durationpb.New(grace)}); err != nil {
		t.Fatalf("CancelTask(%s) = %v", id, client.FromError(err))
	}
	for {
		resp, err := d.Client.Tasks.GetTask(ctx, &pcnodev1.GetTaskRequest{TaskId: id})
		if err != nil {
			t.Fatalf("GetTask(%s) = %v", id, client.FromError(err))
		}
		if client.IsFinal(resp.GetTask().GetState()) {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
