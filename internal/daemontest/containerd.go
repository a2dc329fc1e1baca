package daemontest

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
)

// Containerd returns a containerd client of the daemon's containerd and a
// context in the daemon's namespace, both ending with t; for tests that
// check what pcnoded did to containerd (a container still running while
// the daemon is down).
func (d *Daemon) Containerd(t testing.TB) (context.Context, *containerd.Client) {
	t.Helper()
	c, err := containerd.New(d.ContainerdAddress, containerd.WithDefaultNamespace(d.Namespace))
	if err != nil {
		t.Fatalf("daemontest: containerd client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return namespaces.WithNamespace(t.Context(), d.Namespace), c
}

// ContainerStatus returns the status of the containerd task of the
// container with id (pcnoded names a task's container after the task id),
// or "" when there is no such container or task.
func (d *Daemon) ContainerStatus(t testing.TB, id string) containerd.ProcessStatus {
	t.Helper()
	ctx, c := d.Containerd(t)
	ctr, err := c.LoadContainer(ctx, id)
	if err != nil {
		return ""
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		return ""
	}
	st, err := task.Status(ctx)
	if err != nil {
		return ""
	}
	return st.Status
}

// cleanupNamespace removes everything pcnoded (or a test) left in ns: tasks
// are killed, containers deleted with their snapshots, leases and images
// deleted, remaining content and snapshots (of snapshotter; "": the
// default) removed, then the namespace.
func cleanupNamespace(ctx context.Context, address, ns, snapshotter string) error {
	c, err := containerd.New(address, containerd.WithDefaultNamespace(ns), containerd.WithTimeout(10*time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx = namespaces.WithNamespace(ctx, ns)
	var errs []error
	keep := func(err error) {
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}

	ctrs, err := c.Containers(ctx)
	keep(err)
	for _, ctr := range ctrs {
		if task, err := ctr.Task(ctx, nil); err == nil {
			if ch, err := task.Wait(ctx); err == nil {
				_ = task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll)
				select {
				case <-ch:
				case <-time.After(10 * time.Second):
				}
			}
			_, err := task.Delete(ctx, containerd.WithProcessKill)
			keep(err)
		}
		keep(ctr.Delete(ctx, containerd.WithSnapshotCleanup))
	}

	ls, err := c.LeasesService().List(ctx)
	keep(err)
	for _, l := range ls {
		keep(c.LeasesService().Delete(ctx, l, leases.SynchronousDelete))
	}
	imgs, err := c.ImageService().List(ctx)
	keep(err)
	for i, img := range imgs {
		opts := []images.DeleteOpt{}
		if i == len(imgs)-1 {
			opts = append(opts, images.SynchronousDelete())
		}
		keep(c.ImageService().Delete(ctx, img.Name, opts...))
	}

	cs := c.ContentStore()
	var blobs []content.Info
	keep(cs.Walk(ctx, func(info content.Info) error {
		blobs = append(blobs, info)
		return nil
	}))
	for _, b := range blobs {
		keep(cs.Delete(ctx, b.Digest))
	}
	keep(removeSnapshots(ctx, c.SnapshotService(snapshotter)))

	if err := c.NamespaceService().Delete(ctx, ns); err != nil && !errdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("delete namespace: %w", err))
	}
	return errors.Join(errs...)
}

// removeSnapshots removes every snapshot, children before parents.
func removeSnapshots(ctx context.Context, sn snapshots.Snapshotter) error {
	for range 32 {
		var infos []snapshots.Info
		if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			infos = append(infos, info)
			return nil
		}); err != nil {
			return err
		}
		if len(infos) == 0 {
			return nil
		}
		parents := map[string]bool{}
		for _, i := range infos {
			parents[i.Parent] = true
		}
		for _, i := range infos {
			if !parents[i.Name] {
				if err := sn.Remove(ctx, i.Name); err != nil && !errdefs.IsNotFound(err) {
					return err
				}
			}
		}
	}
	return fmt.Errorf("snapshots left after 32 rounds")
}
