package daemon

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/sched"
	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/health"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// healthDaemon is a Daemon with two static GPUs (A index 0, B index 1)
// watched by a health monitor over health.StaticSource that never
// re-probes, a memory store and a fake runtime; its scheduler starts with
// both GPUs of unknown health, as buildScheduler leaves them.
func healthDaemon(t *testing.T) *Daemon {
	t.Helper()
	inv, err := gpu.NewStatic([]gpu.StaticGPU{
		{Index: 0, UUID: gpuA, Model: "Test GPU", MemoryBytes: 16 << 30},
		{Index: 1, UUID: gpuB, Model: "Test GPU", MemoryBytes: 16 << 30},
	}, gpu.SystemInfo{DriverVersion: "550.0", CUDAVersion: "12.4"})
	if err != nil {
		t.Fatal(err)
	}
	uuids := []string{gpuA, gpuB}
	hc := health.DefaultConfig()
	hc.ReprobeInterval = 0 // only an admin clears a GPU
	mon, err := health.New(health.StaticSource{}, uuids, hc)
	if err != nil {
		t.Fatal(err)
	}
	devs, err := inv.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	g := &gpuNode{inv: inv, monitor: mon, uuids: uuids}
	s, err := sched.New(sched.Config{
		Allocatable: sched.Resources{MilliCPU: 8000, MemoryBytes: 8 << 30},
		GPUs:        schedGPUs(devs, g.statuses()),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig()
	cfg.Node.Name = "test-node"
	return &Daemon{
		cfg:       cfg,
		log:       slog.New(slog.DiscardHandler),
		store:     store.NewMemory(),
		rt:        &taskRuntime{},
		sched:     s,
		gpus:      g,
		events:    newBroker(),
		node:      newNodeWatch(),
		startTime: time.Now(),
		wake:      make(chan struct{}, 1),
	}
}

// runHealth runs d.watchGPUHealth until the test ends and waits for both
// GPUs to be healthy in the scheduler. At the end it waits for the loop
// and for the monitor to stop (the monitor then turns healthy GPUs unknown).
func runHealth(t *testing.T, d *Daemon) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.watchGPUHealth(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		waitFor(t, "the health monitor to stop", func() bool {
			for _, s := range d.gpus.monitor.Statuses() {
				if s.Health == gpu.HealthHealthy {
					return false
				}
			}
			return true
		})
	})
	want := map[string]sched.Health{gpuA: sched.Healthy, gpuB: sched.Healthy}
	waitFor(t, "both GPUs healthy in the scheduler", func() bool { return cmp.Equal(gpuHealth(d), want) })
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// nextChange waits for a node change on w.
func nextChange(t *testing.T, w chan pcnodev1.NodeChange, after string) pcnodev1.NodeChange {
	t.Helper()
	select {
	case why := <-w:
		return why
	case <-time.After(10 * time.Second):
		t.Fatalf("no node change after %s", after)
		return 0
	}
}

// runningTask stores a RUNNING task and returns its id.
func runningTask(t *testing.T, d *Daemon) string {
	t.Helper()
	id := store.NewID(time.Now())
	task := &pcnodev1.Task{Id: id, State: pcnodev1.TaskState_TASK_STATE_RUNNING, CreateTime: timestamppb.Now(), StartTime: timestamppb.Now()}
	if _, _, err := d.store.CreateTask(context.Background(), task, "", nil); err != nil {
		t.Fatal(err)
	}
	return id
}

func taskFaults(t *testing.T, d *Daemon, id string) []*pcnodev1.GpuFault {
	t.Helper()
	task, err := d.store.GetTask(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return task.GetGpuFaults()
}

// scheduleOne queues a one-GPU request with id and returns the GPUs the
// scheduler gives it now (none when it must wait).
func scheduleOne(t *testing.T, d *Daemon, id string) []string {
	t.Helper()
	if err := d.sched.Enqueue(sched.Request{ID: id, Requests: sched.Resources{MilliCPU: 100, MemoryBytes: 1 << 20, GPUs: 1}}); err != nil {
		t.Fatalf("Enqueue(%s) = %v", id, err)
	}
	for _, a := range d.sched.Schedule() {
		if a.ID == id {
			return a.UUIDs()
		}
	}
	d.sched.Remove(id)
	return nil
}

func TestWatchGPUHealth(t *testing.T) {
	ctx := context.Background()
	d := healthDaemon(t)
	w := d.node.subscribe()
	runHealth(t, d)
	m := d.gpus.monitor

	// Task 1 runs on GPU A.
	t1 := runningTask(t, d)
	if err := d.sched.Restore(sched.Request{ID: t1, Requests: sched.Resources{MilliCPU: 100, GPUs: 1}}, []string{gpuA}); err != nil {
		t.Fatal(err)
	}

	// A critical XID on GPU A. Holding the store's writer lock keeps the
	// loop from announcing it before the watcher is emptied of the
	// announcements of the monitor's start: once A is unhealthy in the
	// scheduler those are all made, and this one is not yet.
	xidTime := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	d.writeMu.Lock()
	m.Report(gpu.Event{UUID: gpuA, Kind: gpu.EventXID, XID: 79, Time: xidTime})
	waitFor(t, "GPU A unhealthy in the scheduler after XID 79", func() bool { return gpuHealth(d)[gpuA] == sched.Unhealthy })
	pending(w)
	d.writeMu.Unlock()
	if got := nextChange(t, w, "XID 79"); got != pcnodev1.NodeChange_NODE_CHANGE_GPU_HEALTH {
		t.Errorf("node change after XID 79 = %v, want %v", got, pcnodev1.NodeChange_NODE_CHANGE_GPU_HEALTH)
	}
	faults := taskFaults(t, d, t1)
	wantFault := []*pcnodev1.GpuFault{{Uuid: gpuA, Xid: 79, Time: timestamppb.New(xidTime)}}
	if diff := cmp.Diff(wantFault, faults, protocmp.Transform(), protocmp.IgnoreFields(&pcnodev1.GpuFault{}, "message")); diff != "" {
		t.Errorf("faults of the task on GPU A after XID 79 (-want +got):\n%s", diff)
	}
	if len(faults) == 1 && !strings.Contains(faults[0].GetMessage(), gpu.XIDDescription(79)) {
		t.Errorf("fault message after XID 79 = %q, want it to contain %q", faults[0].GetMessage(), gpu.XIDDescription(79))
	}
	if got := d.sched.Snapshot().GPUHolders[gpuA]; got != t1 {
		t.Errorf("holder of the failed GPU A = %q, want %q (it stays with its task)", got, t1)
	}
	// The node has two GPUs: a 2-GPU task fits once A recovers.
	if now, ever, _ := d.sched.Fits(sched.Request{ID: "two", Requests: sched.Resources{GPUs: 2}}); now || !ever {
		t.Errorf("Fits(2 GPUs) with GPU A unhealthy = %v, %v, want false, true", now, ever)
	}
	// The mark is stored, with its XID, for the next start.
	waitFor(t, "GPU A's mark in the store", func() bool {
		st, err := d.store.GetNodeState(ctx)
		return err == nil && st.GPUMarks[gpuA].XID == 79
	})
	if st, _ := d.store.GetNodeState(ctx); len(st.GPUMarks) != 1 || st.GPUMarks[gpuA].Kind != "xid" || !st.GPUMarks[gpuA].Time.Equal(xidTime) {
		t.Errorf("node state after XID 79 = %+v, want one xid mark of GPU A at %s", st, xidTime)
	}

	// Task 1 ends; GPU A is free but not assignable: task 2 gets B.
	d.sched.Release(t1)
	t2 := runningTask(t, d)
	if got, want := scheduleOne(t, d, t2), []string{gpuB}; !cmp.Equal(got, want) {
		t.Fatalf("GPUs for a 1-GPU task with GPU A unhealthy = %q, want %q", got, want)
	}
	if got := scheduleOne(t, d, "waits"); got != nil {
		t.Errorf("GPUs for a 1-GPU task with A unhealthy and B held = %q, want none", got)
	}

	// An application XID on GPU B (held by task 2) changes nothing. The
	// scheduler is told B is unknown first so that the loop's handling of
	// the XID is seen: it sets B back to the monitor's healthy.
	if _, err := d.sched.SetGPUHealth(gpuB, sched.Unknown); err != nil {
		t.Fatal(err)
	}
	m.Report(gpu.Event{UUID: gpuB, Kind: gpu.EventXID, XID: 13, Time: xidTime.Add(time.Minute)})
	waitFor(t, "GPU B healthy in the scheduler after XID 13", func() bool { return gpuHealth(d)[gpuB] == sched.Healthy })
	if got := nextChange(t, w, "XID 13"); got != pcnodev1.NodeChange_NODE_CHANGE_GPU_HEALTH {
		t.Errorf("node change after XID 13 = %v, want %v", got, pcnodev1.NodeChange_NODE_CHANGE_GPU_HEALTH)
	}
	if st, err := m.Status(gpuB); err != nil || st.Health != gpu.HealthHealthy || st.LastXID == nil || st.LastXID.Code != 13 {
		t.Errorf("monitor status of GPU B after XID 13 = %+v, %v; want healthy with last XID 13", st, err)
	}
	if got := taskFaults(t, d, t2); len(got) != 0 {
		t.Errorf("faults of the task on GPU B after application XID 13 = %v, want none", got)
	}
	if diff := cmp.Diff(map[string]sched.Health{gpuA: sched.Unhealthy, gpuB: sched.Healthy}, gpuHealth(d)); diff != "" {
		t.Errorf("scheduler health after XID 13 (-want +got):\n%s", diff)
	}

	// The admin clears GPU A: healthy and assignable again.
	select { // the loop's kicks so far
	case <-d.wake:
	default:
	}
	g, err := d.ClearGPUHealth(ctx, gpuA)
	if err != nil {
		t.Fatalf("ClearGPUHealth(%s) = %v", gpuA, err)
	}
	if g.GetUuid() != gpuA || g.GetIndex() != 0 || g.GetHealth() != pcnodev1.GpuHealth_GPU_HEALTH_HEALTHY || g.GetHealthMessage() != "" ||
		g.GetHolderTaskId() != "" || g.GetLastXid().GetCode() != 79 {
		t.Errorf("ClearGPUHealth(%s) = %v, want GPU 0 healthy, free, with no message and last XID 79", gpuA, g)
	}
	if got := gpuHealth(d)[gpuA]; got != sched.Healthy {
		t.Errorf("scheduler health of GPU A once ClearGPUHealth returned = %v, want %v", got, sched.Healthy)
	}
	if st, err := d.store.GetNodeState(ctx); err != nil || len(st.GPUMarks) != 0 {
		t.Errorf("node state once ClearGPUHealth returned = %+v, %v, want no marks", st, err)
	}
	select {
	case <-d.wake:
	default:
		t.Error("ClearGPUHealth did not kick the scheduler")
	}
	if got := nextChange(t, w, "ClearGPUHealth"); got != pcnodev1.NodeChange_NODE_CHANGE_GPU_HEALTH {
		t.Errorf("node change after ClearGPUHealth = %v, want %v", got, pcnodev1.NodeChange_NODE_CHANGE_GPU_HEALTH)
	}
	t3 := runningTask(t, d)
	if got, want := scheduleOne(t, d, t3), []string{gpuA}; !cmp.Equal(got, want) {
		t.Errorf("GPUs for a 1-GPU task after GPU A was cleared = %q, want %q", got, want)
	}
	if diff := cmp.Diff(map[string]sched.Health{gpuA: sched.Healthy, gpuB: sched.Healthy}, gpuHealth(d)); diff != "" {
		t.Errorf("scheduler health at the end (-want +got):\n%s", diff)
	}
	if got := taskFaults(t, d, t1); len(got) != 1 {
		t.Errorf("faults of task 1 at the end = %v, want the one from XID 79", got)
	}
}

func TestClearGpuHealthErrors(t *testing.T) {
	d := healthDaemon(t)
	runHealth(t, d)
	// A malformed uuid is refused by NodeService before the node sees it
	// (daemon/server).
	for _, tc := range []struct {
		name string
		uuid string
		want codes.Code
	}{
		{"unknown GPU", "GPU-cccccccc-0000-0000-0000-000000000000", codes.NotFound},
		{"healthy GPU", gpuB, codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := d.ClearGPUHealth(context.Background(), tc.uuid)
			if got := status.Code(toStatus(err)); got != tc.want {
				t.Fatalf("ClearGPUHealth(%q) = %v, want code %v", tc.uuid, err, tc.want)
			}
			if tc.want == codes.OK && (g.GetUuid() != tc.uuid || g.GetHealth() != pcnodev1.GpuHealth_GPU_HEALTH_HEALTHY) {
				t.Errorf("ClearGPUHealth(%q) = %v, want the GPU, healthy", tc.uuid, g)
			}
		})
	}
	if diff := cmp.Diff(map[string]sched.Health{gpuA: sched.Healthy, gpuB: sched.Healthy}, gpuHealth(d)); diff != "" {
		t.Errorf("scheduler health after failed and no-op clears (-want +got):\n%s", diff)
	}
}

// A node without monitored GPUs answers NOT_FOUND.
func TestClearGpuHealthWithoutMonitor(t *testing.T) {
	d, _ := cdiDaemon(t, gpuA, gpuB)
	_, err := d.ClearGPUHealth(context.Background(), gpuA)
	if got := status.Code(toStatus(err)); got != codes.NotFound {
		t.Errorf("ClearGPUHealth(%q) without a monitor = %v, want code %v", gpuA, err, codes.NotFound)
	}
}

// settle returns once the health loop has handled every change the monitor
// published before the call: it makes GPU B unknown in the scheduler and
// reports an application XID on B, whose change the loop handles after the
// earlier ones by setting B back to healthy. B must be healthy.
func settle(t *testing.T, d *Daemon) {
	t.Helper()
	if _, err := d.sched.SetGPUHealth(gpuB, sched.Unknown); err != nil {
		t.Fatal(err)
	}
	d.gpus.monitor.Report(gpu.Event{UUID: gpuB, Kind: gpu.EventXID, XID: 13})
	waitFor(t, "the health loop to handle the changes so far", func() bool { return gpuHealth(d)[gpuB] == sched.Healthy })
}

// A task's fault says what made its GPU fail: an ECC error is recorded with
// XID 0 at its own time, not with an earlier application XID; changes that
// are no new failure (an application XID on a GPU already unhealthy) add
// no fault.
func TestWatchGPUHealthFaultCause(t *testing.T) {
	d := healthDaemon(t)
	runHealth(t, d)
	m := d.gpus.monitor
	t1 := runningTask(t, d)
	if err := d.sched.Restore(sched.Request{ID: t1, Requests: sched.Resources{GPUs: 1}}, []string{gpuA}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

	m.Report(gpu.Event{UUID: gpuA, Kind: gpu.EventXID, XID: 13, Time: t0})
	settle(t, d)
	if got := taskFaults(t, d, t1); len(got) != 0 {
		t.Errorf("faults after application XID 13 on a healthy GPU = %v, want none", got)
	}

	m.Report(gpu.Event{UUID: gpuA, Kind: gpu.EventDoubleBitECC, Time: t0.Add(time.Hour)})
	settle(t, d)
	want := []*pcnodev1.GpuFault{{Uuid: gpuA, Xid: 0, Time: timestamppb.New(t0.Add(time.Hour))}}
	if diff := cmp.Diff(want, taskFaults(t, d, t1), protocmp.Transform(), protocmp.IgnoreFields(&pcnodev1.GpuFault{}, "message")); diff != "" {
		t.Errorf("faults after a double-bit ECC error that followed XID 13 (-want +got):\n%s", diff)
	}

	m.Report(gpu.Event{UUID: gpuA, Kind: gpu.EventXID, XID: 13, Time: t0.Add(2 * time.Hour)})
	settle(t, d)
	if diff := cmp.Diff(want, taskFaults(t, d, t1), protocmp.Transform(), protocmp.IgnoreFields(&pcnodev1.GpuFault{}, "message")); diff != "" {
		t.Errorf("faults after application XID 13 on the already unhealthy GPU (-want +got):\n%s", diff)
	}
}
