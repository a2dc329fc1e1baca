package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// e2eTimedCancel calls CancelTask and returns its answer and how long the
// call took.
func e2eTimedCancel(t *testing.T, d *daemontest.Daemon, id string, grace *durationpb.Duration) (*pcnodev1.Task, time.Duration, error) {
	t.Helper()
	start := time.Now()
	resp, err := d.Client.Tasks.CancelTask(t.Context(), &pcnodev1.CancelTaskRequest{TaskId: id, GracePeriod: grace})
	return resp.GetTask(), time.Since(start), client.FromError(err)
}

// TestIntegrationCancelEscalation: a task that ignores SIGTERM, cancelled
// with a minute's grace, is cancelled again without one and ends CANCELLED
// (SIGKILL) within a couple of seconds; each CancelTask answers in well
// under a second with the task's state and what was done. A grace_period
// that is negative or absurd is INVALID_ARGUMENT naming the field and
// changes nothing. Runs pcnoded without the race detector
// (daemontest.Options.NoRace), whose exit delay in the log driver would add
// a second to the task's end.
func TestIntegrationCancelEscalation(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoRace: true})
	img := e2eTestImage(t, d).GetName()
	task := d.Submit(t, e2eSpec(img, "steps", "PCTEST_STEPS=ignore-sigterm -- echo ready -- sleep 120s"))
	d.WaitLog(t, task.GetId(), "ready\n", 0)

	t.Run("bad grace_period", func(t *testing.T) {
		for _, g := range []*durationpb.Duration{durationpb.New(-time.Second), durationpb.New(48 * time.Hour)} {
			_, _, err := e2eTimedCancel(t, d, task.GetId(), g)
			if client.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "grace_period") {
				t.Errorf("CancelTask(grace %v) = %v, want INVALID_ARGUMENT naming grace_period", g.AsDuration(), err)
			}
		}
		if got := d.GetTask(t, task.GetId()); got.GetState() != pcnodev1.TaskState_TASK_STATE_RUNNING {
			t.Fatalf("after refused cancels the task is %v, want RUNNING", got.GetState())
		}
	})

	first, took, err := e2eTimedCancel(t, d, task.GetId(), durationpb.New(time.Minute))
	if err != nil {
		t.Fatalf("CancelTask(grace 1m) = %v", err)
	}
	t.Logf("first CancelTask answered in %v: %v %q", took, first.GetState(), first.GetMessage())
	if took > time.Second {
		t.Errorf("first CancelTask took %v, want well under a second", took)
	}
	if first.GetState() != pcnodev1.TaskState_TASK_STATE_RUNNING || first.GetMessage() != "stopping: SIGTERM sent, SIGKILL in 1m0s" {
		t.Errorf("first CancelTask = %v %q, want RUNNING %q", first.GetState(), first.GetMessage(), "stopping: SIGTERM sent, SIGKILL in 1m0s")
	}
	// The container got SIGTERM and ignores it.
	d.WaitLog(t, task.GetId(), "pctest: SIGTERM ignored", 0)
	time.Sleep(500 * time.Millisecond)
	if got := d.GetTask(t, task.GetId()); got.GetState() != pcnodev1.TaskState_TASK_STATE_RUNNING {
		t.Fatalf("task ignoring SIGTERM is %v half a second after it, want RUNNING for its grace", got.GetState())
	}

	second, took, err := e2eTimedCancel(t, d, task.GetId(), nil)
	escalated := time.Now().Add(-took)
	if err != nil {
		t.Fatalf("second CancelTask(no grace) = %v", err)
	}
	t.Logf("second CancelTask answered in %v: %v %q", took, second.GetState(), second.GetMessage())
	if took > time.Second {
		t.Errorf("second CancelTask took %v, want well under a second", took)
	}
	if second.GetMessage() != "escalated: SIGKILL sent" && !client.IsFinal(second.GetState()) {
		t.Errorf("second CancelTask = %v %q, want %q", second.GetState(), second.GetMessage(), "escalated: SIGKILL sent")
	}
	final := d.WaitTask(t, task.GetId(), 10*time.Second)
	ended := time.Since(escalated)
	t.Logf("task ended %v after the escalation: %v/%v exit %d %q", ended, final.GetState(), final.GetReason(), final.GetExitCode(), final.GetMessage())
	e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, 137)
	if ended > 3*time.Second {
		t.Errorf("task ended %v after the escalating cancel, want within a couple of seconds", ended)
	}
	if !strings.Contains(final.GetMessage(), "grace 0s") {
		t.Errorf("final message %q, want the grace in force (0s) named", final.GetMessage())
	}
}

// TestIntegrationQueuedCredentialsLostInRestart: a task submitted with
// registry credentials in its spec waits behind a busy node; the daemon
// restarts, which loses the credentials (they are never stored); once the
// node is free the pull without them fails, and the task ends IMAGE_ERROR
// saying why and to resubmit, with a warning from the restart. The password
// is nowhere in the state directory.
func TestIntegrationQueuedCredentialsLostInRestart(t *testing.T) {
	const user, pass = "airflow", "queuedPW-51c0e8a2-secret"
	reg := daemontest.NewRegistry(t, user, pass)
	reg.AddImage(t, "pcnode/pctest", "v1", testimage.Image{Name: "pcnode.test/queued-auth:v1"})
	d := daemontest.Start(t, daemontest.Options{NoRace: true, Configure: func(c *config.Config) {
		c.Resources.MaxConcurrent = 1
		c.Registries = append(c.Registries, config.Registry{Host: reg.Host, Insecure: true})
	}})
	img := e2eTestImage(t, d).GetName()
	blocker := d.Submit(t, e2eSpec(img, "steps", "PCTEST_STEPS=echo ready -- sleep 120s"))
	d.WaitLog(t, blocker.GetId(), "ready\n", 0)

	spec := e2eSpec(reg.Ref("pcnode/pctest", "v1"), "exit", "CODE=0")
	spec.RegistryAuth = &pcnodev1.RegistryAuth{Username: user, Password: pass}
	queued := d.Submit(t, spec)
	if queued.GetState() != pcnodev1.TaskState_TASK_STATE_QUEUED || !queued.GetRegistryAuthInMemory() {
		t.Fatalf("submitted task = %v registry_auth_in_memory %v, want QUEUED and true", queued.GetState(), queued.GetRegistryAuthInMemory())
	}

	d.Restart(t)
	if got := d.GetTask(t, blocker.GetId()); got.GetState() != pcnodev1.TaskState_TASK_STATE_RUNNING {
		t.Fatalf("blocker after the restart is %v, want RUNNING (re-attached)", got.GetState())
	}
	if got := d.GetTask(t, queued.GetId()); !slices.ContainsFunc(got.GetWarnings(), func(w string) bool {
		return strings.Contains(w, "registry credentials lost in daemon restart")
	}) {
		t.Errorf("queued task after the restart has warnings %q, want one saying its registry credentials were lost", got.GetWarnings())
	}
	if _, _, err := e2eTimedCancel(t, d, blocker.GetId(), nil); err != nil {
		t.Fatalf("CancelTask(blocker) = %v", err)
	}
	final := d.WaitTask(t, queued.GetId(), time.Minute)
	t.Logf("queued task ended %v/%v: %q", final.GetState(), final.GetReason(), final.GetMessage())
	e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR, 0)
	for _, want := range []string{reg.Host, "never stored", "lost when the daemon restarted", "resubmit"} {
		if !strings.Contains(final.GetMessage(), want) {
			t.Errorf("IMAGE_ERROR message = %q, want it to say %q", final.GetMessage(), want)
		}
	}
	if strings.Contains(final.GetMessage(), pass) || strings.Contains(d.Logs(), pass) {
		t.Error("the task's message or pcnoded's log holds the password")
	}
	err := filepath.WalkDir(d.StateDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(pass)) {
			t.Errorf("state file %s holds the password", p)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walking the state directory: %v", err)
	}
}
