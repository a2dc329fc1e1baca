package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/sched"
	"github.com/pcnode/pcnode/gpu"
	"github.com/pcnode/pcnode/gpu/cdi"
	"github.com/pcnode/pcnode/gpu/health"
	"github.com/pcnode/pcnode/gpu/nvmlgpu"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// gpuNode is the node's GPUs: inventory, health monitor, process memory,
// and whether their health is known yet (the GPUS_KNOWN condition).
type gpuNode struct {
	mu sync.Mutex
	// noCDI are GPUs that no CDI spec describes: never assigned, whatever
	// their health, since a container could not be given them.
	noCDI map[string]bool

	// markMu orders the store writes of GPU marks (persistMark) with the
	// monitor's state, so that the last write matches the GPU's health.
	markMu sync.Mutex

	knownMu sync.Mutex
	known   condition // GPUS_KNOWN
	// onKnown is told when the GPUS_KNOWN condition changes; nil: nobody.
	// Set before the monitor runs.
	onKnown func()

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
			s := gpu.StaticGPU{Index: sg.Index, UUID: sg.UUID, Model: sg.Model, MemoryBytes: sg.Memory.Bytes(), NUMANode: &numa,
				UtilizationPercent: sg.UtilizationPercent, TemperatureCelsius: sg.TemperatureCelsius}
			if sg.MemoryUsed != nil {
				s.MemoryUsedBytes = new(sg.MemoryUsed.Bytes())
			}
			if sg.PowerDrawWatts != nil {
				s.PowerDrawMilliwatts = new(int64(*sg.PowerDrawWatts) * 1000)
			}
			gs = append(gs, s)
		}
		inv, err := gpu.NewStatic(gs, gpu.SystemInfo{})
		if err != nil {
			return nil, fmt.Errorf("gpu.static: %w", err)
		}
		g.inv, src = inv, testGPUSource(health.StaticSource{})
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
		// The GPUs that could not be read are not the node's: they are
		// neither assigned nor counted.
		log.Warn("GPU inventory incomplete", "err", err)
	}
	for _, d := range devs {
		g.uuids = append(g.uuids, d.UUID)
	}
	if len(g.uuids) == 0 || src == nil {
		// Nothing to wait for: no GPUs, or none whose health is watched
		// (they stay of unknown health and are never assigned).
		g.setKnown(true, "")
		return g, nil
	}
	hc := health.DefaultConfig()
	hc.AppXIDs = cfg.ApplicationXIDs
	hc.ReprobeInterval = cfg.ReprobeInterval.Duration
	hc.Logger = log.With("component", "gpu-health")
	if err := g.newMonitor(src, hc); err != nil {
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
		d.persistMark(ctx, c)
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
		return WithCode(codes.FailedPrecondition, fmt.Errorf("reading CDI specs in %s: %w", strings.Join(d.cfg.GPU.CDISpecDirs, ", "), err))
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
	return WithCode(codes.FailedPrecondition, errors.New(msg))
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

// condition is one node condition's state.
type condition struct {
	ok    bool
	msg   string
	since time.Time // when ok last changed; zero: never
}

// knownSource is the monitor's source, watched so that the daemon knows
// when every GPU's health has been judged: from the source's first report
// (started) until it stops. Before that no GPU is healthy, so no GPU task
// starts, and unhealthy marks restored from the store hold.
type knownSource struct {
	health.Source
	g *gpuNode
}

func (s knownSource) Watch(ctx context.Context, uuids []string, started func(map[string]error), emit func(gpu.Event)) error {
	err := s.Source.Watch(ctx, uuids, func(unwatched map[string]error) {
		started(unwatched)
		s.g.setKnown(true, "")
	}, emit)
	msg := "GPU health monitoring stopped"
	if err != nil {
		msg = fmt.Sprintf("GPU health monitoring is not running (%v); GPUs are of unknown health until it restarts", err)
	}
	s.g.setKnown(false, msg)
	return err
}

// newMonitor builds the health monitor of g's GPUs over src, watched by
// knownSource; GPUS_KNOWN is false until it first reports.
func (g *gpuNode) newMonitor(src health.Source, hc health.Config) error {
	m, err := health.New(knownSource{Source: src, g: g}, g.uuids, hc)
	if err != nil {
		return err
	}
	g.monitor = m
	g.known = condition{msg: "waiting for the GPU health monitor's first report"}
	return nil
}

// setKnown sets the GPUS_KNOWN condition and tells onKnown when it
// changed.
func (g *gpuNode) setKnown(ok bool, msg string) {
	g.knownMu.Lock()
	changed := g.known.ok != ok || g.known.msg != msg
	if g.known.ok != ok || g.known.since.IsZero() {
		g.known.since = time.Now()
	}
	g.known.ok, g.known.msg = ok, msg
	notify := g.onKnown
	g.knownMu.Unlock()
	if changed && notify != nil {
		notify()
	}
}

// knownCondition is the NODE_CONDITION_TYPE_GPUS_KNOWN condition: the GPU
// inventory has been read (in New) and the health monitor has judged every
// GPU and is watching. It is exactly when GPUs can be healthy, so while it
// is false no GPU task starts (the scheduler assigns healthy GPUs only).
// since is used when the condition never changed.
func (g *gpuNode) knownCondition(since time.Time) *pcnodev1.NodeCondition {
	g.knownMu.Lock()
	defer g.knownMu.Unlock()
	k := g.known
	if k.since.IsZero() {
		k.since = since
	}
	return &pcnodev1.NodeCondition{
		Type: pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_GPUS_KNOWN,
		Ok:   k.ok, Message: k.msg, Since: timestamppb.New(k.since),
	}
}

// Names of the events of a GPU mark in the store.
var markKinds = map[gpu.EventKind]string{
	gpu.EventXID:          "xid",
	gpu.EventDoubleBitECC: "double_bit_ecc",
	gpu.EventSingleBitECC: "single_bit_ecc",
	gpu.EventLost:         "lost",
}

// markEvent is the health event a stored mark records.
func markEvent(uuid string, m store.GPUMark) (gpu.Event, bool) {
	for k, name := range markKinds {
		if name == m.Kind {
			ev := gpu.Event{UUID: uuid, Kind: k, Time: m.Time}
			if k == gpu.EventXID {
				ev.XID = m.XID
			}
			return ev, true
		}
	}
	return gpu.Event{}, false
}

// restoreGPUMarks applies the unhealthy marks kept by the store to the
// monitor before it runs, as if their events arrived again: a GPU marked
// unhealthy before a restart is unhealthy, with its XID, from the first
// moment, whatever the driver says now, until ClearGpuHealth (or the
// monitor's re-probe, under the same rule as before the restart: the
// event is at least the recovery window old and the GPU answers). A mark
// of a GPU that is not in the inventory now is kept in the store, so it
// holds should the GPU come back, but is not shown; a mark of an XID that
// gpu.application_xids now names is removed.
func (d *Daemon) restoreGPUMarks(ctx context.Context, marks map[string]store.GPUMark) {
	present := map[string]bool{}
	for _, u := range d.gpus.uuids {
		present[u] = true
	}
	for _, uuid := range slices.Sorted(maps.Keys(marks)) {
		m := marks[uuid]
		ev, ok := markEvent(uuid, m)
		switch {
		case !ok:
			d.log.Warn("GPU mark of an unknown kind in the store; ignored", "gpu", uuid, "kind", m.Kind)
		case !present[uuid] || d.gpus.monitor == nil:
			d.log.Warn("GPU marked unhealthy before the restart is not in the inventory now; its mark is kept", "gpu", uuid, "kind", m.Kind, "xid", m.XID)
		default:
			d.gpus.monitor.Report(ev)
			if st, err := d.gpus.monitor.Status(uuid); err == nil && st.Health != gpu.HealthUnhealthy {
				// An XID that gpu.application_xids now names: not critical.
				d.log.Info("GPU mark from before the restart is no longer critical (gpu.application_xids); removed", "gpu", uuid, "kind", m.Kind, "xid", m.XID)
				if err := d.store.DeleteGPUMark(ctx, uuid); err != nil {
					d.log.Warn("removing GPU mark", "gpu", uuid, "err", err)
				}
				continue
			}
			d.log.Warn("GPU marked unhealthy before the restart stays unhealthy until cleared", "gpu", uuid, "kind", m.Kind, "xid", m.XID, "since", m.Time)
		}
	}
}

// persistMark writes the store's mark for the GPU of c: a critical event
// that made it unhealthy puts one; becoming healthy again (re-probe,
// clear) removes it. Both only while the monitor still says so, so a
// change that is already outdated writes nothing.
func (d *Daemon) persistMark(ctx context.Context, c gpu.Change) {
	g := d.gpus
	if g.monitor == nil {
		return
	}
	g.markMu.Lock()
	defer g.markMu.Unlock()
	uuid := c.Status.UUID
	now, err := g.monitor.Status(uuid)
	if err != nil {
		return
	}
	switch {
	case c.Cause != nil && c.Status.Health == gpu.HealthUnhealthy && now.Health == gpu.HealthUnhealthy:
		kind, ok := markKinds[c.Cause.Kind]
		if !ok {
			return
		}
		m := store.GPUMark{Kind: kind, Time: c.Cause.Time, Message: truncateUTF8(c.Status.Message, store.MaxGPUMarkMessageLen)}
		if c.Cause.Kind == gpu.EventXID {
			m.XID = c.Cause.XID
		}
		if err := d.store.PutGPUMark(ctx, uuid, m); err != nil {
			d.log.Error("storing GPU unhealthy mark; it is lost if the daemon restarts", "gpu", uuid, "err", err)
		}
	case c.Previous == gpu.HealthUnhealthy && c.Status.Health != gpu.HealthUnhealthy && now.Health != gpu.HealthUnhealthy:
		if err := d.store.DeleteGPUMark(ctx, uuid); err != nil {
			d.log.Error("removing GPU unhealthy mark; the GPU is unhealthy again after a restart", "gpu", uuid, "err", err)
		}
	}
}

// clearGPU is ClearGpuHealth's work: the monitor clears the GPU, and its
// mark is removed from the store before the caller is answered.
func (d *Daemon) clearGPU(ctx context.Context, uuid string) error {
	g := d.gpus
	g.markMu.Lock()
	defer g.markMu.Unlock()
	if err := g.monitor.Clear(uuid); err != nil {
		return err
	}
	if st, err := g.monitor.Status(uuid); err == nil && st.Health == gpu.HealthUnhealthy {
		return nil
	}
	if err := d.store.DeleteGPUMark(ctx, uuid); err != nil {
		return fmt.Errorf("GPU %s is healthy now, but its unhealthy mark stays in the store (it returns after a restart): %w", uuid, err)
	}
	return nil
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
