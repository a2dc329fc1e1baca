package daemon

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/daemon/sched"
	"github.com/pcnode/pcnode/gpu"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// pending returns what is waiting in c, without blocking.
func pending(c chan pcnodev1.NodeChange) []pcnodev1.NodeChange {
	var out []pcnodev1.NodeChange
	for {
		select {
		case why := <-c:
			out = append(out, why)
		default:
			return out
		}
	}
}

func TestNodeWatch(t *testing.T) {
	w := newNodeWatch()
	w.changed(pcnodev1.NodeChange_NODE_CHANGE_DRAIN) // nobody listens: nothing blocks
	a, b := w.subscribe(), w.subscribe()

	w.changed(pcnodev1.NodeChange_NODE_CHANGE_GPU_HEALTH)
	for name, c := range map[string]chan pcnodev1.NodeChange{"a": a, "b": b} {
		if got, want := pending(c), []pcnodev1.NodeChange{pcnodev1.NodeChange_NODE_CHANGE_GPU_HEALTH}; !cmp.Equal(got, want) {
			t.Errorf("watcher %s after one change got %v, want %v", name, got, want)
		}
	}

	// Many changes while a watcher is busy leave one notification, and
	// changed never waits for the watcher.
	done := make(chan struct{})
	go func() {
		for range 100 {
			w.changed(pcnodev1.NodeChange_NODE_CHANGE_ALLOCATION)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("changed blocked on a busy watcher")
	}
	if got := pending(a); len(got) != 1 {
		t.Errorf("watcher after 100 changes got %v, want one coalesced notification", got)
	}

	pending(b)
	w.unsubscribe(b)
	w.unsubscribe(b) // harmless
	w.changed(pcnodev1.NodeChange_NODE_CHANGE_CAPACITY)
	if got := pending(b); len(got) != 0 {
		t.Errorf("unsubscribed watcher got %v, want nothing", got)
	}
	if got := pending(a); len(got) != 1 {
		t.Errorf("remaining watcher got %v, want one notification", got)
	}
}

// nodeWatch's doc says "Changes are coalesced: a watcher learns the latest
// reason". A watcher that has not read since two changes should therefore
// learn the second.
func TestNodeWatchCoalescesToLatest(t *testing.T) {
	w := newNodeWatch()
	c := w.subscribe()
	w.changed(pcnodev1.NodeChange_NODE_CHANGE_GPU_HEALTH)
	w.changed(pcnodev1.NodeChange_NODE_CHANGE_DRAIN)
	want := []pcnodev1.NodeChange{pcnodev1.NodeChange_NODE_CHANGE_DRAIN}
	if got := pending(c); !cmp.Equal(got, want) {
		t.Errorf("after changed(GPU_HEALTH), changed(DRAIN) the watcher got %v, want %v (the latest reason)", got, want)
	}
}

func TestNodeWatchConcurrent(t *testing.T) {
	w := newNodeWatch()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := w.subscribe()
				w.changed(pcnodev1.NodeChange_NODE_CHANGE_ALLOCATION)
				pending(c)
				w.unsubscribe(c)
			}
		}()
	}
	for range 1000 {
		w.changed(pcnodev1.NodeChange_NODE_CHANGE_HEARTBEAT)
	}
	close(stop)
	wg.Wait()
	if n := len(w.subs); n != 0 {
		t.Errorf("nodeWatch has %d subscribers left, want 0", n)
	}
}

func TestSchedGPUs(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	ip := func(v int) *int { return &v }
	devs := []gpu.Device{
		{Index: 0, UUID: "GPU-a", Model: "NVIDIA A100-SXM4-40GB", MemoryTotalBytes: i64(40 << 30), NUMANode: ip(0)},
		{Index: 1, UUID: "GPU-b", Model: "NVIDIA A100-SXM4-40GB", MemoryTotalBytes: i64(40 << 30), NUMANode: ip(1)},
		{Index: 2, UUID: "GPU-c", Model: "Tesla T4"},                          // memory and NUMA unknown
		{Index: 3, UUID: "GPU-d", Model: "Tesla T4", MemoryUsedBytes: i64(1)}, // not monitored
	}
	health := map[string]gpu.Status{
		"GPU-a": {UUID: "GPU-a", Health: gpu.HealthHealthy},
		"GPU-b": {UUID: "GPU-b", Health: gpu.HealthUnhealthy},
		"GPU-c": {UUID: "GPU-c", Health: gpu.HealthUnknown},
		"GPU-x": {UUID: "GPU-x", Health: gpu.HealthHealthy}, // not in the inventory: ignored
	}
	want := []sched.GPU{
		{Index: 0, UUID: "GPU-a", Model: "NVIDIA A100-SXM4-40GB", MemoryBytes: 40 << 30, NUMANode: 0, Health: sched.Healthy},
		{Index: 1, UUID: "GPU-b", Model: "NVIDIA A100-SXM4-40GB", MemoryBytes: 40 << 30, NUMANode: 1, Health: sched.Unhealthy},
		{Index: 2, UUID: "GPU-c", Model: "Tesla T4", MemoryBytes: 0, NUMANode: -1, Health: sched.Unknown},
		{Index: 3, UUID: "GPU-d", Model: "Tesla T4", MemoryBytes: 0, NUMANode: -1, Health: sched.Unknown},
	}
	if diff := cmp.Diff(want, schedGPUs(devs, health)); diff != "" {
		t.Errorf("schedGPUs (-want +got):\n%s", diff)
	}
	if got := schedGPUs(devs, nil); len(got) != 4 || got[0].Health != sched.Unknown {
		t.Errorf("schedGPUs(devs, nil) = %+v, want 4 GPUs of unknown health", got)
	}
	if got := schedGPUs(nil, health); got == nil || len(got) != 0 {
		t.Errorf("schedGPUs(nil) = %#v, want an empty, non-nil slice", got)
	}
	// The scheduler accepts the result.
	if _, err := sched.New(sched.Config{GPUs: schedGPUs(devs, health)}); err != nil {
		t.Errorf("sched.New(schedGPUs(...)) = %v", err)
	}
}
