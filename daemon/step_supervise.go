package daemon

import (
	"errors"
	"time"

	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// supervise waits for the container to exit, stopping it on cancel or at
// the execution deadline, and sampling usage meanwhile.
//
// Reads: containerd (Wait, usage samples). Writes: the task record's stop
// request at the execution deadline (before the stop is signalled);
// containerd: SIGTERM, then SIGKILL, on a stop request.
//
// Re-run: Wait on a stopped container returns its exit status at once. A
// stop request recorded by an earlier daemon (restoreStop) is signalled
// again at once with what is left of its grace.
func (r *runner) supervise(task *pcnodev1.Task) (runtime.ExitStatus, error) {
	d := r.d
	type result struct {
		exit runtime.ExitStatus
		err  error
	}
	waitc := make(chan result, 1)
	go func() {
		exit, err := d.rt.Wait(r.ctx, r.id)
		waitc <- result{exit, err}
	}()
	var deadline <-chan time.Time
	if t := d.executionTimeout(task); t > 0 {
		started := task.GetStartTime().AsTime()
		timer := time.NewTimer(time.Until(started.Add(t)))
		defer timer.Stop()
		deadline = timer.C
	}
	interval := 5 * time.Second
	if len(r.alloc.GPUs) > 0 {
		interval = 2 * time.Second
	}
	sample := time.NewTicker(interval)
	defer sample.Stop()
	stopCh := r.stopCh
	for {
		select {
		case res := <-waitc:
			if res.err == nil {
				r.drainLog()
			}
			if !errors.Is(res.err, runtime.ErrUnavailable) || r.ctx.Err() != nil {
				return res.exit, res.err
			}
			// containerd went away (a restart, an upgrade): the shim and
			// the container live on. Wait again once it answers; only its
			// answer that the container is gone makes the task LOST.
			d.ctrd.down(res.err)
			r.log.Warn("containerd unreachable while waiting for the container: waiting again once it answers", "err", res.err)
			go func() {
				select {
				case <-r.ctx.Done():
				case <-time.After(containerdRetryMin):
				}
				if err := d.ctrd.waitContainerd(r.ctx); err != nil {
					waitc <- result{err: err}
					return
				}
				exit, err := d.rt.Wait(r.ctx, r.id)
				waitc <- result{exit, err}
			}()
		case <-deadline:
			deadline = nil
			// Recorded before the stop is signalled (the stopCh case of a
			// later turn of this loop).
			if out := r.requestStop(stopTimeout, d.gracePeriod(task, nil)); out.first || out.escalated {
				if _, err := r.persistStop(r.ctx, func(state pcnodev1.TaskState) string { return stopMessage(out, state) }); err != nil {
					r.log.Warn("recording the execution timeout's stop request", "err", err)
				}
			}
		case <-stopCh:
			stopCh = nil
			r.signalStop(r.stopLeft())
		case <-r.escalate: // a later request shortened the grace
			r.signalStop(r.stopLeft())
		case <-sample.C:
			r.sampleGPUMemory()
			if u, err := d.rt.Usage(r.ctx, r.id); err == nil {
				pu := usageToProto(u)
				pu.PeakGpuMemoryBytes = r.peakGPUMemory
				d.publish(r.id, &pcnodev1.TaskEvent{Event: &pcnodev1.TaskEvent_Usage{Usage: pu}})
			}
		}
	}
}

// sampleGPUMemory records the GPU memory used by the task's processes on
// its GPUs (NVML process info), keeping the peak.
func (r *runner) sampleGPUMemory() {
	pm := r.d.gpus.procMem
	uuids := r.alloc.UUIDs()
	if pm == nil || len(uuids) == 0 {
		return
	}
	pids, err := r.d.rt.Pids(r.ctx, r.id)
	if err != nil {
		return
	}
	m, err := pm(r.ctx, uuids, pids)
	if err != nil {
		r.log.Debug("sampling GPU memory", "err", err)
		return
	}
	r.peakGPUMemory = max(r.peakGPUMemory, m.TotalBytes)
}

// drainLog tells the task's log driver that the container has exited: its
// init is gone, and with it every process of its PID namespace (each task
// has its own), so nothing can write to its stdout or stderr any more. The
// driver reads what the pipes hold and seals the log now, and followers
// (RunTask) look every few milliseconds from now on, instead of waiting for
// the task delete in clean up to end the pipes. A driver that does not
// listen (started by an older pcnoded) seals at the delete as before.
func (r *runner) drainLog() {
	if _, err := logs.RequestDrain(r.d.taskLogDir(r.id)); err != nil {
		r.log.Warn("asking the log driver to drain", "err", err)
	}
	r.d.logEnds.ending(r.id)
}
