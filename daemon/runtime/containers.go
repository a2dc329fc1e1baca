package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/pkg/protobuf"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Started says what Start started.
type Started struct {
	// PID is the container's init process on the host.
	PID uint32
	// ImageDigest is the digest of the image run (Image.Digest).
	ImageDigest string
}

// ExitStatus is how a container's task ended.
type ExitStatus struct {
	Code     int
	ExitedAt time.Time
	// OOMKilled is true when the kernel's OOM killer killed a process of
	// the container, as its memory cgroup or containerd's OOM event says.
	OOMKilled bool
	// Usage is the container's usage (what Usage returns) as read with
	// the exit status, nil when it could not be read: the caller need not
	// ask again.
	Usage *Usage
}

// Start creates the container and its task and starts it. The image must
// be in the image store (ErrImageNotFound otherwise); it is unpacked for
// the snapshotter if it is not yet. On any failure nothing is left behind.
// Callers must not start the same id twice at the same time.
//
// Start talks to containerd's services directly rather than through the
// client's NewContainer and NewTask, which read the container record back
// three times, the image's manifests twice and the plugin list once, and
// create and delete a lease: a start is now an image lookup, a container
// create, a snapshot prepare, a task create and a task start (twelve fewer
// calls, two fewer metadata commits in containerd).
func (c *Containerd) Start(ctx context.Context, spec ContainerSpec) (_ Started, retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	if err := spec.validate(); err != nil {
		return Started{}, err
	}
	creator, err := ioCreator(spec.LogURI)
	if err != nil {
		return Started{}, err
	}
	rec, err := c.lookupImage(ctx, spec.Image)
	if err != nil {
		return Started{}, err
	}
	prep, err := c.prepareImage(ctx, rec, false)
	if err != nil {
		return Started{}, err
	}
	log := c.log.With("task", spec.ID, "image", rec.Name)
	mounts, err := c.createContainer(ctx, &spec, rec, prep)
	if err != nil {
		return Started{}, err
	}
	if spec.AfterCreate != nil {
		spec.AfterCreate()
	}
	cleanup := func(cause error) (Started, error) {
		// A fresh context: the caller's may be what failed.
		dctx, cancel := context.WithTimeout(c.ns(context.WithoutCancel(ctx)), 30*time.Second)
		defer cancel()
		if err := c.Delete(dctx, spec.ID); err != nil {
			log.WarnContext(ctx, "cleaning up after failed start", "error", err)
		}
		return Started{}, cause
	}
	io, err := creator(spec.ID)
	if err != nil {
		return cleanup(fmt.Errorf("task IO of %s: %w", spec.ID, err))
	}
	cfg := io.Config()
	req := &tasks.CreateTaskRequest{
		ContainerID: spec.ID,
		Terminal:    cfg.Terminal,
		Stdin:       cfg.Stdin,
		Stdout:      cfg.Stdout,
		Stderr:      cfg.Stderr,
	}
	for _, m := range mounts {
		req.Rootfs = append(req.Rootfs, &types.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	created, err := c.client.TaskService().Create(ctx, req)
	if err != nil {
		return cleanup(fmt.Errorf("create task %s: %w", spec.ID, errgrpc.ToNative(err)))
	}
	if _, err := c.client.TaskService().Start(ctx, &tasks.StartRequest{ContainerID: spec.ID}); err != nil {
		return cleanup(fmt.Errorf("start task %s: %w", spec.ID, errgrpc.ToNative(err)))
	}
	log.InfoContext(ctx, "container started", "pid", created.GetPid())
	return Started{PID: created.GetPid(), ImageDigest: rec.Target.Digest.String()}, nil
}

// createContainer creates spec's container record and its snapshot (keyed
// by the container's id, on the image's unpacked layers) and returns the
// snapshot's mounts. On failure it leaves neither behind.
//
// The record is created first when its spec can be made without the root
// file system: it then references the snapshot before the snapshot exists,
// so containerd's garbage collection never sees the snapshot unreferenced,
// and no lease is needed. A user given by name (or a uid without a gid) is
// looked up in the image's /etc/passwd and /etc/group, so the snapshot must
// come first: it is then prepared under a lease until the record exists.
func (c *Containerd) createContainer(ctx context.Context, spec *ContainerSpec, rec images.Image, prep imagePrep) (_ []mount.Mount, retErr error) {
	container := containers.Container{
		ID:          spec.ID,
		Labels:      spec.containerLabels(),
		Image:       rec.Name,
		Runtime:     containers.RuntimeInfo{Name: c.cfg.Runtime},
		Snapshotter: c.cfg.Snapshotter,
		SnapshotKey: spec.ID,
	}
	opts := specOpts(spec, prep.config, specOptions{limitSwap: c.limitSwap, cdiSpecDirs: c.cfg.CDISpecDirs, compatSyscalls: c.cfg.Allow32BitSyscalls})
	newSpec := func(ctx context.Context) error {
		s, err := oci.GenerateSpec(ctx, c.client, &container, opts...)
		if err != nil {
			return fmt.Errorf("spec of container %s: %w", spec.ID, err)
		}
		container.Spec, err = typeurl.MarshalAny(s)
		if err != nil {
			return fmt.Errorf("spec of container %s: %w", spec.ID, err)
		}
		return nil
	}
	create := func(ctx context.Context) error {
		if _, err := c.client.ContainerService().Create(ctx, container); err != nil {
			if errdefs.IsAlreadyExists(err) {
				return fmt.Errorf("container %s: %w", spec.ID, ErrAlreadyExists)
			}
			return fmt.Errorf("create container %s: %w", spec.ID, err)
		}
		return nil
	}
	// undo removes what a failed create left: the record, if made, and the
	// snapshot keyed by the id (which belongs to that record or to none).
	undo := func(cause error) ([]mount.Mount, error) {
		if errors.Is(cause, ErrAlreadyExists) {
			return nil, cause // another's container: not ours to remove
		}
		dctx, cancel := context.WithTimeout(c.ns(context.WithoutCancel(ctx)), 30*time.Second)
		defer cancel()
		if err := c.Delete(dctx, spec.ID); err != nil {
			c.log.WarnContext(ctx, "cleaning up after failed create", "task", spec.ID, "error", err)
		}
		return nil, cause
	}
	if specReadsRootFS(spec, prep.config) {
		lctx, done, err := c.client.WithLease(ctx)
		if err != nil {
			return nil, fmt.Errorf("lease for container %s: %w", spec.ID, err)
		}
		defer func() {
			if err := done(context.WithoutCancel(lctx)); err != nil {
				c.log.WarnContext(ctx, "deleting the create lease", "task", spec.ID, "error", err)
			}
		}()
		if _, err := c.client.ContainerService().Get(lctx, spec.ID); err == nil {
			return nil, fmt.Errorf("container %s: %w", spec.ID, ErrAlreadyExists)
		} else if !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("container %s: %w", spec.ID, err)
		}
		mounts, err := c.prepareSnapshot(lctx, rec, &prep, spec.ID)
		if err != nil {
			return undo(err)
		}
		if err := newSpec(lctx); err != nil {
			return undo(err)
		}
		if err := create(lctx); err != nil {
			return undo(err)
		}
		return mounts, nil
	}
	if err := newSpec(ctx); err != nil {
		return nil, err
	}
	if err := create(ctx); err != nil {
		return nil, err
	}
	mounts, err := c.prepareSnapshot(ctx, rec, &prep, spec.ID)
	if err != nil {
		return undo(err)
	}
	return mounts, nil
}

// prepareSnapshot prepares the snapshot key on the image's unpacked layers.
// A snapshot already under key was left by an earlier start that failed
// (the caller made sure no other container has the id): it is removed and
// the prepare tried again. Layers gone since prepareImage looked (an image
// removed and imported again, a snapshot removed by hand) are unpacked
// again once.
func (c *Containerd) prepareSnapshot(ctx context.Context, rec images.Image, prep *imagePrep, key string) ([]mount.Mount, error) {
	sn := c.client.SnapshotService(c.cfg.Snapshotter)
	for attempt := 0; ; attempt++ {
		mounts, err := sn.Prepare(ctx, key, prep.chainID.String())
		switch {
		case err == nil:
			return mounts, nil
		case attempt < 2 && errdefs.IsAlreadyExists(err):
			if err := sn.Remove(ctx, key); err != nil && !errdefs.IsNotFound(err) {
				return nil, fmt.Errorf("remove stale snapshot %s: %w", key, err)
			}
		case attempt < 2 && errdefs.IsNotFound(err):
			p, perr := c.prepareImage(ctx, rec, true)
			if perr != nil {
				return nil, perr
			}
			*prep = p
		default:
			return nil, fmt.Errorf("prepare snapshot %s: %w", key, err)
		}
	}
}

// specReadsRootFS reports whether the container's spec is made from the
// image's files: oci.WithUser looks a user name, or the primary group of a
// bare uid, up in the root file system's /etc/passwd and /etc/group. Only
// a numeric "uid:gid" (numericUser) is set without them.
func specReadsRootFS(s *ContainerSpec, img ocispec.ImageConfig) bool {
	user := s.User
	if user == "" {
		user = img.User
	}
	return user != "" && !numericUser(user)
}

// imagePrep is what a start needs of an image: its runtime configuration
// (environment, entrypoint, command, working directory, user) and the
// chain id of its unpacked layers, the parent of a container's snapshot.
// Containerd.preps caches it by the digest of the image's target: reading
// it from the content store (the index, the platform's manifest and the
// config blob, twice, and the snapshotter's platforms) took 2–5 ms of
// every start. The digest names the content, so an entry never goes
// stale; layers removed since are found by the prepare (prepareSnapshot).
// Entries are read only (specOpts clones what it takes).
type imagePrep struct {
	config  ocispec.ImageConfig
	chainID digest.Digest
}

// maxDigestCache bounds a digestCache: past it the cache starts afresh.
const maxDigestCache = 256

// digestCache maps digests to what was read of the content they name. Its
// zero value is ready to use.
type digestCache[V any] struct {
	mu sync.Mutex
	m  map[digest.Digest]V
}

func (c *digestCache[V]) get(d digest.Digest) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[d]
	return v, ok
}

func (c *digestCache[V]) put(d digest.Digest, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxDigestCache {
		c.m = map[digest.Digest]V{}
	}
	c.m[d] = v
}

// prepareImage returns rec's imagePrep, unpacking the image for the
// snapshotter when it is not; fresh skips the cache (the layers were found
// missing).
func (c *Containerd) prepareImage(ctx context.Context, rec images.Image, fresh bool) (imagePrep, error) {
	if p, ok := c.preps.get(rec.Target.Digest); ok && !fresh {
		return p, nil
	}
	img := client.NewImage(c.client, rec)
	unpacked, err := img.IsUnpacked(ctx, c.cfg.Snapshotter)
	if err != nil {
		return imagePrep{}, fmt.Errorf("image %s: %w", rec.Name, err)
	}
	if !unpacked {
		if err := img.Unpack(ctx, c.cfg.Snapshotter); err != nil {
			return imagePrep{}, fmt.Errorf("unpack %s: %w", rec.Name, err)
		}
	}
	ociImg, err := img.Spec(ctx)
	if err != nil {
		return imagePrep{}, fmt.Errorf("config of image %s: %w", rec.Name, err)
	}
	diffIDs, err := img.RootFS(ctx)
	if err != nil {
		return imagePrep{}, fmt.Errorf("layers of image %s: %w", rec.Name, err)
	}
	p := imagePrep{config: ociImg.Config, chainID: identity.ChainID(diffIDs)}
	c.preps.put(rec.Target.Digest, p)
	return p, nil
}

// ioCreator turns a LogURI into the task's IO.
func ioCreator(logURI string) (cio.Creator, error) {
	if logURI == "" {
		return cio.NullIO, nil
	}
	u, err := url.Parse(logURI)
	if err != nil {
		return nil, fmt.Errorf("%w: LogURI: %s", ErrInvalidArgument, err.Error())
	}
	switch u.Scheme {
	case "binary", "file":
	default:
		return nil, fmt.Errorf("%w: LogURI scheme %q (want binary or file)", ErrInvalidArgument, u.Scheme)
	}
	if u.Host != "" || !filepath.IsAbs(u.Path) || filepath.Clean(u.Path) != u.Path {
		return nil, fmt.Errorf("%w: LogURI %q: want %s:///absolute/clean/path", ErrInvalidArgument, logURI, u.Scheme)
	}
	return cio.LogURI(u), nil
}

// BinaryLogURI builds a LogURI that has the shim start binary (an absolute
// path) with args as its log driver (see containerd's cio.BinaryIO).
func BinaryLogURI(binary string, args map[string]string) (string, error) {
	u, err := cio.LogURIGenerator("binary", binary, args)
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrInvalidArgument, err.Error())
	}
	return u.String(), nil
}

// FileLogURI builds a LogURI that has the shim append stdout and stderr
// to path (absolute).
func FileLogURI(path string) (string, error) {
	u, err := cio.LogURIGenerator("file", path, nil)
	if err != nil {
		return "", fmt.Errorf("%w: %s", ErrInvalidArgument, err.Error())
	}
	return u.String(), nil
}

// loadTask returns id's container and task.
func (c *Containerd) loadTask(ctx context.Context, id string) (client.Container, client.Task, error) {
	container, err := c.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, nil, notFound(err, ErrNotFound, "container "+id)
	}
	task, err := container.Task(ctx, nil)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil, fmt.Errorf("task of container %s: %w", id, ErrNotFound)
		}
		return nil, nil, fmt.Errorf("task of container %s: %w", id, err)
	}
	return container, task, nil
}

// Wait waits until id's task exits (returning at once if it has) and
// returns its exit status. It works on tasks started by another process,
// such as pcnoded before a restart. The task stays until Delete, so Wait
// may be called again, and Usage after it.
func (c *Containerd) Wait(ctx context.Context, id string) (_ ExitStatus, retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	oomEvent := c.watchOOM(subCtx, id)
	resp, err := c.client.TaskService().Wait(ctx, &tasks.WaitRequest{ContainerID: id})
	if err != nil {
		if ctx.Err() != nil {
			return ExitStatus{}, ctx.Err()
		}
		return ExitStatus{}, notFound(errgrpc.ToNative(err), ErrNotFound, "wait for "+id)
	}
	code, at := resp.GetExitStatus(), protobuf.FromTimestamp(resp.GetExitedAt())
	// One read of the cgroup's metrics gives both the OOM kills and the
	// usage the runner collects next.
	m, merr := c.taskMetrics(ctx, id)
	var usage *Usage
	if merr == nil {
		u := usageOf(m)
		usage = &u
	}
	oom, err := c.oomKilledFrom(ctx, id, m, merr)
	if err != nil {
		c.log.WarnContext(ctx, "reading OOM state", "task", id, "error", err)
	}
	if !oom {
		oom = oomEvent()
	}
	c.log.InfoContext(ctx, "container exited", "task", id, "code", code, "oom_killed", oom)
	return ExitStatus{Code: int(code), ExitedAt: at, OOMKilled: oom, Usage: usage}, nil
}

// Kill sends signal to id's task. Signalling a task that has exited is not
// an error.
func (c *Containerd) Kill(ctx context.Context, id string, signal syscall.Signal) (retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	_, task, err := c.loadTask(ctx, id)
	if err != nil {
		return err
	}
	if err := task.Kill(ctx, signal); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("signal %d to %s: %w", signal, id, err)
	}
	return nil
}

// Stop sends SIGTERM to id's task, waits up to grace for it to exit, then
// sends SIGKILL, and returns once it has exited. Stopping a task that has
// exited is not an error.
func (c *Containerd) Stop(ctx context.Context, id string, grace time.Duration) (retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	_, task, err := c.loadTask(ctx, id)
	if err != nil {
		return err
	}
	statusC, err := task.Wait(ctx)
	if err != nil {
		return notFound(err, ErrNotFound, "wait for "+id)
	}
	if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("SIGTERM to %s: %w", id, err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-statusC:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
	}
	c.log.InfoContext(ctx, "grace period over, killing", "task", id, "grace", grace)
	if err := task.Kill(ctx, syscall.SIGKILL, client.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("SIGKILL to %s: %w", id, err)
	}
	select {
	case <-statusC:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Delete removes id's task (killing it if it runs), its container and its
// snapshot. Deleting what does not exist is not an error.
func (c *Containerd) Delete(ctx context.Context, id string) (retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	// A task whose process has exited (the normal case: clean up follows
	// the exit) is deleted at once, without the kill the shim would carry
	// out as one more runc process (runc kill --all) only to learn that
	// nothing runs. A task that runs, or was created and never started, is
	// refused: it is killed, waited for and deleted then. A task whose
	// creation was cut off (containerd went away inside its create) is
	// deleted the same way: its shim keeps the id until the task service
	// deletes it, though the container shows no task.
	if _, err := c.client.TaskService().Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id}); err != nil {
		if err = errgrpc.ToNative(err); !errdefs.IsNotFound(err) {
			if kerr := c.killAndDelete(ctx, id); kerr != nil {
				return fmt.Errorf("delete task %s: %w (first try: %v)", id, kerr, err)
			}
		}
	}
	snapshotter := c.cfg.Snapshotter
	key := id
	if rec, err := c.client.ContainerService().Get(ctx, id); err == nil {
		if err := c.client.ContainerService().Delete(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete container %s: %w", id, err)
		}
		if rec.Snapshotter != "" && rec.SnapshotKey != "" {
			snapshotter, key = rec.Snapshotter, rec.SnapshotKey
		}
	} else if !errdefs.IsNotFound(err) {
		return fmt.Errorf("container %s: %w", id, err)
	}
	// The container's snapshot, or one a failed create left behind.
	if err := c.client.SnapshotService(snapshotter).Remove(ctx, key); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove snapshot %s: %w", key, err)
	}
	c.log.InfoContext(ctx, "container deleted", "task", id)
	return nil
}

// killAndDelete kills every process of id's running task, waits for its
// exit and deletes it.
func (c *Containerd) killAndDelete(ctx context.Context, id string) error {
	ts := c.client.TaskService()
	if _, err := ts.Kill(ctx, &tasks.KillRequest{ContainerID: id, Signal: uint32(syscall.SIGKILL), All: true}); err != nil {
		if err = errgrpc.ToNative(err); !errdefs.IsNotFound(err) {
			return fmt.Errorf("kill task %s: %w", id, err)
		}
	}
	if _, err := ts.Wait(ctx, &tasks.WaitRequest{ContainerID: id}); err != nil {
		if err = errgrpc.ToNative(err); !errdefs.IsNotFound(err) {
			return fmt.Errorf("wait for task %s: %w", id, err)
		}
	}
	if _, err := ts.Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id}); err != nil {
		if err = errgrpc.ToNative(err); !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
	}
	return nil
}

// Pids returns the host pids of every process in id's task.
func (c *Containerd) Pids(ctx context.Context, id string) (_ []int, retErr error) {
	defer c.markUnavailable(&retErr)
	ctx = c.ns(ctx)
	_, task, err := c.loadTask(ctx, id)
	if err != nil {
		return nil, err
	}
	ps, err := task.Pids(ctx)
	if err != nil {
		return nil, notFound(err, ErrNotFound, "pids of "+id)
	}
	out := make([]int, 0, len(ps))
	for _, p := range ps {
		out = append(out, int(p.Pid))
	}
	return out, nil
}
