package runtime

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
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
	img := client.NewImage(c.client, rec)
	unpacked, err := img.IsUnpacked(ctx, c.cfg.Snapshotter)
	if err != nil {
		return Started{}, fmt.Errorf("image %s: %w", rec.Name, err)
	}
	if !unpacked {
		if err := img.Unpack(ctx, c.cfg.Snapshotter); err != nil {
			return Started{}, fmt.Errorf("unpack %s: %w", rec.Name, err)
		}
	}
	imgConfig, ok := c.configs.get(rec.Target.Digest)
	if !ok {
		ociImg, err := img.Spec(ctx)
		if err != nil {
			return Started{}, fmt.Errorf("config of image %s: %w", rec.Name, err)
		}
		imgConfig = ociImg.Config
		c.configs.put(rec.Target.Digest, imgConfig)
	}
	opts := specOpts(&spec, imgConfig, specOptions{limitSwap: c.limitSwap, cdiSpecDirs: c.cfg.CDISpecDirs, compatSyscalls: c.cfg.Allow32BitSyscalls})

	log := c.log.With("task", spec.ID, "image", rec.Name)
	if err := c.claimID(ctx, spec.ID); err != nil {
		return Started{}, err
	}
	container, err := c.client.NewContainer(ctx, spec.ID,
		client.WithImage(img),
		client.WithSnapshotter(c.cfg.Snapshotter),
		client.WithNewSnapshot(spec.ID, img),
		client.WithRuntime(c.cfg.Runtime, nil),
		client.WithContainerLabels(spec.containerLabels()),
		client.WithNewSpec(opts...),
	)
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return Started{}, fmt.Errorf("container %s: %w", spec.ID, ErrAlreadyExists)
		}
		// The snapshot NewContainer prepared is only leased; remove it now
		// rather than at the next garbage collection, so the id is free.
		if derr := c.Delete(context.WithoutCancel(ctx), spec.ID); derr != nil {
			log.WarnContext(ctx, "cleaning up after failed create", "error", derr)
		}
		return Started{}, fmt.Errorf("create container %s: %w", spec.ID, err)
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
	task, err := container.NewTask(ctx, creator)
	if err != nil {
		return cleanup(fmt.Errorf("create task %s: %w", spec.ID, err))
	}
	if err := task.Start(ctx); err != nil {
		return cleanup(fmt.Errorf("start task %s: %w", spec.ID, err))
	}
	log.InfoContext(ctx, "container started", "pid", task.Pid())
	return Started{PID: task.Pid(), ImageDigest: rec.Target.Digest.String()}, nil
}

// maxImageConfigs bounds imageConfigs: past it the cache starts afresh.
const maxImageConfigs = 256

// imageConfigs caches the runtime configuration (environment, entrypoint,
// command, working directory, user) of the images Start ran, by the
// digest of the image's target. The digest names the content, so an entry
// never goes stale; reading it from the content store (the index, the
// platform's manifest and the config blob) took 2–5 ms of every start.
// Its zero value is ready to use; entries are read only (specOpts clones
// what it takes).
type imageConfigs struct {
	mu sync.Mutex
	m  map[digest.Digest]ocispec.ImageConfig
}

func (c *imageConfigs) get(d digest.Digest) (ocispec.ImageConfig, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg, ok := c.m[d]
	return cfg, ok
}

func (c *imageConfigs) put(d digest.Digest, cfg ocispec.ImageConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxImageConfigs {
		c.m = map[digest.Digest]ocispec.ImageConfig{}
	}
	c.m[d] = cfg
}

// claimID fails with ErrAlreadyExists when a container id exists, and
// removes a snapshot an earlier failed start left under the id's key (a
// snapshot keyed by a container id belongs to that container or to none).
func (c *Containerd) claimID(ctx context.Context, id string) error {
	_, err := c.client.LoadContainer(ctx, id)
	switch {
	case err == nil:
		return fmt.Errorf("container %s: %w", id, ErrAlreadyExists)
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("container %s: %w", id, err)
	}
	if err := c.client.SnapshotService(c.cfg.Snapshotter).Remove(ctx, id); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("remove stale snapshot %s: %w", id, err)
	}
	return nil
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
	container, task, err := c.loadTask(ctx, id)
	if err != nil {
		return ExitStatus{}, err
	}
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	oomEvent := c.watchOOM(subCtx, id)
	statusC, err := task.Wait(ctx)
	if err != nil {
		return ExitStatus{}, notFound(err, ErrNotFound, "wait for "+id)
	}
	var st client.ExitStatus
	select {
	case st = <-statusC:
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
	code, at, err := st.Result()
	if err != nil {
		return ExitStatus{}, fmt.Errorf("wait for %s: %w", id, err)
	}
	// One read of the cgroup's metrics gives both the OOM kills and the
	// usage the runner collects next.
	m, merr := taskMetrics(ctx, task)
	var usage *Usage
	if merr == nil {
		u := usageOf(m)
		usage = &u
	}
	oom, err := c.oomKilledFrom(ctx, container, task, m, merr)
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
	container, err := c.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		// A snapshot a failed create left behind.
		if err := c.client.SnapshotService(c.cfg.Snapshotter).Remove(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove snapshot %s: %w", id, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	task, err := container.Task(ctx, nil)
	switch {
	case err == nil:
		// A task whose process has exited (the normal case: clean up
		// follows the exit) is deleted without a kill, which the shim
		// would carry out as one more runc process (runc kill --all)
		// only to learn that nothing runs. A stopped task never runs
		// again, so the status cannot go stale.
		var opts []client.ProcessDeleteOpts
		if st, err := task.Status(ctx); err != nil || st.Status != client.Stopped {
			opts = append(opts, client.WithProcessKill)
		}
		if _, err := task.Delete(ctx, opts...); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("task of container %s: %w", id, err)
	default:
		// containerd may still hold the shim of a task whose creation was
		// cut off (containerd went away inside NewTask): its state is "not
		// created", so the container shows no task, but the shim keeps the
		// id until the task service deletes it.
		if _, err := c.client.TaskService().Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id}); err != nil && status.Code(err) != codes.NotFound {
			return fmt.Errorf("delete task %s: %w", id, err)
		}
	}
	if err := container.Delete(ctx, client.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	c.log.InfoContext(ctx, "container deleted", "task", id)
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
