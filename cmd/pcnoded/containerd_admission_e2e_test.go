package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationContainerdDownWhileAdmitting: containerd stops while a
// task is being admitted: its image is being pulled (the registry holds its
// blobs) when containerd goes away, while three tasks of an image on the
// node run and four more wait for a slot. None fails for containerd being
// unreachable: the pulling task goes back to QUEUED with a message saying
// so, and once containerd is back every task runs and ends with its exact
// exit code. (A start cut off inside containerd's NewTask is covered by
// TestRequeueWhenStartUnavailable against the fake runtime: with containerd
// 1.6 a cut-off task's shim bundle can outlive containerd's clean up and
// keep the id, see docs/lifecycle.md.)
func TestIntegrationContainerdDownWhileAdmitting(t *testing.T) {
	const running, waiting = 3, 4
	reg := daemontest.NewRegistry(t, "", "")
	// Its own layer and config: nothing of it is in containerd's content
	// store (the test image imported below shares the standard layer).
	reg.AddImage(t, "pcnode/pctest", "held", testimage.Image{Name: "pcnode.test/held-pull:v1",
		Labels: map[string]string{"pcnode.test": "held-pull"},
		Files:  []testimage.File{{Path: "/held-pull.txt", Data: []byte("held pull\n"), Mode: 0o644}}})
	c := daemontest.StartContainerd(t)
	d := daemontest.Start(t, daemontest.Options{Containerd: c, NoRace: true, Configure: func(cfg *config.Config) {
		cfg.Resources.MaxConcurrent = 4
		cfg.Registries = append(cfg.Registries, config.Registry{Host: reg.Host, Insecure: true})
	}})
	img := e2eTestImage(t, d).GetName()

	held, release := reg.HoldBlobs()
	defer release()
	pulling := d.Submit(t, e2eSpec(reg.Ref("pcnode/pctest", "held"), "exit", "CODE=5")).GetId()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the task's pull reached no blob within 30 s")
	}
	ids := make([]string, running+waiting)
	for i := range ids {
		sleep := "0s"
		if i < running {
			sleep = "8s" // through the outage
		}
		ids[i] = d.Submit(t, e2eSpec(img, "steps", fmt.Sprintf("PCTEST_STEPS=sleep %s -- exit %d", sleep, i))).GetId()
	}
	for _, id := range ids[:running] {
		d.WaitState(t, id, pcnodev1.TaskState_TASK_STATE_RUNNING, 30*time.Second)
	}

	c.Stop(t)
	crWaitContainerdCondition(t, d, false, 8*time.Second)
	release() // the pull goes on, into a containerd that is gone

	deadline := time.Now().Add(20 * time.Second)
	for {
		got := d.GetTask(t, pulling)
		if st := got.GetState(); st == pcnodev1.TaskState_TASK_STATE_QUEUED && strings.Contains(got.GetMessage(), "containerd unreachable") {
			t.Logf("pulling task while containerd is down: %v %q", got.GetState(), got.GetMessage())
			if got.GetAllocation() != nil {
				t.Errorf("requeued task keeps allocation %v, want none", got.GetAllocation())
			}
			break
		}
		if client.IsFinal(got.GetState()) || time.Now().After(deadline) {
			t.Fatalf("pulling task is %v/%v %q, want QUEUED again saying containerd is unreachable", got.GetState(), got.GetReason(), got.GetMessage())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	for i, id := range ids {
		if got := d.GetTask(t, id); client.IsFinal(got.GetState()) && got.GetExitCode() != int32(i) {
			t.Errorf("task %d ended %v/%v %q while containerd was down, want nothing but its own exit", i, got.GetState(), got.GetReason(), got.GetMessage())
		}
	}

	c.Start(t)
	crWaitContainerdCondition(t, d, true, 10*time.Second)
	final := d.WaitTask(t, pulling, 2*time.Minute)
	e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, 5)
	requeued := strings.Count(d.Logs(), "task queued again")
	for i, id := range ids {
		final := d.WaitTask(t, id, 2*time.Minute)
		if i == 0 {
			e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
		} else {
			e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, int32(i))
		}
	}
	t.Logf("%d tasks were queued again by containerd's outage", requeued)
	if requeued == 0 {
		t.Errorf("pcnoded's log says no task was queued again, want at least the pulling one")
	}
}
