package daemon

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/daemon/metrics"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// This file is the daemon's side of its Prometheus metrics (package
// daemon/metrics): what a scrape reads (metricsSource), and the hooks that
// transitions (update), submits and finished logs call.

// Metrics is the daemon's metric families; cmd/pcnoded serves them and
// puts their gRPC interceptors on the server.
func (d *Daemon) Metrics() *metrics.Metrics { return d.metrics }

// newMetrics builds the daemon's metrics over d.
func newMetrics(d *Daemon) *metrics.Metrics {
	return metrics.New(metrics.Options{Version: Version, Source: metricsSource{d}})
}

// metricsSource is what a scrape reads of the daemon.
type metricsSource struct{ d *Daemon }

var _ metrics.Source = metricsSource{}

func (s metricsSource) QueueLength() int {
	if s.d.sched == nil {
		return 0
	}
	n, _ := s.d.sched.QueueLen()
	return n
}

func (s metricsSource) QueueWaiting() map[string]int {
	if s.d.sched == nil {
		return nil
	}
	return s.d.sched.Waiting()
}

func (s metricsSource) Containerd() (bool, uint64) {
	return s.d.ctrd.containerdUp(), s.d.ctrd.outageCount()
}

// GPUs reads the inventory (NVML: live readings), the health monitor and
// the scheduler's holders; for each held GPU, when the backend can, the
// memory its holder's processes use on it.
func (s metricsSource) GPUs(ctx context.Context) []metrics.GPU {
	d := s.d
	if d.gpus == nil || d.sched == nil {
		return nil
	}
	devs, err := d.gpus.inv.Devices(ctx)
	if err != nil && len(devs) == 0 {
		return nil
	}
	statuses := d.gpus.statuses()
	_, holders := d.sched.QueueLen()
	byTask := map[string][]string{}
	for uuid, id := range holders {
		byTask[id] = append(byTask[id], uuid)
	}
	taskMem := map[string]int64{}
	if pm := d.gpus.procMem; pm != nil {
		for id, uuids := range byTask {
			pids, err := d.rt.Pids(ctx, id)
			if err != nil {
				continue
			}
			m, err := pm(ctx, uuids, pids)
			if err != nil {
				continue
			}
			for _, u := range uuids {
				taskMem[u] = m.PerGPU[u] // 0 when none of its processes uses it
			}
		}
	}
	out := make([]metrics.GPU, 0, len(devs))
	for _, g := range devs {
		mg := metrics.GPU{
			Index: g.Index, UUID: g.UUID, Model: g.Model,
			MemoryUsedBytes: g.MemoryUsedBytes, MemoryTotalBytes: g.MemoryTotalBytes,
			UtilizationPercent: g.UtilizationPercent, TemperatureCelsius: g.TemperatureCelsius,
			PowerDrawMilliwatts: g.PowerDrawMilliwatts,
			Health:              "unknown",
		}
		if st, ok := statuses[g.UUID]; ok {
			mg.Health = st.Health.String()
		}
		if _, held := holders[g.UUID]; held {
			mg.Allocated = true
			if v, ok := taskMem[g.UUID]; ok {
				mg.TaskMemoryBytes = &v
			}
		}
		out = append(out, mg)
	}
	return out
}

// stateLabel is a task state as the metrics label it.
func stateLabel(s pcnodev1.TaskState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "TASK_STATE_"))
}

// seedTaskMetrics sets the task gauges from the store's unfinished tasks
// (at the start, before recovery moves any).
func (d *Daemon) seedTaskMetrics(ctx context.Context) error {
	ts, err := d.store.Unfinished(ctx)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	for _, t := range ts {
		counts[stateLabel(t.GetState())]++
	}
	d.metrics.SetTasks(counts)
	return nil
}

// observeTransition is update's hook: the state change just written to t
// from state before, in which the task had been since since.
func (d *Daemon) observeTransition(before pcnodev1.TaskState, since time.Time, t *pcnodev1.Task) {
	if d.metrics == nil {
		return
	}
	tr := metrics.Transition{From: stateLabel(before), To: stateLabel(t.GetState()), Ran: -1}
	if !since.IsZero() && since.Unix() > 0 {
		tr.InFrom = time.Since(since)
	}
	if IsFinal(t.GetState()) {
		tr.Reason = strings.ToLower(strings.TrimPrefix(t.GetReason().String(), "TASK_REASON_"))
		if st, ft := t.GetStartTime(), t.GetFinishTime(); st != nil && ft != nil && st.AsTime().Unix() > 0 {
			tr.Ran = max(ft.AsTime().Sub(st.AsTime()), 0)
		}
		tr.GPUs = len(t.GetAllocation().GetGpus())
		tr.GPUPeakBytes = t.GetUsage().GetPeakGpuMemoryBytes()
		select {
		case d.logDone <- t.GetId():
		default: // the measuring loop is far behind: this log is not counted
		}
	}
	d.metrics.Observe(tr)
}

// noteSubmit is Submit's hook: a new task counts as queued, a refusal by
// its gRPC code and reason.
func (d *Daemon) noteSubmit(existing bool, err error) {
	if d.metrics == nil {
		return
	}
	if err == nil {
		if !existing {
			d.metrics.Created()
		}
		return
	}
	code := status.Code(toStatus(err))
	reason := metrics.RefusedOther
	switch code {
	case codes.InvalidArgument:
		reason = metrics.RefusedInvalid
	case codes.ResourceExhausted:
		reason = metrics.RefusedNeverFits
	case codes.FailedPrecondition:
		reason = metrics.RefusedPrecondition
		if d.admin.isDraining() {
			reason = metrics.RefusedDraining
		}
	case codes.Unavailable:
		reason = metrics.RefusedContainerdDown
		if d.admin.isRecovering() && d.ctrd.containerdUp() {
			reason = metrics.RefusedRecovering
		}
	case codes.PermissionDenied:
		reason = metrics.RefusedPermission
	case codes.AlreadyExists:
		reason = metrics.RefusedConflict
	}
	if errors.Is(err, store.ErrKeyConflict) {
		reason = metrics.RefusedConflict
	}
	d.metrics.Refused(code.String(), reason)
}

// logDoneBuffer bounds the finished tasks whose log waits to be measured.
const logDoneBuffer = 4096

// logMetricsLoop measures the log of every task that reached its final
// state (observeTransition), once its runner has ended (the log is sealed
// after the container's delete, see step_cleanup.go): bytes kept, entries
// written, entries rotated away. A runner still cleaning up (containerd
// down) is waited for on its own, so that it holds up no other.
func (d *Daemon) logMetricsLoop(ctx context.Context) {
	for {
		var id string
		select {
		case <-ctx.Done():
			return
		case id = <-d.logDone:
		}
		d.taskTable.mu.Lock()
		r := d.runners[id]
		d.taskTable.mu.Unlock()
		if r == nil {
			d.measureLog(id)
			continue
		}
		d.wg.Add(1) // the loop's own count keeps Close's Wait from ending meanwhile
		go func() {
			defer d.wg.Done()
			select {
			case <-r.done:
				d.measureLog(id)
			case <-ctx.Done():
			}
		}()
	}
}

// measureLog adds task id's log on disk to the log metrics.
func (d *Daemon) measureLog(id string) {
	info, err := logs.Stat(d.taskLogDir(id))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			d.log.Debug("measuring task log for metrics", "task", id, "err", err)
		}
		return
	}
	var entries, dropped uint64
	if info.LastSeq >= info.FirstSeq {
		entries = info.LastSeq
	}
	if info.FirstSeq > 1 {
		dropped = info.FirstSeq - 1
		entries = max(entries, dropped)
	}
	d.metrics.LogClosed(info.Bytes, entries, dropped)
}
