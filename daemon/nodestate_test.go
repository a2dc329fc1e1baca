package daemon

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/daemon/sched"
	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/health"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// restartedDaemon is healthDaemon as New leaves it after a restart on st:
// its monitor watched through knownSource (so GPUS_KNOWN follows it), the
// node state of st restored, then the scheduler built from the monitor's
// statuses.
func restartedDaemon(t *testing.T, st store.Store) *Daemon {
	t.Helper()
	d := healthDaemon(t)
	d.store = st
	hc := health.DefaultConfig()
	hc.ReprobeInterval = 0
	if err := d.gpus.newMonitor(health.StaticSource{}, hc); err != nil {
		t.Fatal(err)
	}
	d.gpus.onKnown = func() { d.node.changed(pcnodev1.NodeChange_NODE_CHANGE_CONDITION) }
	if err := d.restoreNodeState(context.Background()); err != nil {
		t.Fatalf("restoreNodeState() = %v", err)
	}
	devs, err := d.gpus.inv.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d.sched, err = sched.New(sched.Config{
		Allocatable: sched.Resources{MilliCPU: 8000, MemoryBytes: 8 << 30},
		GPUs:        schedGPUs(devs, d.gpus.statuses()),
	}); err != nil {
		t.Fatal(err)
	}
	return d
}

// startHealth runs the daemon's health loop until the test ends.
func startHealth(t *testing.T, d *Daemon) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.watchGPUHealth(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A drain is written to the store before SetDraining(true) returns, and a daemon
// started on that store is draining; SetDraining(false) undoes both.
func TestDrainPersisted(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	d := restartedDaemon(t, st)
	w := d.node.subscribe()
	if err := d.SetDraining(ctx, true); err != nil {
		t.Fatalf("SetDraining(true) = %v", err)
	}
	if n, err := d.NodeInfo(ctx); err != nil || !n.GetDraining() {
		t.Fatalf("NodeInfo() after SetDraining(true) = %v, %v, want a draining node", n, err)
	}
	if got := nextChange(t, w, "SetDraining(true)"); got != pcnodev1.NodeChange_NODE_CHANGE_DRAIN {
		t.Errorf("node change after SetDraining(true) = %v, want %v", got, pcnodev1.NodeChange_NODE_CHANGE_DRAIN)
	}
	if s, err := st.GetNodeState(ctx); err != nil || !s.Draining {
		t.Errorf("node state once SetDraining(true) returned = %+v, %v, want draining", s, err)
	}

	d2 := restartedDaemon(t, st)
	n, err := d2.NodeInfo(ctx)
	if err != nil || !n.GetDraining() {
		t.Fatalf("nodeInfo() after a restart of a draining node = draining %v, %v, want true", n.GetDraining(), err)
	}
	if err := d2.SetDraining(ctx, false); err != nil {
		t.Fatalf("SetDraining(false) = %v", err)
	}
	if s, err := st.GetNodeState(ctx); err != nil || s.Draining {
		t.Errorf("node state once SetDraining(false) returned = %+v, %v, want not draining", s, err)
	}
	if d3 := restartedDaemon(t, st); d3.admin.isDraining() {
		t.Error("a daemon started after SetDraining(false) is draining")
	}
}

// When the drain cannot be written, SetDraining fails and the node is as it
// was.
func TestDrainStoreFailure(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	d := restartedDaemon(t, st)
	st.Close()
	err := d.SetDraining(ctx, true)
	if !errors.Is(err, store.ErrClosed) {
		t.Fatalf("SetDraining(true) on a closed store = %v, want %v", err, store.ErrClosed)
	}
	if d.admin.isDraining() {
		t.Error("node is draining after a SetDraining that failed")
	}
}

// A GPU marked unhealthy before a restart is unhealthy, with its XID, from
// the start, and stays so after the monitor (whose source says every GPU
// is fine) starts; the other GPU becomes healthy; GPUS_KNOWN turns true
// only then. A mark of a GPU no longer present is kept, not shown.
func TestGPUMarksRestored(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	xidTime := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := st.PutGPUMark(ctx, gpuA, store.GPUMark{Kind: "xid", XID: 79, Time: xidTime, Message: "GPU has fallen off the bus"}); err != nil {
		t.Fatal(err)
	}
	const gone = "GPU-99999999-9999-9999-9999-999999999999"
	if err := st.PutGPUMark(ctx, gone, store.GPUMark{Kind: "double_bit_ecc", Time: xidTime}); err != nil {
		t.Fatal(err)
	}
	d := restartedDaemon(t, st)

	if diff := cmp.Diff(map[string]sched.Health{gpuA: sched.Unhealthy, gpuB: sched.Unknown}, gpuHealth(d)); diff != "" {
		t.Errorf("scheduler health before the monitor runs (-want +got):\n%s", diff)
	}
	n, err := d.NodeInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := gpusKnown(n); c == nil || c.GetOk() || c.GetMessage() == "" {
		t.Errorf("GPUS_KNOWN before the monitor runs = %v, want false with a reason", c)
	}
	// A GPU task is queued, not refused, and does not start yet.
	if err := d.sched.Enqueue(sched.Request{ID: "gpu-task", Requests: sched.Resources{MilliCPU: 100, GPUs: 1}}); err != nil {
		t.Fatalf("Enqueue(1 GPU) before the GPUs' health is known = %v, want queued", err)
	}
	if got := d.sched.Schedule(); len(got) != 0 {
		t.Fatalf("Schedule() before the GPUs' health is known = %v, want nothing", got)
	}

	startHealth(t, d)
	waitFor(t, "GPU B healthy in the scheduler", func() bool { return gpuHealth(d)[gpuB] == sched.Healthy })
	waitFor(t, "GPUS_KNOWN", func() bool {
		n, _ := d.NodeInfo(ctx)
		return gpusKnown(n).GetOk()
	})
	if got := gpuHealth(d)[gpuA]; got != sched.Unhealthy {
		t.Errorf("scheduler health of GPU A once the monitor runs = %v, want unhealthy", got)
	}
	got := d.sched.Schedule()
	if len(got) != 1 || got[0].ID != "gpu-task" || got[0].UUIDs()[0] != gpuB {
		t.Errorf("Schedule() once the GPUs' health is known = %v, want gpu-task on GPU B", got)
	}
	n, err = d.NodeInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(n.GetGpus()) != 2 {
		t.Fatalf("nodeInfo() GPUs = %v, want A and B only", n.GetGpus())
	}
	a := n.GetGpus()[0]
	if a.GetUuid() != gpuA || a.GetHealth() != pcnodev1.GpuHealth_GPU_HEALTH_UNHEALTHY || a.GetLastXid().GetCode() != 79 ||
		!a.GetLastXid().GetTime().AsTime().Equal(xidTime) {
		t.Errorf("GPU A after the restart = %v, want unhealthy with XID 79 at %s", a, xidTime)
	}
	if s, err := st.GetNodeState(ctx); err != nil || len(s.GPUMarks) != 2 {
		t.Errorf("node state after the restart = %+v, %v, want both marks kept", s, err)
	}

	// The operator clears A: the mark is gone before the answer.
	if _, err := d.ClearGPUHealth(ctx, gpuA); err != nil {
		t.Fatalf("ClearGPUHealth(A) = %v", err)
	}
	s, err := st.GetNodeState(ctx)
	if _, marked := s.GPUMarks[gpuA]; err != nil || marked {
		t.Errorf("node state after ClearGPUHealth(A) = %+v, %v, want A unmarked", s, err)
	}
	if d2 := restartedDaemon(t, st); gpuHealth(d2)[gpuA] != sched.Unknown {
		t.Errorf("GPU A after ClearGPUHealth and a restart = %v, want unknown until the monitor reports", gpuHealth(d2)[gpuA])
	}
}

// A critical event stores a mark; an application XID does not; a lost
// GPU's mark is restored as lost.
func TestGPUMarkKinds(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	d := restartedDaemon(t, st)
	startHealth(t, d)
	waitFor(t, "both GPUs healthy", func() bool { return gpuHealth(d)[gpuA] == sched.Healthy && gpuHealth(d)[gpuB] == sched.Healthy })
	when := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	d.gpus.monitor.Report(gpu.Event{UUID: gpuB, Kind: gpu.EventXID, XID: 13, Time: when})
	d.gpus.monitor.Report(gpu.Event{UUID: gpuA, Kind: gpu.EventDoubleBitECC, Time: when})
	waitFor(t, "GPU A's mark", func() bool {
		s, _ := st.GetNodeState(ctx)
		_, ok := s.GPUMarks[gpuA]
		return ok
	})
	s, _ := st.GetNodeState(ctx)
	if diff := cmp.Diff(map[string]store.GPUMark{gpuA: {Kind: "double_bit_ecc", Time: when, Message: s.GPUMarks[gpuA].Message}}, s.GPUMarks); diff != "" {
		t.Errorf("marks after an ECC error on A and application XID 13 on B (-want +got):\n%s", diff)
	}
	if err := st.PutGPUMark(ctx, gpuB, store.GPUMark{Kind: "lost", Time: when}); err != nil {
		t.Fatal(err)
	}
	d2 := restartedDaemon(t, st)
	if diff := cmp.Diff(map[string]sched.Health{gpuA: sched.Unhealthy, gpuB: sched.Unhealthy}, gpuHealth(d2)); diff != "" {
		t.Errorf("scheduler health after a restart with an ECC and a lost mark (-want +got):\n%s", diff)
	}

	// A mark of XID 13, an application XID of the monitor's configuration,
	// is not critical after the restart: removed, the GPU not unhealthy.
	if err := st.PutGPUMark(ctx, gpuB, store.GPUMark{Kind: "xid", XID: 13, Time: when}); err != nil {
		t.Fatal(err)
	}
	d3 := restartedDaemon(t, st)
	if got := gpuHealth(d3)[gpuB]; got == sched.Unhealthy {
		t.Errorf("GPU B after a restart with a mark of application XID 13 = %v, want not unhealthy", got)
	}
	if s, _ := st.GetNodeState(ctx); len(s.GPUMarks) != 1 {
		t.Errorf("marks after a restart with a mark of application XID 13 = %+v, want only A's", s.GPUMarks)
	}
}

func gpusKnown(n *pcnodev1.Node) *pcnodev1.NodeCondition {
	for _, c := range n.GetConditions() {
		if c.GetType() == pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_GPUS_KNOWN {
			return c
		}
	}
	return nil
}

// failingSource watches every GPU until fail receives, then fails.
type failingSource struct {
	health.StaticSource
	fail chan struct{}
}

func (s failingSource) Watch(ctx context.Context, _ []string, started func(map[string]error), _ func(gpu.Event)) error {
	started(nil)
	select {
	case <-ctx.Done():
		return nil
	case <-s.fail:
		return errors.New("event set lost")
	}
}

// GPUS_KNOWN follows the monitor: true once it reports, false (with the
// reason, and no GPU assignable) while its source is down, true again when
// it is back; each change is told to onKnown (which New points at node
// watchers, as NODE_CHANGE_CONDITION).
func TestGPUsKnownFollowsMonitor(t *testing.T) {
	ctx := context.Background()
	d := healthDaemon(t)
	src := failingSource{fail: make(chan struct{})}
	hc := health.DefaultConfig()
	hc.ReprobeInterval = 0
	hc.RestartInterval = 200 * time.Millisecond
	if err := d.gpus.newMonitor(src, hc); err != nil {
		t.Fatal(err)
	}
	var told atomic.Int32
	d.gpus.onKnown = func() { told.Add(1) }
	known := func() *pcnodev1.NodeCondition {
		n, err := d.NodeInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return gpusKnown(n)
	}
	if c := known(); c.GetOk() || c.GetMessage() == "" || c.GetSince() == nil {
		t.Errorf("GPUS_KNOWN before the monitor runs = %v, want false with a reason and a time", c)
	}
	startHealth(t, d)
	waitFor(t, "GPUS_KNOWN true", func() bool { return known().GetOk() })
	if c := known(); c.GetMessage() != "" || told.Load() != 1 {
		t.Errorf("GPUS_KNOWN once the monitor reported = %v, told %d times, want ok with no message, told once", c, told.Load())
	}
	src.fail <- struct{}{}
	waitFor(t, "GPUS_KNOWN false", func() bool { return !known().GetOk() })
	if c := known(); c.GetMessage() == "" {
		t.Errorf("GPUS_KNOWN while the source is down = %v, want a reason", c)
	}
	waitFor(t, "no GPU assignable while the source is down", func() bool {
		h := gpuHealth(d)
		return h[gpuA] != sched.Healthy && h[gpuB] != sched.Healthy
	})
	waitFor(t, "GPUS_KNOWN true again", func() bool { return known().GetOk() })
	if got := told.Load(); got != 3 {
		t.Errorf("onKnown told %d times, want 3 (true, false, true)", got)
	}
}
