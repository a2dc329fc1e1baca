package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/pcnode/pcnode/daemon/hostpath"
	"github.com/pcnode/pcnode/daemon/outputs"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// storeTimeout bounds a store write made after the runner's context ended
// or on the way to the final state: bbolt writes take milliseconds.
const storeTimeout = 5 * time.Second

// writeManifests walks every output channel of the exited task, hashing
// each file through descriptors opened without following symlinks (and
// fixing what would leave privilege behind: setuid bits, device nodes),
// announces each manifest and stores them all; it adds the summaries and
// the warnings to o.
//
// Reads: the output directories (host). Writes: the output directories'
// modes where a fix is due (host), the task's manifests (store).
//
// Re-run: the walk is a pure function of the directories, which nothing
// writes to once the container has exited; a fix already made is not
// needed again; PutOutputs replaces the stored manifests. It stops when
// ctx ends (the runner was detached) and returns ctx's error; the task is
// then still RUNNING with its stopped container and the next start walks
// again.
func (r *runner) writeManifests(ctx context.Context, task *pcnodev1.Task, o *outcome) error {
	summaries, manifests, ow, merr := r.manifests(ctx, task)
	if err := ctx.Err(); err != nil {
		return err
	}
	if merr != nil {
		r.log.Warn("output manifests", "err", merr)
		o.msg += "; output manifest: " + merr.Error()
	}
	if sum := ow.summary(); sum != "" {
		o.msg += "; outputs: " + sum
	}
	o.summaries, o.warnings = summaries, ow.lines
	if len(manifests) > 0 {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
		defer cancel()
		if err := r.d.store.PutOutputs(wctx, r.id, manifests); err != nil {
			r.log.Error("storing output manifests", "err", err)
		}
	}
	crashAt(crashAfterManifests)
	return ctx.Err()
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
