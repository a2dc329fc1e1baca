package main

// End-to-end acceptance of issue 10's "state that survives restarts": the
// drain, a GPU's unhealthy mark with its XID, and queued GPU tasks outlive
// pcnoded being killed (SIGKILL) and stopped (SIGTERM); "can this ever fit"
// counts every GPU of the node, so queued GPU tasks are not failed after a
// restart, before the health monitor has reported, or while a GPU they need
// is unhealthy. Two fake GPUs (static backend, CDI spec made at test time,
// as gpu_e2e_test.go) and real containers.
//
// The XID is fed into the running pcnoded, which is built for tests (the
// crashpoints build tag): its static GPU backend's health source also
// takes events written into the directory named by PCNODE_TEST_GPU_EVENTS
// (daemon/gpuevents_on.go). Marking the GPU, storing the mark, restoring it,
// keeping it through a further run and a clean stop, clearing it and the
// drain are all the daemon's own doing.

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon"
	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationRestartKeepsNodeState: GPU tasks queue behind two
// holders; the node drains; pcnoded is killed and GPU 1 marked unhealthy
// (XID 79). After the restart the node is draining, GPU 1 is unhealthy
// with XID 79 although the driver (static) says it is fine, and the
// queued tasks are QUEUED; the one-GPU task runs on GPU 0 once the holders
// end, the two-GPU task waits. After a clean stop and start all of that
// holds still; once the operator resumes, a two-GPU submit right after the
// start is accepted, and once GPU 1 is cleared both two-GPU tasks run. A last
// kill and start shows the resume and the clear were kept.
func TestIntegrationRestartKeepsNodeState(t *testing.T) {
	events := t.TempDir()
	d, fakes, img := gpuStart(t, daemontest.Options{NoRace: true, CrashPoints: true, Env: []string{daemon.EnvTestGPUEvents + "=" + events}})
	gpu0, gpu1 := fakes.Static[0].UUID, fakes.Static[1].UUID

	// Two holders take both GPUs; three GPU tasks queue behind them.
	h0 := d.Submit(t, gpuSpec(img, "holder-a", 1, "sleep 120s"))
	h1 := d.Submit(t, gpuSpec(img, "holder-b", 1, "sleep 120s"))
	h0 = d.WaitState(t, h0.GetId(), pcnodev1.TaskState_TASK_STATE_RUNNING, 0)
	h1 = d.WaitState(t, h1.GetId(), pcnodev1.TaskState_TASK_STATE_RUNNING, 0)
	one := d.Submit(t, gpuSpec(img, "queued-one-gpu", 1, "exit 0"))
	two := d.Submit(t, gpuSpec(img, "queued-two-gpus", 2, "exit 0"))
	for _, q := range []*pcnodev1.Task{one, two} {
		if got := d.GetTask(t, q.GetId()); got.GetState() != pcnodev1.TaskState_TASK_STATE_QUEUED {
			t.Fatalf("task %s (%s) with both GPUs held = %v (%q), want QUEUED", q.GetId(), q.GetSpec().GetName(), got.GetState(), got.GetMessage())
		}
	}
	if resp, err := d.Client.Nodes.DrainNode(t.Context(), &pcnodev1.DrainNodeRequest{}); err != nil || !resp.GetNode().GetDraining() {
		t.Fatalf("DrainNode() = %v, %v, want a draining node", resp, client.FromError(err))
	}

	// GPU 1 falls off the bus (XID 79) while pcnoded runs.
	xidTime := time.Now().UTC().Truncate(time.Millisecond)
	injectXID(t, events, gpu1, 79, xidTime)
	waitUnhealthy(t, d, gpu1)

	d.Kill(t)
	d.Restart(t)
	n := restartNode(t, d)
	restartWantNode(t, n, "after the SIGKILL", true, map[string]pcnodev1.GpuHealth{gpu1: pcnodev1.GpuHealth_GPU_HEALTH_UNHEALTHY})
	restartWantXID(t, n, gpu1, 79, xidTime)
	_, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: gpuSpec(img, "while-draining", 1, "exit 0")})
	if client.Code(err) != codes.FailedPrecondition {
		t.Errorf("SubmitTask() on the node drained before the restart = %v, want %v", client.FromError(err), codes.FailedPrecondition)
	}
	for _, q := range []*pcnodev1.Task{one, two} {
		if got := d.GetTask(t, q.GetId()); got.GetState() != pcnodev1.TaskState_TASK_STATE_QUEUED {
			t.Errorf("task %s (%s) after the restart = %v/%v (%q), want QUEUED", q.GetId(), q.GetSpec().GetName(), got.GetState(), got.GetReason(), got.GetMessage())
		}
	}
	// The holders end; the one-GPU task runs on the healthy GPU 0 (queued
	// tasks go on while the node drains), the two-GPU task keeps waiting
	// for GPU 1.
	for _, h := range []*pcnodev1.Task{h0, h1} {
		if _, err := d.Client.Tasks.CancelTask(t.Context(), &pcnodev1.CancelTaskRequest{TaskId: h.GetId()}); err != nil {
			t.Fatalf("CancelTask(%s) = %v", h.GetId(), client.FromError(err))
		}
	}
	for _, h := range []*pcnodev1.Task{h0, h1} {
		d.WaitTask(t, h.GetId(), 0)
	}
	one = d.WaitTask(t, one.GetId(), 0)
	e2eWantEnd(t, one, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
	gpuWantAllocation(t, one, &pcnodev1.GpuAssignment{Index: 0, Uuid: gpu0})
	if got := d.GetTask(t, two.GetId()); got.GetState() != pcnodev1.TaskState_TASK_STATE_QUEUED {
		t.Errorf("two-GPU task with GPU 1 unhealthy = %v/%v (%q), want QUEUED", got.GetState(), got.GetReason(), got.GetMessage())
	}

	// A clean stop and start keeps it all; the mark and the drain hold
	// from the first answer on, before the health monitor reports.
	d.Restart(t)
	first, err := d.Client.Nodes.GetNode(t.Context(), &pcnodev1.GetNodeRequest{})
	if err != nil {
		t.Fatalf("GetNode() right after the clean restart = %v", client.FromError(err))
	}
	restartWantNode(t, first.GetNode(), "right after the clean stop", true, map[string]pcnodev1.GpuHealth{gpu1: pcnodev1.GpuHealth_GPU_HEALTH_UNHEALTHY})
	restartWantXID(t, first.GetNode(), gpu1, 79, xidTime)
	resp, err := d.Client.Nodes.ResumeNode(t.Context(), &pcnodev1.ResumeNodeRequest{})
	if err != nil || resp.GetNode().GetDraining() {
		t.Fatalf("ResumeNode() after the clean restart = %v, %v, want a node not draining", resp, client.FromError(err))
	}
	// A GPU task right after the start, needing the unhealthy GPU: queued.
	fresh, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: gpuSpec(img, "fresh-two-gpus", 2, "exit 0")})
	if err != nil {
		t.Fatalf("SubmitTask(2 GPUs) right after the start, GPU 1 unhealthy = %v, want it queued", client.FromError(err))
	}
	n = restartNode(t, d)
	restartWantNode(t, n, "after the clean stop and ResumeNode", false, map[string]pcnodev1.GpuHealth{
		gpu0: pcnodev1.GpuHealth_GPU_HEALTH_HEALTHY, gpu1: pcnodev1.GpuHealth_GPU_HEALTH_UNHEALTHY,
	})
	restartWantXID(t, n, gpu1, 79, xidTime)
	for _, q := range []*pcnodev1.Task{two, fresh.GetTask()} {
		if got := d.GetTask(t, q.GetId()); got.GetState() != pcnodev1.TaskState_TASK_STATE_QUEUED {
			t.Errorf("task %s (%s) after the clean restart = %v/%v (%q), want QUEUED", q.GetId(), q.GetSpec().GetName(), got.GetState(), got.GetReason(), got.GetMessage())
		}
	}

	// The operator clears GPU 1: both two-GPU tasks run, in order.
	if _, err := d.Client.Nodes.ClearGpuHealth(t.Context(), &pcnodev1.ClearGpuHealthRequest{Uuid: gpu1}); err != nil {
		t.Fatalf("ClearGpuHealth(%s) = %v", gpu1, client.FromError(err))
	}
	two = d.WaitTask(t, two.GetId(), 0)
	later := d.WaitTask(t, fresh.GetTask().GetId(), 0)
	for _, task := range []*pcnodev1.Task{two, later} {
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
		gpuWantAllocation(t, task, &pcnodev1.GpuAssignment{Index: 0, Uuid: gpu0}, &pcnodev1.GpuAssignment{Index: 1, Uuid: gpu1})
	}
	if !two.GetStartTime().AsTime().Before(later.GetStartTime().AsTime()) {
		t.Errorf("two-GPU tasks started %v (queued before the restarts) and %v (submitted after); want them in submission order",
			two.GetStartTime().AsTime(), later.GetStartTime().AsTime())
	}

	// Kill and start once more: the resume and the clear were written.
	d.Kill(t)
	d.Restart(t)
	n = restartNode(t, d)
	restartWantNode(t, n, "after the clear and a SIGKILL", false, map[string]pcnodev1.GpuHealth{
		gpu0: pcnodev1.GpuHealth_GPU_HEALTH_HEALTHY, gpu1: pcnodev1.GpuHealth_GPU_HEALTH_HEALTHY,
	})
	for _, g := range n.GetGpus() {
		if g.GetLastXid() != nil {
			t.Errorf("GPU %s after the clear and a restart has last XID %v, want none", g.GetUuid(), g.GetLastXid())
		}
	}
}

// injectXID has the test build of pcnoded see XID code on GPU uuid at
// when (written to a temporary name, then renamed into place, so that the
// daemon never reads half a file).
func injectXID(t *testing.T, dir, uuid string, code int, when time.Time) {
	t.Helper()
	tmp := filepath.Join(dir, "xid.tmp")
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%s %d %d\n", uuid, code, when.UnixMilli()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "xid.event")); err != nil {
		t.Fatal(err)
	}
}

// waitUnhealthy waits until GetNode shows GPU uuid unhealthy.
func waitUnhealthy(t *testing.T, d *daemontest.Daemon, uuid string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := d.Client.Nodes.GetNode(t.Context(), &pcnodev1.GetNodeRequest{})
		if err != nil {
			t.Fatalf("GetNode() = %v", client.FromError(err))
		}
		for _, g := range resp.GetNode().GetGpus() {
			if g.GetUuid() == uuid && g.GetHealth() == pcnodev1.GpuHealth_GPU_HEALTH_UNHEALTHY {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GPU %s not unhealthy 30 s after its XID: %v", uuid, resp.GetNode().GetGpus())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restartNode waits until the GPUS_KNOWN condition holds and returns the
// node then.
func restartNode(t *testing.T, d *daemontest.Daemon) *pcnodev1.Node {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := d.Client.Nodes.GetNode(t.Context(), &pcnodev1.GetNodeRequest{})
		if err != nil {
			t.Fatalf("GetNode() = %v", client.FromError(err))
		}
		for _, c := range resp.GetNode().GetConditions() {
			if c.GetType() == pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_GPUS_KNOWN && c.GetOk() {
				return resp.GetNode()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetNode() conditions = %v; GPUS_KNOWN not true 30 s after the start", resp.GetNode().GetConditions())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// restartWantNode fails t unless n's drain and the named GPUs' health are
// as wanted.
func restartWantNode(t *testing.T, n *pcnodev1.Node, when string, draining bool, health map[string]pcnodev1.GpuHealth) {
	t.Helper()
	if n.GetDraining() != draining {
		t.Errorf("GetNode().draining %s = %v, want %v", when, n.GetDraining(), draining)
	}
	got := map[string]pcnodev1.GpuHealth{}
	for _, g := range n.GetGpus() {
		got[g.GetUuid()] = g.GetHealth()
	}
	for uuid, want := range health {
		if got[uuid] != want {
			t.Errorf("GetNode() health of GPU %s %s = %v, want %v", uuid, when, got[uuid], want)
		}
	}
}

// restartWantXID fails t unless GPU uuid of n carries XID code at when.
func restartWantXID(t *testing.T, n *pcnodev1.Node, uuid string, code int32, when time.Time) {
	t.Helper()
	for _, g := range n.GetGpus() {
		if g.GetUuid() != uuid {
			continue
		}
		if x := g.GetLastXid(); x.GetCode() != code || !x.GetTime().AsTime().Equal(when) {
			t.Errorf("GetNode() last XID of GPU %s = %v, want %d at %s", uuid, x, code, when)
		}
		return
	}
	t.Errorf("GetNode() has no GPU %s", uuid)
}
