package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/hostpath"
	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/daemon/outputs"
	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// A task's life, one goroutine per task once the scheduler admits it:
//
//	prepare:  PREPARING; image present or pulled; template resolved if it
//	          could not be at submit; host directories opened without
//	          following symlinks, checked for overlap, outputs created and
//	          emptied (channels.go)
//	start:    staging mounts of the opened directories; container created
//	          and started with them as mount sources; RUNNING
//	supervise: wait for exit, enforcing the execution timeout and cancels
//	collect:  exit status and usage from the cgroup; output manifests
//	finish:   final state written; container deleted; log sealed;
//	          resources released
//
// Each step is a method of runner below. A runner that is detached (daemon
// shutdown) returns without touching the container; the next daemon start
// re-attaches it (recover.go).

// stopReason says why the daemon stopped a container.
type stopReason int

const (
	stopNone stopReason = iota
	stopCancel
	stopTimeout
)

type runner struct {
	d     *Daemon
	id    string
	log   *slog.Logger
	alloc sched.Assignment
	auth  *runtime.Auth

	ctx    context.Context // cancelled on detach
	cancel context.CancelFunc
	done   chan struct{}

	peakGPUMemory int64 // highest sampled GPU memory of the task's processes; supervise's goroutine only

	mu        sync.Mutex
	stopWhy   stopReason
	stopGrace time.Duration
	stopCh    chan struct{} // closed when a stop is requested
}

func (d *Daemon) newRunner(id string, a sched.Assignment, auth *runtime.Auth) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	return &runner{
		d: d, id: id, alloc: a, auth: auth,
		log: d.log.With("task", id),
		ctx: ctx, cancel: cancel,
		done:   make(chan struct{}),
		stopCh: make(chan struct{}),
	}
}

// detach stops the runner without touching its container.
func (r *runner) detach() {
	r.cancel()
	<-r.done
}

// requestStop asks the runner to stop the container for why, with grace.
// The first request wins.
func (r *runner) requestStop(why stopReason, grace time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopWhy != stopNone {
		return
	}
	r.stopWhy, r.stopGrace = why, grace
	close(r.stopCh)
}

func (r *runner) stopRequest() (stopReason, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopWhy, r.stopGrace
}

// stepError is a failed step: the final state to record.
type stepError struct {
	reason pcnodev1.TaskReason
	msg    string
}

func (e *stepError) Error() string { return e.msg }

func failStep(reason pcnodev1.TaskReason, format string, args ...any) error {
	return &stepError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// release frees what the runner holds once it has ended.
func (r *runner) release() {
	r.d.mu.Lock()
	delete(r.d.runners, r.id)
	r.d.mu.Unlock()
	r.d.dropChannels(r.id)
	r.d.sched.Release(r.id)
	// The final state was announced before the resources were free: tell
	// node watchers again now that the allocation is gone.
	r.d.node.changed(pcnodev1.NodeChange_NODE_CHANGE_ALLOCATION)
	r.d.kick()
	close(r.done)
}

// run is the whole life of a freshly admitted task.
func (r *runner) run() {
	defer r.release()
	task, err := r.prepare()
	if err == nil {
		task, err = r.start(task)
	}
	if err != nil {
		r.fail(task, err)
		return
	}
	r.superviseAndCollect(task)
}

// resume follows a task whose container was started by an earlier daemon.
func (r *runner) resume(task *pcnodev1.Task) {
	defer r.release()
	r.superviseAndCollect(task)
}

func (r *runner) superviseAndCollect(task *pcnodev1.Task) {
	exit, err := r.supervise(task)
	if r.ctx.Err() != nil {
		return // detached: the next daemon start picks the task up
	}
	if err != nil {
		r.fail(task, failStep(pcnodev1.TaskReason_TASK_REASON_LOST, "waiting for the container: %v", err))
		return
	}
	r.collect(task, exit)
}

// fail records a failed step, unless the runner was detached or stopped.
func (r *runner) fail(task *pcnodev1.Task, err error) {
	if r.ctx.Err() != nil {
		return
	}
	ctx := context.Background()
	state, reason, msg := pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_START_ERROR, err.Error()
	var se *stepError
	if errors.As(err, &se) {
		reason = se.reason
	}
	if why, _ := r.stopRequest(); why == stopCancel {
		state, reason, msg = pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, "cancelled before the container started"
	}
	_ = r.d.rt.Delete(ctx, r.id)
	r.d.sealLog(ctx, r.id)
	var warnings []string
	if task.GetStartTime() != nil { // the container ran: its outputs may hold privilege
		warnings = r.d.fixOutputs(ctx, task)
	}
	if _, werr := r.d.finish(ctx, r.id, state, reason, msg, func(t *pcnodev1.Task) {
		t.Warnings = append(t.Warnings, warnings...)
	}); werr != nil {
		r.log.Error("recording failure", "err", werr)
	}
	r.log.Info("task failed", "reason", reason.String(), "msg", msg)
}

// stepCtx is the context for prepare and start: cancelled on detach, on a
// stop request and at the startup deadline.
func (r *runner) stepCtx(task *pcnodev1.Task) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.ctx)
	if dl := r.d.startupDeadline(task); !dl.IsZero() {
		var c2 context.CancelFunc
		ctx, c2 = context.WithDeadline(ctx, dl)
		prev := cancel
		cancel = func() { c2(); prev() }
	}
	go func() {
		select {
		case <-r.stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// prepare: PREPARING, image, late resolution, outputs.
func (r *runner) prepare() (*pcnodev1.Task, error) {
	d := r.d
	task, err := d.update(r.ctx, r.id, func(t *pcnodev1.Task) {
		t.State = pcnodev1.TaskState_TASK_STATE_PREPARING
		t.Allocation = allocationToProto(r.alloc)
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := r.stepCtx(task)
	defer cancel()
	timedOut := func(err error) error {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return failStep(pcnodev1.TaskReason_TASK_REASON_TIMEOUT, "startup timeout (%s) passed while preparing: %v", d.startupTimeout(task), err)
		}
		return err
	}

	img, err := d.ensureImage(ctx, task.GetSpec().GetImage(), r.auth, func(p *pcnodev1.ImageProgress) {
		d.publish(r.id, &pcnodev1.TaskEvent{Event: &pcnodev1.TaskEvent_ImageProgress{ImageProgress: p}})
	})
	if err != nil {
		return task, timedOut(failStep(pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR, "image %q: %v", task.GetSpec().GetImage(), err))
	}
	late := task.GetInstance() == nil
	if late {
		inst, warnings, err := d.resolveWithImage(ctx, task.GetSpec(), img)
		if err != nil {
			return task, timedOut(failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "resolving the task against image %s: %v", img.Digest, err))
		}
		task, err = d.update(ctx, r.id, func(t *pcnodev1.Task) {
			t.Instance = inst
			t.Warnings = append(t.Warnings, warnings...)
		})
		if err != nil {
			return task, err
		}
	}
	task, err = d.update(ctx, r.id, func(t *pcnodev1.Task) {
		t.ImageDigest = img.Digest
		// Also for an instance resolved just now, or by an older daemon.
		d.applyDefaultLimits(t.Instance, r.alloc.Resources)
	})
	if err != nil {
		return task, err
	}
	// Host directories: opened once without following symlinks, checked
	// for overlap on the opened objects, then emptied through them (see
	// channels.go).
	chans, err := d.openChannels(task, late)
	if err != nil {
		return task, timedOut(failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err))
	}
	if err := d.claimChannels(chans); err != nil {
		chans.close()
		return task, timedOut(failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err))
	}
	if task.GetSpec().GetPreserveOutputs() {
		return task, nil
	}
	for i, dir := range chans.outputs {
		root, err := dir.OpenRoot()
		if err == nil {
			err = outputs.Empty(ctx, root, dir.Path())
			root.Close()
		}
		if err != nil {
			return task, timedOut(failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "output channel %q: %v", task.GetInstance().GetOutputs()[i].GetName(), err))
		}
	}
	return task, nil
}

// start creates and starts the container; RUNNING.
func (r *runner) start(task *pcnodev1.Task) (*pcnodev1.Task, error) {
	d := r.d
	ctx, cancel := r.stepCtx(task)
	defer cancel()
	if err := d.ownOutputs(ctx, task); err != nil {
		return task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err)
	}
	cs, err := d.containerSpec(task, r.alloc)
	if err != nil {
		return task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err)
	}
	// The mount sources are staging mounts of the directories prepare
	// opened; once the container has started (or failed to) it holds
	// mounts of its own and the staging ones go.
	defer d.unstage(r.id)
	if cs.Mounts, err = d.stageChannels(task); err != nil {
		return task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "%v", err)
	}
	started, err := d.rt.Start(ctx, cs)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return task, failStep(pcnodev1.TaskReason_TASK_REASON_TIMEOUT, "startup timeout (%s) passed while starting: %v", d.startupTimeout(task), err)
		}
		if errors.Is(err, runtime.ErrImageNotFound) {
			return task, failStep(pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR, "image %q: %v", task.GetSpec().GetImage(), err)
		}
		return task, failStep(pcnodev1.TaskReason_TASK_REASON_START_ERROR, "starting the container: %v", err)
	}
	task, err = d.update(context.WithoutCancel(ctx), r.id, func(t *pcnodev1.Task) {
		t.State = pcnodev1.TaskState_TASK_STATE_RUNNING
		t.StartTime = timestamppb.Now()
		if started.ImageDigest != "" {
			t.ImageDigest = started.ImageDigest
		}
	})
	if err != nil {
		return task, err
	}
	r.log.Info("task running", "image", task.GetSpec().GetImage(), "digest", task.GetImageDigest(), "pid", started.PID)
	return task, nil
}

// supervise waits for the container to exit, stopping it on cancel or at
// the execution deadline, and sampling usage meanwhile.
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
			return res.exit, res.err
		case <-deadline:
			deadline = nil
			r.requestStop(stopTimeout, d.gracePeriod(task, nil))
		case <-stopCh:
			stopCh = nil
			_, grace := r.stopRequest()
			go func() {
				if err := d.rt.Stop(r.ctx, r.id, grace); err != nil && r.ctx.Err() == nil {
					r.log.Warn("stopping container", "err", err)
				}
			}()
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

// collect records exit, usage and output manifests, then finishes the task.
func (r *runner) collect(task *pcnodev1.Task, exit runtime.ExitStatus) {
	d := r.d
	ctx := context.Background()
	usage, uerr := d.rt.Usage(ctx, r.id)
	if uerr != nil {
		r.log.Warn("reading usage", "err", uerr)
	}
	state, reason, msg := pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, "exited 0"
	why, grace := r.stopRequest()
	switch {
	case why == stopCancel:
		state, reason, msg = pcnodev1.TaskState_TASK_STATE_CANCELLED, pcnodev1.TaskReason_TASK_REASON_CANCELLED, fmt.Sprintf("cancelled (exit code %d, grace %s)", exit.Code, grace)
	case why == stopTimeout:
		state, reason, msg = pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_TIMEOUT, fmt.Sprintf("execution timeout (%s) reached; stopped with exit code %d", d.executionTimeout(task), exit.Code)
	case exit.OOMKilled:
		state, reason, msg = pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_OOM_KILLED,
			fmt.Sprintf("killed by the kernel OOM killer: memory limit %d bytes (exit code %d)", task.GetInstance().GetResources().GetLimits().GetMemoryBytes(), exit.Code)
	case exit.Code != 0:
		state, reason, msg = pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, fmt.Sprintf("exited %d", exit.Code)
	}

	summaries, manifests, ow, merr := r.manifests(ctx, task)
	if merr != nil {
		r.log.Warn("output manifests", "err", merr)
		msg += "; output manifest: " + merr.Error()
	}
	if sum := ow.summary(); sum != "" {
		msg += "; outputs: " + sum
	}
	if len(manifests) > 0 {
		if err := d.store.PutOutputs(ctx, r.id, manifests); err != nil {
			r.log.Error("storing output manifests", "err", err)
		}
	}
	if err := d.rt.Delete(ctx, r.id); err != nil {
		r.log.Warn("deleting container", "err", err)
	}
	d.sealLog(ctx, r.id)
	_, err := d.finish(ctx, r.id, state, reason, msg, func(t *pcnodev1.Task) {
		t.ExitCode = int32(exit.Code)
		if !exit.ExitedAt.IsZero() {
			// start_time is taken when containerd's Start returns, so a
			// task that exits at once can have exited "before" it: a
			// task never finishes before it started.
			at := exit.ExitedAt
			if st := t.GetStartTime(); st != nil && at.Before(st.AsTime()) {
				at = st.AsTime()
			}
			t.FinishTime = timestamppb.New(at)
		}
		if uerr == nil {
			t.Usage = usageToProto(usage)
		}
		if r.peakGPUMemory > 0 {
			if t.Usage == nil {
				t.Usage = &pcnodev1.Usage{}
			}
			t.Usage.PeakGpuMemoryBytes = r.peakGPUMemory
		}
		t.Outputs = summaries
		t.Warnings = append(t.Warnings, ow.lines...)
	})
	if err != nil {
		r.log.Error("recording final state", "err", err)
		return
	}
	r.log.Info("task finished", "state", state.String(), "reason", reason.String(), "exit_code", exit.Code)
}

// manifests walks every output channel after exit and announces each. The
// channels share tasks.max_output_files and max_output_path_bytes. Besides
// the manifests it returns
// the task's warnings about what the walks fixed and truncated.
func (r *runner) manifests(ctx context.Context, task *pcnodev1.Task) ([]*pcnodev1.OutputSummary, []*pcnodev1.OutputManifest, *outputWarnings, error) {
	d := r.d
	var (
		sums []*pcnodev1.OutputSummary
		mans []*pcnodev1.OutputManifest
		errs []error
		ow   = &outputWarnings{}
	)
	budget := newManifestBudget(d.cfg.Tasks)
	for i, m := range task.GetInstance().GetOutputs() {
		// Re-opened from the data root without following symlinks and
		// hashed through the descriptor: a symlink planted in the
		// directory's place is refused, not followed.
		var man *outputs.Manifest
		err := d.withOutputRoot(task, i, func(dir *hostpath.Dir, root *os.Root) (err error) {
			man, err = outputs.CollectRoot(ctx, m.GetName(), dir.Path(), root, budget.options(d.cfg.Tasks.ManifestWorkers))
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("channel %q: %w", m.GetName(), err))
			continue
		}
		ow.add(man, budget.take(man))
		if man.FixCount > 0 || man.Omitted > 0 {
			r.log.Warn("output channel fixed or truncated", "channel", man.Name, "fixes", man.FixCount, "failed_fixes", man.FixFailures, "omitted_files", man.Omitted)
		}
		pm := manifestToProto(man)
		pm.HostPath = m.GetHostPath()
		mans = append(mans, pm)
		sums = append(sums, &pcnodev1.OutputSummary{Name: pm.GetName(), FileCount: pm.GetFileCount(), TotalBytes: pm.GetTotalBytes()})
		d.publish(r.id, &pcnodev1.TaskEvent{Event: &pcnodev1.TaskEvent_OutputManifest{OutputManifest: pm}})
	}
	return sums, mans, ow, errors.Join(errs...)
}

// sealLog marks a task's log complete (the driver normally does this itself).
func (d *Daemon) sealLog(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := logs.Seal(ctx, d.taskLogDir(id)); err != nil {
		d.log.Warn("sealing log", "task", id, "err", err)
	}
}

// containerSpec builds the container for a resolved task, without its
// mounts: start adds those (stageChannels).
func (d *Daemon) containerSpec(task *pcnodev1.Task, a sched.Assignment) (runtime.ContainerSpec, error) {
	s, inst := task.GetSpec(), task.GetInstance()
	logURI, err := runtime.BinaryLogURI(d.exe, logs.BinaryIOArgs(logs.DriverConfig{
		Dir:          d.taskLogDir(task.GetId()),
		MaxFileBytes: d.cfg.Logs.MaxFileSize.Bytes(),
		MaxFiles:     d.cfg.Logs.MaxFiles,
	}))
	if err != nil {
		return runtime.ContainerSpec{}, err
	}
	cs := runtime.ContainerSpec{
		ID:                     task.GetId(),
		Image:                  s.GetImage(),
		Args:                   inst.GetCommand(),
		MemoryLimitBytes:       inst.GetResources().GetLimits().GetMemoryBytes(),
		MemoryReservationBytes: inst.GetResources().GetRequests().GetMemoryBytes(),
		CPUQuotaMillis:         inst.GetResources().GetLimits().GetCpuMillis(),
		PidsLimit:              s.GetPidsLimit(),
		NetworkHost:            s.GetNetwork() == pcnodev1.NetworkMode_NETWORK_MODE_HOST,
		ReadOnlyRootfs:         s.GetReadOnlyRootfs(),
		User:                   d.taskUser(s),
		LogURI:                 logURI,
	}
	if cs.PidsLimit == 0 {
		cs.PidsLimit = d.cfg.Tasks.PidsLimit
	}
	if cs.CPUQuotaMillis > 0 && cs.CPUQuotaMillis < 10 {
		cs.CPUQuotaMillis = 10
	}
	for _, e := range inst.GetEnv() {
		if e.GetName() == "NVIDIA_VISIBLE_DEVICES" {
			continue // set below from the allocation only
		}
		v := e.GetValue()
		if name := e.GetSecret(); name != "" {
			// Read now, not at submit: a replaced file is a rotation. The
			// value goes to the container's spec only, never to the task
			// record or a log line.
			if v, err = d.secrets.Read(name); err != nil {
				return runtime.ContainerSpec{}, fmt.Errorf("environment variable %s: %w", e.GetName(), err)
			}
		}
		cs.Env = append(cs.Env, e.GetName()+"="+v)
	}
	uuids := a.UUIDs()
	if len(uuids) > 0 {
		cs.Env = append(cs.Env, "NVIDIA_VISIBLE_DEVICES="+strings.Join(uuids, ","))
		for _, u := range uuids {
			cs.CDIDevices = append(cs.CDIDevices, "nvidia.com/gpu="+u)
		}
	} else {
		cs.Env = append(cs.Env, "NVIDIA_VISIBLE_DEVICES=void")
	}
	// Mounts are added by start from the staging mounts of the directories
	// prepare opened (stageChannels), never from the instance's paths.
	return cs, nil
}

func (d *Daemon) startupTimeout(task *pcnodev1.Task) time.Duration {
	if t := task.GetSpec().GetStartupTimeout(); t != nil && t.AsDuration() > 0 {
		return t.AsDuration()
	}
	return d.cfg.Tasks.StartupTimeout.Duration
}

func (d *Daemon) startupDeadline(task *pcnodev1.Task) time.Time {
	t := d.startupTimeout(task)
	if t <= 0 {
		return time.Time{}
	}
	return task.GetCreateTime().AsTime().Add(t)
}

func (d *Daemon) executionTimeout(task *pcnodev1.Task) time.Duration {
	if t := task.GetSpec().GetExecutionTimeout(); t != nil && t.AsDuration() > 0 {
		return t.AsDuration()
	}
	return d.cfg.Tasks.ExecutionTimeout.Duration
}

// gracePeriod is the request's grace, else the spec's, else the node's.
func (d *Daemon) gracePeriod(task *pcnodev1.Task, req *durationpb.Duration) time.Duration {
	if req != nil && req.AsDuration() > 0 {
		return req.AsDuration()
	}
	if g := task.GetSpec().GetStopGracePeriod(); g != nil && g.AsDuration() > 0 {
		return g.AsDuration()
	}
	return d.cfg.Tasks.StopGracePeriod.Duration
}
