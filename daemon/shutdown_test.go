package daemon

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/health"
)

// closeOrderInventory is a one-GPU inventory that records every use after
// its Close, as NVML would fail (or crash) on a call after its shutdown.
type closeOrderInventory struct {
	mu             sync.Mutex
	closed         bool
	usedAfterClose []string
}

func (i *closeOrderInventory) use(what string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		i.usedAfterClose = append(i.usedAfterClose, what)
	}
}

func (i *closeOrderInventory) Backend() string        { return gpu.BackendStatic }
func (i *closeOrderInventory) System() gpu.SystemInfo { return gpu.SystemInfo{} }
func (i *closeOrderInventory) Devices(context.Context) ([]gpu.Device, error) {
	i.use("Devices")
	return []gpu.Device{{Index: 0, UUID: gpuA}}, nil
}

func (i *closeOrderInventory) Close() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.closed = true
	return nil
}

// slowStopSource is a health source over the inventory that, like NVML's
// event wait, notices the end of its context only after a while and then
// still calls the driver once.
type slowStopSource struct {
	inv      *closeOrderInventory
	watched  chan struct{} // closed once it watches
	returned chan struct{} // closed when Watch returns
}

func (s *slowStopSource) Watch(ctx context.Context, _ []string, started func(map[string]error), _ func(gpu.Event)) error {
	defer close(s.returned)
	started(nil)
	close(s.watched)
	<-ctx.Done()
	time.Sleep(100 * time.Millisecond) // the event wait in progress
	s.inv.use("Watch")
	return nil
}

func (s *slowStopSource) Probe(context.Context, string) error {
	s.inv.use("Probe")
	return nil
}

// TestCloseStopsHealthMonitorBeforeInventory: Close returns only after the
// health monitor and its source stopped, and closes the inventory after
// them, never before.
func TestCloseStopsHealthMonitorBeforeInventory(t *testing.T) {
	inv := &closeOrderInventory{}
	src := &slowStopSource{inv: inv, watched: make(chan struct{}), returned: make(chan struct{})}
	hc := health.DefaultConfig()
	hc.ReprobeInterval = time.Millisecond // re-probes keep calling the inventory until the end
	mon, err := health.New(src, []string{gpuA}, hc)
	if err != nil {
		t.Fatal(err)
	}
	d := cancelDaemon(t, nil)
	d.gpus = &gpuNode{inv: inv, monitor: mon, uuids: []string{gpuA}}
	// As Start runs it.
	var ctx context.Context
	ctx, d.cancel = context.WithCancel(context.Background())
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.watchGPUHealth(ctx) }()
	select {
	case <-src.watched:
	case <-time.After(10 * time.Second):
		t.Fatal("the health monitor did not start its source")
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	select {
	case <-src.returned:
	default:
		t.Error("Close returned while the health source was still watching")
		<-src.returned // then see what it did after the inventory closed
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if !inv.closed {
		t.Error("Close did not close the GPU inventory")
	}
	if len(inv.usedAfterClose) > 0 {
		t.Errorf("the inventory was used after Close closed it, by %v: the health monitor was still running", inv.usedAfterClose)
	}
}
