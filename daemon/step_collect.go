package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/hostpath"
	"github.com/pcnode/pcnode/daemon/outputs"
	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

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
