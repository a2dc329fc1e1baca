package daemon

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/sched"
	"github.com/pcnode/pcnode/gpu"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// nodeWatch tells WatchNode streams that something changed. Changes are
// coalesced: a watcher learns the latest reason and reads the node afresh.
type nodeWatch struct {
	mu   sync.Mutex
	subs map[chan pcnodev1.NodeChange]struct{}
}

func newNodeWatch() *nodeWatch { return &nodeWatch{subs: map[chan pcnodev1.NodeChange]struct{}{}} }

func (w *nodeWatch) subscribe() chan pcnodev1.NodeChange {
	c := make(chan pcnodev1.NodeChange, 1)
	w.mu.Lock()
	w.subs[c] = struct{}{}
	w.mu.Unlock()
	return c
}

func (w *nodeWatch) unsubscribe(c chan pcnodev1.NodeChange) {
	w.mu.Lock()
	delete(w.subs, c)
	w.mu.Unlock()
}

func (w *nodeWatch) changed(why pcnodev1.NodeChange) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for c := range w.subs {
		select { // keep only the latest reason, but never drop a condition change
		case prev := <-c:
			if prev == pcnodev1.NodeChange_NODE_CHANGE_CONDITION {
				c <- prev // the node is read afresh: the other change shows too
				continue
			}
		default:
		}
		c <- why
	}
}

// nodeConditions holds GetNode's conditions, one per NodeConditionType,
// all present from the start (ok, since the daemon's start, until set).
type nodeConditions struct {
	mu sync.Mutex
	m  map[pcnodev1.NodeConditionType]*pcnodev1.NodeCondition
}

// conditionTypes are the condition types, in the order GetNode lists them.
var conditionTypes = []pcnodev1.NodeConditionType{
	pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_CONTAINERD_READY,
	pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_GPUS_KNOWN,
}

func newNodeConditions(start time.Time) *nodeConditions {
	c := &nodeConditions{m: map[pcnodev1.NodeConditionType]*pcnodev1.NodeCondition{}}
	for _, typ := range conditionTypes {
		c.m[typ] = &pcnodev1.NodeCondition{Type: typ, Ok: true, Since: timestamppb.New(start)}
	}
	return c
}

// set sets a condition; since is when ok last changed. It reports whether
// ok or the message changed.
func (c *nodeConditions) set(typ pcnodev1.NodeConditionType, ok bool, message string, since time.Time) bool {
	if ok {
		message = ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m[typ]
	if old != nil && old.GetOk() == ok && old.GetMessage() == message {
		return false
	}
	if old != nil && old.GetOk() == ok {
		since = old.GetSince().AsTime() // only the message changed
	}
	c.m[typ] = &pcnodev1.NodeCondition{Type: typ, Ok: ok, Message: message, Since: timestamppb.New(since)}
	return true
}

// list returns copies of the conditions in conditionTypes order.
func (c *nodeConditions) list() []*pcnodev1.NodeCondition {
	if c == nil { // a Daemon built by a unit test without conditions
		c = newNodeConditions(time.Time{})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*pcnodev1.NodeCondition, 0, len(conditionTypes))
	for _, typ := range conditionTypes {
		if x := c.m[typ]; x != nil {
			out = append(out, &pcnodev1.NodeCondition{Type: x.GetType(), Ok: x.GetOk(), Message: x.GetMessage(), Since: x.GetSince()})
		}
	}
	return out
}

// containerdMessage is the CONTAINERD_READY condition's message for the
// error that found containerd unreachable ("" for none).
func containerdMessage(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// schedGPUs converts the inventory for the scheduler. Static GPUs are
// healthy by declaration; others take their monitored health.
func schedGPUs(devs []gpu.Device, health map[string]gpu.Status) []sched.GPU {
	// Without a monitor (no GPUs, or a backend without health) every GPU
	// stays Unknown and is never assigned.
	out := make([]sched.GPU, 0, len(devs))
	for _, d := range devs {
		g := sched.GPU{Index: d.Index, UUID: d.UUID, Model: d.Model, NUMANode: -1, Health: schedHealth(health[d.UUID].Health)}
		if d.MemoryTotalBytes != nil {
			g.MemoryBytes = *d.MemoryTotalBytes
		}
		if d.NUMANode != nil {
			g.NUMANode = *d.NUMANode
		}
		out = append(out, g)
	}
	return out
}

// nodeInfo assembles the Node message.
func (d *Daemon) nodeInfo(ctx context.Context) (*pcnodev1.Node, error) {
	name := d.cfg.Node.Name
	if name == "" {
		name, _ = os.Hostname()
	}
	n := &pcnodev1.Node{
		Name:       name,
		Labels:     d.cfg.Node.Labels,
		Version:    Version,
		GpuBackend: d.gpus.inv.Backend(),
		Draining:   d.draining.Load(),
		StartTime:  timestamppb.New(d.startTime),
	}
	// The version of containerd's last answer to the health monitor: no
	// call to containerd, so GetNode answers at once while it is down.
	_, _, _, v := d.ctrd.state()
	n.ContainerdVersion = v.Version
	n.Conditions = d.conds.list()
	for i, c := range n.Conditions {
		if c.GetType() == pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_GPUS_KNOWN {
			n.Conditions[i] = d.gpus.knownCondition(d.startTime) // gpus.go keeps it
		}
	}
	sys := d.gpus.inv.System()
	n.DriverVersion, n.CudaVersion = sys.DriverVersion, sys.CUDAVersion
	snap := d.sched.Snapshot()
	healthy := 0
	for _, g := range snap.GPUs {
		if g.Health == sched.Healthy {
			healthy++
		}
	}
	n.Capacity = resourcesToProto(sched.Resources{MilliCPU: d.capacity.MilliCPU, MemoryBytes: d.capacity.MemoryBytes, GPUs: healthy})
	n.Allocatable = resourcesToProto(sched.Resources{MilliCPU: snap.Allocatable.MilliCPU, MemoryBytes: snap.Allocatable.MemoryBytes, GPUs: healthy})
	n.Allocated = resourcesToProto(snap.Allocated)
	n.QueuedTasks, n.RunningTasks = int32(snap.Queued), int32(snap.Running)
	devs, err := d.gpus.inv.Devices(ctx)
	if err != nil {
		d.log.Warn("GPU inventory", "err", err)
	}
	statuses := d.gpus.statuses()
	for _, dv := range devs {
		g := &pcnodev1.Gpu{
			Index: int32(dv.Index), Uuid: dv.UUID, Model: dv.Model, PciBusId: dv.PCIBusID,
			ComputeCapability: dv.ComputeCapability, MigEnabled: dv.MIGEnabled,
			MemoryTotalBytes: dv.MemoryTotalBytes, MemoryUsedBytes: dv.MemoryUsedBytes,
			PowerDrawMilliwatts: dv.PowerDrawMilliwatts, PowerLimitMilliwatts: dv.PowerLimitMilliwatts,
			EccSingleBitErrors: dv.ECCSingleBitErrors, EccDoubleBitErrors: dv.ECCDoubleBitErrors,
			HolderTaskId: snap.GPUHolders[dv.UUID],
		}
		if dv.NUMANode != nil {
			v := int32(*dv.NUMANode)
			g.NumaNode = &v
		}
		if dv.TemperatureCelsius != nil {
			v := int32(*dv.TemperatureCelsius)
			g.TemperatureCelsius = &v
		}
		if dv.UtilizationPercent != nil {
			v := int32(*dv.UtilizationPercent)
			g.UtilizationPercent = &v
		}
		st, ok := statuses[dv.UUID]
		switch {
		case !ok:
			g.HealthMessage = "health is not monitored by this backend"
		case st.Health == gpu.HealthHealthy:
			g.Health = pcnodev1.GpuHealth_GPU_HEALTH_HEALTHY
		case st.Health == gpu.HealthUnhealthy:
			g.Health = pcnodev1.GpuHealth_GPU_HEALTH_UNHEALTHY
		}
		if ok {
			if g.HealthMessage == "" {
				g.HealthMessage = st.Message
			}
			if x := st.LastXID; x != nil {
				g.LastXid = &pcnodev1.Xid{Code: int32(x.Code), Time: timestamppb.New(x.Time), Message: x.Message}
			}
		}
		n.Gpus = append(n.Gpus, g)
	}
	return n, nil
}

type nodeService struct {
	pcnodev1.UnimplementedNodeServiceServer
	d *Daemon
}

func (s *nodeService) GetNode(ctx context.Context, _ *pcnodev1.GetNodeRequest) (*pcnodev1.GetNodeResponse, error) {
	n, err := s.d.nodeInfo(ctx)
	if err != nil {
		return nil, err
	}
	return &pcnodev1.GetNodeResponse{Node: n}, nil
}

func (s *nodeService) WatchNode(req *pcnodev1.WatchNodeRequest, stream pcnodev1.NodeService_WatchNodeServer) error {
	interval := 30 * time.Second
	if hb := req.GetHeartbeatInterval(); hb != nil {
		if err := hb.CheckValid(); err != nil || hb.AsDuration() < 0 {
			var p problems
			p.add("heartbeat_interval", "must be a non-negative duration")
			return invalid(p)
		}
		if hb.AsDuration() > 0 {
			interval = max(hb.AsDuration(), time.Second)
		}
	}
	ctx := stream.Context()
	changes := s.d.node.subscribe()
	defer s.d.node.unsubscribe(changes)
	why := pcnodev1.NodeChange_NODE_CHANGE_INITIAL
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.d.nodeInfo(ctx)
		if err != nil {
			return err
		}
		if err := stream.Send(&pcnodev1.WatchNodeResponse{Change: why, Node: n, Time: timestamppb.Now()}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case why = <-changes:
		case <-t.C:
			why = pcnodev1.NodeChange_NODE_CHANGE_HEARTBEAT
		}
	}
}

func (s *nodeService) DrainNode(ctx context.Context, _ *pcnodev1.DrainNodeRequest) (*pcnodev1.DrainNodeResponse, error) {
	if err := s.d.setDraining(ctx, true); err != nil {
		return nil, err
	}
	n, err := s.d.nodeInfo(ctx)
	return &pcnodev1.DrainNodeResponse{Node: n}, err
}

func (s *nodeService) ResumeNode(ctx context.Context, _ *pcnodev1.ResumeNodeRequest) (*pcnodev1.ResumeNodeResponse, error) {
	if err := s.d.setDraining(ctx, false); err != nil {
		return nil, err
	}
	n, err := s.d.nodeInfo(ctx)
	return &pcnodev1.ResumeNodeResponse{Node: n}, err
}

// setDraining drains the node or resumes it. The store is written first,
// so a node answered "draining" is still draining after a restart; when
// the write fails nothing changed.
func (d *Daemon) setDraining(ctx context.Context, draining bool) error {
	d.drainMu.Lock()
	defer d.drainMu.Unlock()
	if d.draining.Load() == draining {
		return nil
	}
	if err := d.store.SetDraining(ctx, draining); err != nil {
		return fmt.Errorf("recording the drain: %w", err)
	}
	d.draining.Store(draining)
	if draining {
		d.log.Info("draining: no new tasks are admitted")
	} else {
		d.log.Info("resumed: admitting tasks")
	}
	d.node.changed(pcnodev1.NodeChange_NODE_CHANGE_DRAIN)
	return nil
}

// restoreNodeState applies what the store kept of the node across a
// restart, before anything is scheduled: the drain (a node that was
// draining starts draining) and the GPUs' unhealthy marks.
func (d *Daemon) restoreNodeState(ctx context.Context) error {
	st, err := d.store.GetNodeState(ctx)
	if err != nil {
		return fmt.Errorf("reading the node state: %w", err)
	}
	if st.Draining {
		d.draining.Store(true)
		d.log.Warn("node was draining before the restart and still is: no new tasks are admitted until ResumeNode")
	}
	d.restoreGPUMarks(ctx, st.GPUMarks)
	return nil
}
