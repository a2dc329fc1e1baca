package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/pcnode/pcnode/daemon/config"
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

// ProcessingContainer returns image ref (normalised) and its
// processing-container.json, parsed, with the parser's warnings. A missing
// file is NOT_FOUND; an invalid one INVALID_ARGUMENT with a problem for
// each field, prefixed "processing_container.".
func (d *Daemon) ProcessingContainer(ctx context.Context, ref string) (runtime.Image, *spec.ProcessingContainer, []spec.Warning, error) {
	img, c, err := d.processingContainer(ctx, ref)
	if err != nil {
		return img, nil, nil, err
	}
	if c.err != nil {
		return img, nil, nil, specInvalid(c.err, "processing_container.")
	}
	return img, c.pc, c.warnings, nil
}

// pcReadTimeout bounds one read of an image's pcFile (pcCache.load), which
// runs detached from the requests waiting for it.
const pcReadTimeout = 5 * time.Minute

// processingContainer reads and parses an image's pcFile, cached per digest;
// concurrent misses on one image share one read.
// An invalid file is an error wrapping spec.ErrInvalid (as spec.Problems).
func (d *Daemon) processingContainer(ctx context.Context, ref string) (runtime.Image, *cachedPC, error) {
	img, err := d.rt.GetImage(ctx, ref)
	if err != nil {
		return img, nil, err
	}
	c, digest, err := d.pcs.load(ctx, img.Digest, func(ctx context.Context) (*cachedPC, string, error) {
		data, digest, err := d.rt.ReadImageFile(ctx, img.Name, pcFile, spec.MaxFileSize)
		switch {
		case errors.Is(err, runtime.ErrFileNotFound):
			return &cachedPC{err: fmt.Errorf("%s (%s): %w", ref, img.Digest, errNoProcessingContainer)}, img.Digest, nil
		case errors.Is(err, runtime.ErrNotRegularFile), errors.Is(err, runtime.ErrFileTooLarge):
			return &cachedPC{err: fmt.Errorf("%s of %s (%s): %w", pcFile, ref, img.Digest, err)}, img.Digest, nil
		case err != nil:
			return nil, "", err // not cached: may be transient
		}
		pc, warnings, perr := spec.ParseProcessingContainer(data)
		if perr == nil {
			perr = nodeLimits(d.cfg.Limits).ValidateProcessingContainer(pc).Err()
		}
		if perr != nil {
			perr = fmt.Errorf("%s of %s: %w", pcFile, ref, perr)
		}
		return &cachedPC{pc: pc, warnings: warnings, err: perr}, digest, nil
	})
	if err != nil {
		return img, nil, err
	}
	img.Digest = digest
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

// The local node's image operations: what ImageService (daemon/server)
// calls once it has checked and converted a request.

// PullImage pulls ref with auth (nil: the node's configured credentials,
// else none), calling progress as it goes.
func (d *Daemon) PullImage(ctx context.Context, ref string, auth *runtime.Auth, progress func(runtime.Progress)) (runtime.Image, error) {
	img, err := d.rt.Pull(ctx, ref, auth, progress)
	if err != nil {
		return img, err
	}
	d.log.Info("image pulled", "image", img.Name, "digest", img.Digest)
	return img, nil
}

// ImportImage imports the archive r holds, held to the [images] caps
// (opts.Limits is set from them): passing one is an error wrapping a
// *runtime.ImportLimitError.
func (d *Daemon) ImportImage(ctx context.Context, r io.Reader, opts runtime.ImportOptions) ([]runtime.Image, error) {
	opts.Limits = importLimits(d.cfg.Images)
	imgs, err := d.rt.Import(ctx, r, opts)
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		d.log.Info("image imported", "image", img.Name, "digest", img.Digest)
	}
	return imgs, nil
}

// importLimits are the [images] caps as the runtime takes them.
func importLimits(im config.Images) runtime.ImportLimits {
	return runtime.ImportLimits{
		MaxBytes:     im.MaxImportBytes.Bytes(),
		MaxEntries:   im.MaxImportEntries,
		MaxBlobBytes: im.MaxBlobBytes.Bytes(),
		MaxJSONBytes: im.MaxJSONBytes.Bytes(),

		MaxUnpackedBytes:   im.MaxUnpackedBytes.Bytes(),
		MaxUnpackedEntries: im.MaxUnpackedEntries,

		MaxCompressionRatio: int64(im.MaxCompressionRatio),
	}
}

// ListImages returns the node's images and, by normalised image name, the
// unfinished tasks using them.
func (d *Daemon) ListImages(ctx context.Context) ([]runtime.Image, map[string][]string, error) {
	imgs, err := d.rt.ListImages(ctx)
	if err != nil {
		return nil, nil, err
	}
	users, err := d.imageUsers(ctx)
	if err != nil {
		return nil, nil, err
	}
	return imgs, users, nil
}

// RemoveImage removes image ref (normalised) from the node; one an
// unfinished task uses is FAILED_PRECONDITION naming the tasks.
func (d *Daemon) RemoveImage(ctx context.Context, ref string) error {
	users, err := d.imageUsers(ctx)
	if err != nil {
		return err
	}
	if u := users[ref]; len(u) > 0 {
		return WithCode(codes.FailedPrecondition, fmt.Errorf("image %s is used by unfinished tasks %v", ref, u))
	}
	if err := d.rt.RemoveImage(ctx, ref); err != nil {
		return err
	}
	d.log.Info("image removed", "image", ref)
	return nil
}

// imageUsers maps normalised image names to the unfinished tasks using them.
func (d *Daemon) imageUsers(ctx context.Context) (map[string][]string, error) {
	tasks, err := d.store.Unfinished(ctx)
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	for _, t := range tasks {
		if n, err := runtime.NormalizeRef(t.GetSpec().GetImage()); err == nil {
			users[n] = append(users[n], t.GetId())
		}
	}
	return users, nil
}
