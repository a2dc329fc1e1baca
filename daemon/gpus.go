package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/sched"
	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/cdi"
	"github.com/pcnode/pcnode/gpu/health"
	"github.com/pcnode/pcnode/gpu/nvmlgpu"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// gpuNode is the node's GPUs: inventory, health monitor, process memory.
type gpuNode struct {
	mu sync.Mutex
	// noCDI are GPUs that no CDI spec describes: never assigned, whatever
	// their health, since a container could not be given them.
	noCDI map[string]bool

	inv     gpu.Inventory
	monitor *health.Monitor // nil without GPUs
	uuids   []string
	// procMem samples GPU memory by process; nil when the backend cannot.
	procMem func(ctx context.Context, uuids []string, pids []int) (gpu.ProcessMemory, error)
}

// openGPUs builds the configured GPU inventory and its health monitor.
// "auto" uses NVML when a driver loads and reports no GPUs otherwise.
func openGPUs(ctx context.Context, cfg config.GPU, log *slog.Logger) (*gpuNode, error) {
	g := &gpuNode{}
	var src health.Source
	switch cfg.Backend {
	case "none":
		g.inv = gpu.NewNone()
	case "static":
		var gs []gpu.StaticGPU
		for _, sg := range cfg.Static {
			numa := sg.NUMANode
			gs = append(gs, gpu.StaticGPU{Index: sg.Index, UUID: sg.UUID, Model: sg.Model, MemoryBytes: sg.Memory.Bytes(), NUMANode: &numa})
		}
		inv, err := gpu.NewStatic(gs, gpu.SystemInfo{})
		if err != nil {
			return nil, fmt.Errorf("gpu.static: %w", err)
		}
		g.inv, src = inv, health.StaticSource{}
	case "nvml", "auto":
		inv, err := nvmlgpu.Open(ctx, nvmlgpu.Options{Logger: log.With("component", "nvml")})
		if err != nil {
			if cfg.Backend == "nvml" {
				return nil, fmt.Errorf("gpu.backend nvml: %w", err)
			}
			log.Info("no NVIDIA driver found; this node advertises no GPUs (gpu.backend = auto)", "reason", err)
			g.inv = gpu.NewNone()
			break
		}
		g.inv, src, g.procMem = inv, inv.EventSource(5*time.Second), inv.ProcessMemory
	default:
		return nil, fmt.Errorf("gpu.backend %q is not known", cfg.Backend)
	}
	devs, err := g.inv.Devices(ctx)
	if err != nil {
		log.Warn("GPU inventory incomplete", "err", err)
	}
	for _, d := range devs {
		g.uuids = append(g.uuids, d.UUID)
	}
	if len(g.uuids) == 0 || src == nil {
		return g, nil
	}
	hc := health.DefaultConfig()
	hc.AppXIDs = cfg.ApplicationXIDs
	hc.ReprobeInterval = cfg.ReprobeInterval.Duration
	hc.Logger = log.With("component", "gpu-health")
	if g.monitor, err = health.New(src, g.uuids, hc); err != nil {
		g.inv.Close()
		return nil, fmt.Errorf("GPU health monitor: %w", err)
	}
	return g, nil
}

func (g *gpuNode) statuses() map[string]gpu.Status {
	out := map[string]gpu.Status{}
	if g.monitor != nil {
		for _, s := range g.monitor.Statuses() {
			out[s.UUID] = s
		}
	}
	return out
}

// assignable is the health the scheduler should see for a GPU: its
// monitored health, or Unknown when no CDI spec describes it.
func (g *gpuNode) assignable(uuid string, h gpu.Health) sched.Health {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.noCDI[uuid] {
		return sched.Unknown
	}
	return schedHealth(h)
}

// schedHealth maps a GPU's health for the scheduler.
func schedHealth(h gpu.Health) sched.Health {
	switch h {
	case gpu.HealthHealthy:
		return sched.Healthy
	case gpu.HealthUnhealthy:
		return sched.Unhealthy
	}
	return sched.Unknown
}

// watchGPUHealth runs the health monitor and applies its changes: the
// scheduler stops (or starts again) assigning the GPU, a task holding a
// failed GPU gets the fault recorded, and node watchers hear of it.
func (d *Daemon) watchGPUHealth(ctx context.Context) {
	m := d.gpus.monitor
	if m == nil {
		return
	}
	changes := m.Subscribe(ctx)
	// The monitor's source calls into the inventory (NVML): it must have
	// returned before Close closes the inventory, so this waits for it.
	ran := make(chan struct{})
	defer func() { <-ran }()
	go func() {
		defer close(ran)
		if err := m.Run(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("GPU health monitor stopped; GPUs report unknown health", "err", err)
		}
	}()
	for c := range changes {
		ch := c.Status
		holder, err := d.sched.SetGPUHealth(ch.UUID, d.gpus.assignable(ch.UUID, ch.Health))
		if err != nil {
			d.log.Warn("GPU health change for a GPU the scheduler does not know", "gpu", ch.UUID, "err", err)
			continue
		}
		d.log.Info("GPU health changed", "gpu", ch.UUID, "from", c.Previous.String(), "to", ch.Health.String(), "msg", ch.Message)
		if holder != "" && c.Cause != nil {
			// One fault per critical event, from the event itself.
			fault := &pcnodev1.GpuFault{Uuid: ch.UUID, Message: ch.Message, Time: timestamppb.New(c.Cause.Time)}
			if c.Cause.Kind == gpu.EventXID {
				fault.Xid = int32(c.Cause.XID)
			}
			if _, err := d.update(ctx, holder, func(t *pcnodev1.Task) { t.GpuFaults = append(t.GpuFaults, fault) }); err != nil {
				d.log.Warn("recording GPU fault on task", "task", holder, "err", err)
			}
		}
		d.node.changed(pcnodev1.NodeChange_NODE_CHANGE_GPU_HEALTH)
		d.kick()
	}
}

// checkCDI refuses a GPU task on a node whose CDI specs do not describe
// enough of its GPUs: starting it would run it blind.
func (d *Daemon) checkCDI(gpus int) error {
	if gpus == 0 || len(d.gpus.uuids) == 0 {
		return nil
	}
	av, err := cdi.Available(d.cfg.GPU.CDISpecDirs, d.gpus.uuids)
	if err != nil {
		return withCode(codes.FailedPrecondition, fmt.Errorf("reading CDI specs in %s: %w", strings.Join(d.cfg.GPU.CDISpecDirs, ", "), err))
	}
	d.setCDIMissing(av.Missing)
	if len(av.Present) >= gpus || gpus > len(d.gpus.uuids) {
		return nil // enough, or never enough whatever the specs: the fit check says so with numbers
	}
	msg := fmt.Sprintf("this node has CDI devices for %d of its GPUs, the task needs %d: no CDI device nvidia.com/gpu=<uuid> for %s in %s; generate specs (e.g. `nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`)",
		len(av.Present), gpus, strings.Join(av.Missing, ", "), strings.Join(d.cfg.GPU.CDISpecDirs, ", "))
	if len(av.SpecErrors) > 0 {
		msg += "; spec problems: " + strings.Join(av.SpecErrors, "; ")
	}
	return withCode(codes.FailedPrecondition, errors.New(msg))
}

// setCDIMissing records which GPUs lack a CDI device and tells the
// scheduler of every GPU whose assignability changed.
func (d *Daemon) setCDIMissing(missing []string) {
	g := d.gpus
	now := map[string]bool{}
	for _, u := range missing {
		now[u] = true
	}
	g.mu.Lock()
	var changed []string
	for _, u := range g.uuids {
		if now[u] != g.noCDI[u] {
			changed = append(changed, u)
		}
	}
	g.noCDI = now
	g.mu.Unlock()
	statuses := g.statuses()
	for _, u := range changed {
		if now[u] {
			d.log.Warn("GPU has no CDI device; it is not assigned until one is generated", "gpu", u)
		}
		d.sched.SetGPUHealth(u, g.assignable(u, statuses[u].Health))
	}
	if len(changed) > 0 {
		d.node.changed(pcnodev1.NodeChange_NODE_CHANGE_CAPACITY)
		d.kick()
	}
}

func (s *nodeService) ClearGpuHealth(ctx context.Context, req *pcnodev1.ClearGpuHealthRequest) (*pcnodev1.ClearGpuHealthResponse, error) {
	if err := gpu.ValidateUUID(req.GetUuid()); err != nil {
		var p problems
		p.add("uuid", "%v", err)
		return nil, invalid(p)
	}
	m := s.d.gpus.monitor
	if m == nil {
		return nil, withCode(codes.NotFound, fmt.Errorf("GPU %s: this node has no monitored GPUs", req.GetUuid()))
	}
	if err := m.Clear(req.GetUuid()); err != nil {
		switch {
		case errors.Is(err, gpu.ErrUnknownGPU):
			return nil, withCode(codes.NotFound, err)
		case errors.Is(err, gpu.ErrNotMonitored):
			return nil, withCode(codes.FailedPrecondition, err)
		}
		return nil, err
	}
	// Apply at once rather than waiting for the change to arrive.
	if st, err := m.Status(req.GetUuid()); err == nil {
		s.d.sched.SetGPUHealth(st.UUID, s.d.gpus.assignable(st.UUID, st.Health))
		s.d.kick()
	}
	n, err := s.d.nodeInfo(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range n.GetGpus() {
		if g.GetUuid() == req.GetUuid() {
			return &pcnodev1.ClearGpuHealthResponse{Gpu: g}, nil
		}
	}
	return nil, withCode(codes.NotFound, fmt.Errorf("GPU %s is not in the inventory", req.GetUuid()))
}
