package nvmlgpu_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/gputest"
	"github.com/pcnode/pcnode/gpu/health"
	"github.com/pcnode/pcnode/gpu/nvmlgpu"
)

var _ health.Source = (*nvmlgpu.EventSource)(nil)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rig is a health monitor over an NVML mock, driven by a fake clock.
type rig struct {
	srv   *gputest.Server
	inv   *nvmlgpu.Inventory
	clock *gputest.FakeClock
	mon   *health.Monitor
	sub   <-chan gpu.Change
	stop  func()
	done  chan struct{}
}

func newRig(t *testing.T, srv *gputest.Server, tune func(*health.Config)) *rig {
	t.Helper()
	r := &rig{srv: srv, inv: open(t, srv, nvmlgpu.Options{}), clock: gputest.NewFakeClock(t0), done: make(chan struct{})}
	cfg := health.DefaultConfig()
	cfg.Clock = r.clock
	if tune != nil {
		tune(&cfg)
	}
	var err error
	r.mon, err = health.New(r.inv.EventSource(5*time.Millisecond), srv.UUIDs(), cfg)
	if err != nil {
		t.Fatalf("health.New = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.sub = r.mon.Subscribe(ctx)
	go func() {
		defer close(r.done)
		if err := r.mon.Run(ctx); err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	r.stop = func() { cancel(); <-r.done }
	t.Cleanup(r.stop)
	return r
}

// next returns the next change satisfying ok, failing after 10 s.
func (r *rig) next(t *testing.T, what string, ok func(gpu.Change) bool) gpu.Change {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case c := <-r.sub:
			if ok(c) {
				return c
			}
		case <-timeout:
			t.Fatalf("no change %s within 10s; statuses: %+v", what, r.mon.Statuses())
		}
	}
}

// started waits until all 8 GPUs are healthy.
func (r *rig) started(t *testing.T) {
	t.Helper()
	for range 8 {
		r.next(t, "to healthy", func(c gpu.Change) bool { return c.Status.Health == gpu.HealthHealthy })
	}
}

func health0f(t *testing.T, m *health.Monitor, uuid string) gpu.Status {
	t.Helper()
	s, err := m.Status(uuid)
	if err != nil {
		t.Fatalf("Status(%q) = %v", uuid, err)
	}
	return s
}

func TestHealthXID79MarksUnhealthy(t *testing.T) {
	r := newRig(t, gputest.NewDGXA100(), nil)
	r.started(t)
	if err := r.srv.InjectXID(3, 79); err != nil {
		t.Fatal(err)
	}
	c := r.next(t, "for GPU 3", func(c gpu.Change) bool { return c.Status.UUID == gputest.UUID(3) })
	if c.Previous != gpu.HealthHealthy || c.Status.Health != gpu.HealthUnhealthy {
		t.Errorf("change after XID 79 = %v -> %v, want healthy -> unhealthy", c.Previous, c.Status.Health)
	}
	if c.Status.LastXID == nil || c.Status.LastXID.Code != 79 || !c.Status.LastXID.Time.Equal(t0) ||
		c.Status.LastXID.Message != "XID 79: GPU has fallen off the bus" {
		t.Errorf("LastXID after XID 79 = %+v, want code 79 at %v with its description", c.Status.LastXID, t0)
	}
	if !strings.Contains(c.Status.Message, "XID 79") {
		t.Errorf("Message after XID 79 = %q, want it to name the XID", c.Status.Message)
	}
	for i, s := range r.mon.Statuses() {
		if want := map[bool]gpu.Health{true: gpu.HealthUnhealthy, false: gpu.HealthHealthy}[i == 3]; s.Health != want {
			t.Errorf("GPU %d health = %v, want %v", i, s.Health, want)
		}
	}
}

func TestHealthApplicationXIDKeepsHealthy(t *testing.T) {
	for _, xid := range gpu.DefaultAppXIDs {
		t.Run(gpu.XIDDescription(xid), func(t *testing.T) {
			r := newRig(t, gputest.NewDGXA100(), nil)
			r.started(t)
			if err := r.srv.InjectXID(1, uint64(xid)); err != nil {
				t.Fatal(err)
			}
			c := r.next(t, "for GPU 1", func(c gpu.Change) bool { return c.Status.UUID == gputest.UUID(1) })
			if c.Status.Health != gpu.HealthHealthy || c.Status.LastXID == nil || c.Status.LastXID.Code != xid {
				t.Errorf("after XID %d: health %v, last XID %+v; want healthy with the XID recorded", xid, c.Status.Health, c.Status.LastXID)
			}
		})
	}
}

func TestHealthECC(t *testing.T) {
	r := newRig(t, gputest.NewDGXA100(), nil)
	r.started(t)
	if err := r.srv.InjectECC(2, false); err != nil {
		t.Fatal(err)
	}
	if err := r.srv.InjectECC(4, true); err != nil {
		t.Fatal(err)
	}
	c := r.next(t, "after ECC events", func(gpu.Change) bool { return true })
	if c.Status.UUID != gputest.UUID(4) || c.Status.Health != gpu.HealthUnhealthy || !strings.Contains(c.Status.Message, "double-bit") {
		t.Errorf("first change after single-bit on GPU 2 and double-bit on GPU 4 = %+v, want GPU 4 unhealthy (double-bit)", c)
	}
	if s := health0f(t, r.mon, gputest.UUID(2)); s.Health != gpu.HealthHealthy {
		t.Errorf("GPU 2 after a single-bit ECC error = %v, want healthy", s.Health)
	}
}

func TestHealthRecoveryAfterReprobe(t *testing.T) {
	// Re-probes are called by hand here (the loop is off) so that each step
	// is observed; TestHealthPeriodicReprobe covers the loop.
	r := newRig(t, gputest.NewDGXA100(), func(c *health.Config) {
		c.ReprobeInterval = 0
		c.RecoveryWindow = 5 * time.Minute
	})
	r.started(t)
	uuid := gputest.UUID(6)
	if err := r.srv.InjectXID(6, 48); err != nil {
		t.Fatal(err)
	}
	r.next(t, "GPU 6 unhealthy", func(c gpu.Change) bool { return c.Status.UUID == uuid && c.Status.Health == gpu.HealthUnhealthy })
	probes := func() int {
		return len(r.srv.Devices[6].(interface{ GetMemoryInfoCalls() []struct{} }).GetMemoryInfoCalls())
	}

	// Within the window: the GPU is not even probed.
	r.clock.Advance(4 * time.Minute)
	before := probes()
	r.mon.Reprobe(context.Background())
	if s := health0f(t, r.mon, uuid); s.Health != gpu.HealthUnhealthy || probes() != before {
		t.Fatalf("GPU 6 4 minutes after XID 48 = %v after %d probes, want unhealthy and not probed", s.Health, probes()-before)
	}

	// Past the window but not responding: stays unhealthy, says why.
	r.srv.FailGPU(6, "GetMemoryInfo", nvml.ERROR_GPU_IS_LOST)
	r.clock.Advance(time.Minute)
	r.mon.Reprobe(context.Background())
	if s := health0f(t, r.mon, uuid); s.Health != gpu.HealthUnhealthy || !strings.Contains(s.Message, "re-probe") || !strings.Contains(s.Message, "XID 48") {
		t.Fatalf("GPU 6 after a failed re-probe = %v %q, want unhealthy naming XID 48 and the re-probe", s.Health, s.Message)
	}

	// Responding again and still quiet: healthy.
	r.srv.FailGPU(6, "GetMemoryInfo", nvml.SUCCESS)
	r.clock.Advance(time.Minute)
	r.mon.Reprobe(context.Background())
	c := r.next(t, "GPU 6 healthy", func(c gpu.Change) bool { return c.Status.UUID == uuid && c.Status.Health == gpu.HealthHealthy })
	if c.Status.Message != "" || c.Status.LastXID == nil || c.Status.LastXID.Code != 48 {
		t.Errorf("recovered status = %+v, want empty message and last XID 48 kept", c.Status)
	}
	if !c.Status.Since.Equal(t0.Add(6 * time.Minute)) {
		t.Errorf("Since = %v, want %v", c.Status.Since, t0.Add(6*time.Minute))
	}
}

func TestHealthPeriodicReprobe(t *testing.T) {
	r := newRig(t, gputest.NewDGXA100(), func(c *health.Config) {
		c.ReprobeInterval = time.Minute
		c.RecoveryWindow = 5 * time.Minute
	})
	r.started(t)
	uuid := gputest.UUID(2)
	if err := r.srv.InjectXID(2, 79); err != nil {
		t.Fatal(err)
	}
	r.next(t, "GPU 2 unhealthy", func(c gpu.Change) bool { return c.Status.UUID == uuid && c.Status.Health == gpu.HealthUnhealthy })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for minute := 1; minute <= 5; minute++ {
		if s := health0f(t, r.mon, uuid); s.Health != gpu.HealthUnhealthy {
			t.Fatalf("GPU 2 at minute %d = %v, want unhealthy until the 5-minute window has passed", minute-1, s.Health)
		}
		// The loop registers its next timer only after finishing a pass.
		if err := r.clock.WaitForWaiters(ctx, 1); err != nil {
			t.Fatalf("re-probe loop not waiting on the clock: %v", err)
		}
		r.clock.Advance(time.Minute)
	}
	c := r.next(t, "GPU 2 healthy", func(c gpu.Change) bool { return c.Status.UUID == uuid })
	if c.Status.Health != gpu.HealthHealthy || !c.Status.Since.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("GPU 2 after 5 quiet minutes = %v since %v, want healthy since %v", c.Status.Health, c.Status.Since, t0.Add(5*time.Minute))
	}
}

func TestHealthAdminClear(t *testing.T) {
	r := newRig(t, gputest.NewDGXA100(), func(c *health.Config) { c.ReprobeInterval = 0 })
	r.started(t)
	uuid := gputest.UUID(0)
	if err := r.srv.InjectXID(0, 79); err != nil {
		t.Fatal(err)
	}
	r.next(t, "GPU 0 unhealthy", func(c gpu.Change) bool { return c.Status.UUID == uuid && c.Status.Health == gpu.HealthUnhealthy })
	if err := r.mon.Clear(uuid); err != nil {
		t.Fatalf("Clear(%q) = %v", uuid, err)
	}
	r.next(t, "GPU 0 healthy", func(c gpu.Change) bool { return c.Status.UUID == uuid && c.Status.Health == gpu.HealthHealthy })
	if err := r.mon.Clear("GPU-nope"); !errors.Is(err, gpu.ErrUnknownGPU) {
		t.Errorf("Clear(unknown) = %v, want %v", err, gpu.ErrUnknownGPU)
	}
}

func TestHealthMonitorCannotStart(t *testing.T) {
	srv := gputest.NewDGXA100()
	srv.Fail("EventSetCreate", nvml.ERROR_NOT_SUPPORTED)
	r := newRig(t, srv, func(c *health.Config) { c.RestartInterval = time.Minute })

	for range 8 {
		c := r.next(t, "to unknown with a reason", func(c gpu.Change) bool { return strings.Contains(c.Status.Message, "not running") })
		if c.Status.Health != gpu.HealthUnknown {
			t.Fatalf("GPU %s health = %v when monitoring cannot start, want unknown", c.Status.UUID, c.Status.Health)
		}
	}
	for _, s := range r.mon.Statuses() {
		if s.Health != gpu.HealthUnknown {
			t.Errorf("GPU %s = %v, want unknown", s.UUID, s.Health)
		}
	}
	if err := r.mon.Clear(gputest.UUID(0)); !errors.Is(err, gpu.ErrNotMonitored) {
		t.Errorf("Clear while unmonitored = %v, want %v", err, gpu.ErrNotMonitored)
	}

	// The driver recovers: the next restart attempt watches the GPUs.
	srv.Fail("EventSetCreate", nvml.SUCCESS)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.clock.WaitForWaiters(ctx, 2); err != nil { // re-probe and restart timers
		t.Fatal(err)
	}
	r.clock.Advance(time.Minute)
	r.started(t)
}

func TestHealthOneGPUCannotRegister(t *testing.T) {
	srv := gputest.NewDGXA100()
	srv.FailGPU(5, "RegisterEvents", nvml.ERROR_UNKNOWN)
	srv.FailGPU(7, "DeviceGetHandleByUUID", nvml.ERROR_GPU_IS_LOST)
	r := newRig(t, srv, nil)
	seen := map[string]gpu.Health{}
	for len(seen) < 8 {
		c := r.next(t, "", func(gpu.Change) bool { return true })
		seen[c.Status.UUID] = c.Status.Health
	}
	for i := range 8 {
		want := gpu.HealthHealthy
		switch i {
		case 5:
			want = gpu.HealthUnknown
		case 7:
			want = gpu.HealthUnhealthy
		}
		if got := seen[gputest.UUID(i)]; got != want {
			t.Errorf("GPU %d = %v, want %v", i, got, want)
		}
	}
	if s := health0f(t, r.mon, gputest.UUID(5)); !strings.Contains(s.Message, "health events unavailable") {
		t.Errorf("GPU 5 message = %q, want it to say events are unavailable", s.Message)
	}
}

func TestHealthEventSetFailsWhileRunning(t *testing.T) {
	srv := gputest.NewDGXA100()
	r := newRig(t, srv, func(c *health.Config) { c.RestartInterval = time.Minute })
	r.started(t)
	if err := srv.InjectWaitError(nvml.ERROR_UNKNOWN); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		r.next(t, "to unknown", func(c gpu.Change) bool { return c.Status.Health == gpu.HealthUnknown })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.clock.WaitForWaiters(ctx, 2); err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(time.Minute)
	r.started(t)
	if n := srv.LiveEventSets(); n != 1 {
		t.Errorf("live event sets after restart = %d, want 1 (the failed one freed)", n)
	}
}

func TestHealthEventWithoutDevice(t *testing.T) {
	srv := gputest.NewDGXA100()
	r := newRig(t, srv, nil)
	r.started(t)
	if err := srv.Inject(-1, nvml.EventTypeXidCriticalError, 79); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		r.next(t, "to unhealthy", func(c gpu.Change) bool { return c.Status.Health == gpu.HealthUnhealthy })
	}
}

func TestHealthStopFreesEventSetAndForgetsHealthy(t *testing.T) {
	srv := gputest.NewDGXA100()
	r := newRig(t, srv, nil)
	r.started(t)
	r.stop()
	if n := srv.LiveEventSets(); n != 0 {
		t.Errorf("live event sets after Run returned = %d, want 0", n)
	}
	for _, s := range r.mon.Statuses() {
		if s.Health != gpu.HealthUnknown {
			t.Errorf("GPU %s after Run returned = %v, want unknown", s.UUID, s.Health)
		}
	}
}
