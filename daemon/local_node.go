package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/sched"
	"github.com/pcnode/pcnode/gpu"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// The local node's operations on the node itself: what NodeService
// (service_node.go) calls once it has checked a request. The node's
// conditions are in node_conditions.go, its change notifications in
// node_watch.go, drain and recovery state in node_admin.go, GPU health in
// gpus.go.

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

// NodeInfo assembles the Node message.
func (d *Daemon) NodeInfo(ctx context.Context) (*pcnodev1.Node, error) {
	name := d.cfg.Node.Name
	if name == "" {
		name, _ = os.Hostname()
	}
	n := &pcnodev1.Node{
		Name:       name,
		Labels:     d.cfg.Node.Labels,
		Version:    Version,
		GpuBackend: d.gpus.inv.Backend(),
		Draining:   d.admin.isDraining(),
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

// SetDraining drains the node or resumes it. The store is written first,
// so a node answered "draining" is still draining after a restart; when
// the write fails nothing changed.
func (d *Daemon) SetDraining(ctx context.Context, draining bool) error {
	persist := func() error {
		if err := d.store.SetDraining(ctx, draining); err != nil {
			return fmt.Errorf("recording the drain: %w", err)
		}
		return nil
	}
	return d.admin.setDraining(draining, persist, func() {
		if draining {
			d.log.Info("draining: no new tasks are admitted")
		} else {
			d.log.Info("resumed: admitting tasks")
		}
		d.node.changed(pcnodev1.NodeChange_NODE_CHANGE_DRAIN)
	})
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
		d.admin.restoreDraining()
		d.log.Warn("node was draining before the restart and still is: no new tasks are admitted until ResumeNode")
	}
	d.restoreGPUMarks(ctx, st.GPUMarks)
	return nil
}

// WatchNode subscribes to the node's changes (nodeWatch): the channel
// holds the latest reason, and the node is read afresh. UnwatchNode ends
// the subscription.
func (d *Daemon) WatchNode() chan pcnodev1.NodeChange { return d.node.subscribe() }

// UnwatchNode ends a subscription of WatchNode.
func (d *Daemon) UnwatchNode(c chan pcnodev1.NodeChange) { d.node.unsubscribe(c) }

// ClearGPUHealth clears GPU uuid's unhealthy mark (clearGPU), applies its
// health to the scheduler at once, and returns the GPU as GetNode shows
// it. A node without monitored GPUs, or a GPU not in the inventory, is
// NOT_FOUND; one the monitor does not watch FAILED_PRECONDITION.
func (d *Daemon) ClearGPUHealth(ctx context.Context, uuid string) (*pcnodev1.Gpu, error) {
	m := d.gpus.monitor
	if m == nil {
		return nil, WithCode(codes.NotFound, fmt.Errorf("GPU %s: this node has no monitored GPUs", uuid))
	}
	if err := d.clearGPU(ctx, uuid); err != nil {
		switch {
		case errors.Is(err, gpu.ErrUnknownGPU):
			return nil, WithCode(codes.NotFound, err)
		case errors.Is(err, gpu.ErrNotMonitored):
			return nil, WithCode(codes.FailedPrecondition, err)
		}
		return nil, err
	}
	// Apply at once rather than waiting for the change to arrive.
	if st, err := m.Status(uuid); err == nil {
		d.sched.SetGPUHealth(st.UUID, d.gpus.assignable(st.UUID, st.Health))
		d.kick()
	}
	n, err := d.NodeInfo(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range n.GetGpus() {
		if g.GetUuid() == uuid {
			return g, nil
		}
	}
	return nil, WithCode(codes.NotFound, fmt.Errorf("GPU %s is not in the inventory", uuid))
}
