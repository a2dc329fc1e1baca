package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/sched"
	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/cdi"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestSchedHealth(t *testing.T) {
	for _, tc := range []struct {
		in   gpu.Health
		want sched.Health
	}{
		{gpu.HealthUnknown, sched.Unknown},
		{gpu.HealthHealthy, sched.Healthy},
		{gpu.HealthUnhealthy, sched.Unhealthy},
		{gpu.Health(42), sched.Unknown},
		{gpu.Health(-1), sched.Unknown},
	} {
		if got := schedHealth(tc.in); got != tc.want {
			t.Errorf("schedHealth(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestAssignable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		noCDI map[string]bool
		uuid  string
		h     gpu.Health
		want  sched.Health
	}{
		{"no CDI map, healthy", nil, "GPU-a", gpu.HealthHealthy, sched.Healthy},
		{"no CDI map, unhealthy", nil, "GPU-a", gpu.HealthUnhealthy, sched.Unhealthy},
		{"no CDI map, unknown", nil, "GPU-a", gpu.HealthUnknown, sched.Unknown},
		{"without CDI device, healthy", map[string]bool{"GPU-a": true}, "GPU-a", gpu.HealthHealthy, sched.Unknown},
		{"without CDI device, unhealthy", map[string]bool{"GPU-a": true}, "GPU-a", gpu.HealthUnhealthy, sched.Unknown},
		{"another GPU lacks CDI", map[string]bool{"GPU-b": true}, "GPU-a", gpu.HealthHealthy, sched.Healthy},
		{"explicitly present", map[string]bool{"GPU-a": false}, "GPU-a", gpu.HealthHealthy, sched.Healthy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &gpuNode{noCDI: tc.noCDI}
			if got := g.assignable(tc.uuid, tc.h); got != tc.want {
				t.Errorf("assignable(%q, %v) = %v, want %v", tc.uuid, tc.h, got, tc.want)
			}
		})
	}
}

const (
	gpuA = "GPU-aaaaaaaa-0000-0000-0000-000000000000"
	gpuB = "GPU-bbbbbbbb-0000-0000-0000-000000000000"
)

// cdiDaemon is a Daemon with two healthy GPUs in its scheduler, no health
// monitor, and a CDI spec directory describing the GPUs named in described.
func cdiDaemon(t *testing.T, described ...string) (*Daemon, string) {
	t.Helper()
	specDir := filepath.Join(t.TempDir(), "cdi")
	writeCDI(t, specDir, described...)
	s, err := sched.New(sched.Config{
		Allocatable: sched.Resources{MilliCPU: 8000, MemoryBytes: 8 << 30},
		GPUs: []sched.GPU{
			{Index: 0, UUID: gpuA, NUMANode: -1, Health: sched.Healthy},
			{Index: 1, UUID: gpuB, NUMANode: -1, Health: sched.Healthy},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig()
	cfg.GPU.CDISpecDirs = []string{specDir}
	return &Daemon{
		cfg:   cfg,
		log:   slog.New(slog.DiscardHandler),
		sched: s,
		gpus:  &gpuNode{inv: gpu.NewNone(), uuids: []string{gpuA, gpuB}},
		node:  newNodeWatch(),
		wake:  make(chan struct{}, 1),
	}, specDir
}

// writeCDI writes (or replaces) the CDI spec in dir for the given GPUs,
// with fake device nodes.
func writeCDI(t *testing.T, dir string, uuids ...string) {
	t.Helper()
	if len(uuids) == 0 {
		return
	}
	dev := t.TempDir()
	var devs []gpu.Device
	for i, u := range uuids {
		minor := i
		devs = append(devs, gpu.Device{Index: i, UUID: u, Minor: &minor})
	}
	for _, n := range []string{"nvidiactl", "nvidia0", "nvidia1"} {
		if err := os.WriteFile(filepath.Join(dev, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cdi.WriteSpec(dir, devs, cdi.Options{DevRoot: dev}); err != nil {
		t.Fatal(err)
	}
}

func gpuHealth(d *Daemon) map[string]sched.Health {
	out := map[string]sched.Health{}
	for _, g := range d.sched.Snapshot().GPUs {
		out[g.UUID] = g.Health
	}
	return out
}

func TestCheckCDI(t *testing.T) {
	d, specDir := cdiDaemon(t, gpuA)
	w := d.node.subscribe()

	if err := d.checkCDI(0); err != nil {
		t.Errorf("checkCDI(0) = %v, want nil", err)
	}
	if d.gpus.noCDI != nil || len(pending(w)) != 0 {
		t.Errorf("checkCDI(0) looked at CDI specs: noCDI = %v", d.gpus.noCDI)
	}

	if err := d.checkCDI(1); err != nil {
		t.Errorf("checkCDI(1) with GPU A described = %v, want nil", err)
	}
	if diff := cmp.Diff(map[string]bool{gpuB: true}, d.gpus.noCDI); diff != "" {
		t.Errorf("noCDI after checkCDI(1) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]sched.Health{gpuA: sched.Healthy, gpuB: sched.Unknown}, gpuHealth(d)); diff != "" {
		t.Errorf("scheduler health after checkCDI(1) (-want +got):\n%s", diff)
	}
	if got, want := pending(w), []pcnodev1.NodeChange{pcnodev1.NodeChange_NODE_CHANGE_CAPACITY}; !cmp.Equal(got, want) {
		t.Errorf("node changes after checkCDI(1) = %v, want %v", got, want)
	}
	select {
	case <-d.wake:
	default:
		t.Error("checkCDI(1) changed assignability without kicking the scheduler")
	}

	err := d.checkCDI(2)
	if status.Code(toStatus(err)) != codes.FailedPrecondition || !strings.Contains(err.Error(), gpuB) ||
		strings.Contains(err.Error(), gpuA) || !strings.Contains(err.Error(), specDir) {
		t.Errorf("checkCDI(2) = %v, want FAILED_PRECONDITION naming %s and %s only", err, gpuB, specDir)
	}
	if got := pending(w); len(got) != 0 {
		t.Errorf("node changes after an unchanged checkCDI(2) = %v, want none", got)
	}

	if err := d.checkCDI(3); err != nil {
		t.Errorf("checkCDI(3) on a 2-GPU node = %v, want nil (the fit check refuses it)", err)
	}

	// A spec for both GPUs is picked up on the next check.
	writeCDI(t, specDir, gpuA, gpuB)
	if err := d.checkCDI(2); err != nil {
		t.Errorf("checkCDI(2) with both described = %v, want nil", err)
	}
	if diff := cmp.Diff(map[string]bool{}, d.gpus.noCDI, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("noCDI after both described (-want +got):\n%s", diff)
	}
	// Without a monitor, a GPU given back to the scheduler has unknown
	// health: never assigned blind.
	if got := gpuHealth(d)[gpuB]; got != sched.Unknown {
		t.Errorf("GPU B health after its CDI device appeared without a monitor = %v, want %v", got, sched.Unknown)
	}
	if got, want := pending(w), []pcnodev1.NodeChange{pcnodev1.NodeChange_NODE_CHANGE_CAPACITY}; !cmp.Equal(got, want) {
		t.Errorf("node changes after both described = %v, want %v", got, want)
	}
}

func TestCheckCDINoGPUs(t *testing.T) {
	d, _ := cdiDaemon(t)
	d.gpus.uuids = nil
	if err := d.checkCDI(1); err != nil {
		t.Errorf("checkCDI(1) on a node without GPUs = %v, want nil (the fit check refuses it)", err)
	}
}

func TestOpenGPUs(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	t.Run("none", func(t *testing.T) {
		g, err := openGPUs(ctx, config.GPU{Backend: "none"}, log)
		if err != nil {
			t.Fatalf("openGPUs(none) = %v", err)
		}
		defer g.inv.Close()
		if g.monitor != nil || len(g.uuids) != 0 || len(g.statuses()) != 0 {
			t.Errorf("openGPUs(none) = %+v, want no GPUs and no monitor", g)
		}
	})
	t.Run("static", func(t *testing.T) {
		cfg := config.GPU{Backend: "static", Static: []config.StaticGPU{
			{Index: 0, UUID: gpuA, Model: "Test GPU", Memory: config.MustQuantity("16Gi"), NUMANode: 1},
			{Index: 1, UUID: gpuB, Model: "Test GPU", Memory: config.MustQuantity("16Gi")},
		}}
		g, err := openGPUs(ctx, cfg, log)
		if err != nil {
			t.Fatalf("openGPUs(static) = %v", err)
		}
		defer g.inv.Close()
		if g.monitor == nil || !cmp.Equal(g.uuids, []string{gpuA, gpuB}) {
			t.Errorf("openGPUs(static) uuids = %q, monitor %v; want both GPUs and a monitor", g.uuids, g.monitor != nil)
		}
		devs, err := g.inv.Devices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := schedGPUs(devs, g.statuses())
		want := []sched.GPU{
			{Index: 0, UUID: gpuA, Model: "Test GPU", MemoryBytes: 16 << 30, NUMANode: 1, Health: sched.Unknown},
			{Index: 1, UUID: gpuB, Model: "Test GPU", MemoryBytes: 16 << 30, NUMANode: 0, Health: sched.Unknown},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("schedGPUs of the static inventory before monitoring (-want +got):\n%s", diff)
		}
	})
	for _, cfg := range []config.GPU{
		{Backend: "cuda"},
		{Backend: ""},
		{Backend: "static", Static: []config.StaticGPU{{UUID: "bad uuid"}}},
		{Backend: "static", Static: []config.StaticGPU{{Index: 0, UUID: gpuA}, {Index: 1, UUID: gpuA}}},
	} {
		if g, err := openGPUs(ctx, cfg, log); err == nil {
			g.inv.Close()
			t.Errorf("openGPUs(%+v) = nil error, want one", cfg)
		}
	}
}
