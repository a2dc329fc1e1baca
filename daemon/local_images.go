package daemon

import (
	"context"
	"errors"
	"fmt"

	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/spec"
	"github.com/pcnode/pcnode/daemon/specpb"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// pcFile is where a processing-container describes itself.
const pcFile = "/processing-container.json"

// errNoProcessingContainer is returned when an image has no pcFile.
var errNoProcessingContainer = errors.New("image has no " + pcFile)

// ensureImage returns task's image, pulling it when it is not on the node,
// with auth (the credentials of its submit, held in memory), else the
// node's configured ones or none. When the submit had credentials that a
// daemon restart lost (the task's registry_auth_in_memory without auth) and
// the pull fails, the error says so: they are never stored.
func (d *Daemon) ensureImage(ctx context.Context, task *pcnodev1.Task, auth *runtime.Auth, progress func(*pcnodev1.ImageProgress)) (runtime.Image, error) {
	ref := task.GetSpec().GetImage()
	img, err := d.rt.GetImage(ctx, ref)
	if err == nil || !errors.Is(err, runtime.ErrImageNotFound) {
		return img, err
	}
	img, err = d.rt.Pull(ctx, ref, auth, func(p runtime.Progress) {
		if progress != nil {
			progress(&pcnodev1.ImageProgress{Reference: p.Ref, Status: p.Status, DoneBytes: p.Offset, TotalBytes: p.Total})
		}
	})
	if err != nil && auth == nil && task.GetRegistryAuthInMemory() && ctx.Err() == nil && !errors.Is(err, runtime.ErrUnavailable) {
		return img, fmt.Errorf("%w; pulled without the registry credentials given at submit: those are kept in memory only, never stored, and were lost when the daemon restarted before the image was pulled; resubmit the task with them", err)
	}
	return img, err
}

// processingContainer reads and parses an image's pcFile, cached per digest.
// An invalid file is an error wrapping spec.ErrInvalid (as spec.Problems).
func (d *Daemon) processingContainer(ctx context.Context, ref string) (runtime.Image, *cachedPC, error) {
	img, err := d.rt.GetImage(ctx, ref)
	if err != nil {
		return img, nil, err
	}
	d.pcMu.Lock()
	c, ok := d.pcCache[img.Digest]
	d.pcMu.Unlock()
	if ok {
		return img, c, nil
	}
	data, digest, err := d.rt.ReadImageFile(ctx, img.Name, pcFile, spec.MaxFileSize)
	switch {
	case errors.Is(err, runtime.ErrFileNotFound):
		c = &cachedPC{err: fmt.Errorf("%s (%s): %w", ref, img.Digest, errNoProcessingContainer)}
	case errors.Is(err, runtime.ErrNotRegularFile), errors.Is(err, runtime.ErrFileTooLarge):
		c = &cachedPC{err: fmt.Errorf("%s of %s (%s): %w", pcFile, ref, img.Digest, err)}
	case err != nil:
		return img, nil, err // not cached: may be transient
	default:
		pc, warnings, perr := spec.ParseProcessingContainer(data)
		if perr == nil {
			perr = nodeLimits(d.cfg.Limits).ValidateProcessingContainer(pc).Err()
		}
		if perr != nil {
			perr = fmt.Errorf("%s of %s: %w", pcFile, ref, perr)
		}
		c = &cachedPC{pc: pc, warnings: warnings, err: perr}
		img.Digest = digest
	}
	d.pcMu.Lock()
	d.pcCache[img.Digest] = c
	d.pcMu.Unlock()
	return img, c, nil
}

// resolveWithImage resolves a spec whose template comes from an image that
// is on the node. Problems come back as spec.Problems.
func (d *Daemon) resolveWithImage(ctx context.Context, s *pcnodev1.TaskSpec, img runtime.Image) (*pcnodev1.TaskInstance, []string, error) {
	t, perr := d.specTask(s)
	if perr != nil {
		return nil, nil, perr
	}
	var pc *spec.ProcessingContainer
	var warnings []string
	if t.InlineTemplate == nil {
		_, c, err := d.processingContainer(ctx, img.Name)
		if err != nil {
			return nil, nil, err
		}
		if c.err != nil {
			return nil, nil, c.err
		}
		pc, warnings = c.pc, specpb.Warnings(c.warnings)
	}
	fsys, err := d.openInputFS(t)
	if err != nil {
		return nil, nil, err
	}
	defer fsys.Close()
	inst, w, err := nodeLimits(d.cfg.Limits).Resolve(ctx, pc, t, fsys)
	if err != nil {
		return nil, nil, err
	}
	return d.boundInstance(s, specpb.Instance(inst), append(warnings, specpb.Warnings(w)...))
}

// specTask converts an API spec into a spec.Task whose host paths have
// passed the host path policy and are replaced by their resolved forms, so
// that scale rules measure exactly what was checked (through inputFS, never
// by these names).
func (d *Daemon) specTask(s *pcnodev1.TaskSpec) (*spec.Task, error) {
	t := specpb.Task(s)
	var p problems
	for i := range t.Inputs {
		r, err := d.paths.Check(fmt.Sprintf("spec.inputs[%d].host_path", i), t.Inputs[i].HostPath, true)
		if err != nil {
			p.addErr(err)
			continue
		}
		t.Inputs[i].HostPath = r
	}
	for i := range t.Outputs {
		r, err := d.paths.Check(fmt.Sprintf("spec.outputs[%d].host_path", i), t.Outputs[i].HostPath, false)
		if err != nil {
			p.addErr(err)
			continue
		}
		t.Outputs[i].HostPath = r
	}
	if len(p) > 0 {
		return nil, invalid(p)
	}
	return t, nil
}
