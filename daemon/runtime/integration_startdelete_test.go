package runtime

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	tasks "github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/errdefs"

	"github.com/pcnode/pcnode/internal/testimage"
)

// TestIntegrationStartDeleteEdges covers what Start and Delete do on their
// own against containerd's services (containers.go): deleting a task that
// runs, and one created and never started; a snapshot an earlier start left
// under the id; an image whose unpacked layers went away after a start
// cached them; and that a delete leaves no snapshot.
func TestIntegrationStartDeleteEdges(t *testing.T) {
	c := newRuntime(t, Config{}, nil)
	img := pctestImage(t, c)
	ctx := t.Context()
	nctx := c.ns(ctx)
	sn := c.client.SnapshotService(c.cfg.Snapshotter)
	gone := func(t *testing.T, id string) {
		t.Helper()
		list, err := c.ListContainers(ctx)
		if err != nil || slices.ContainsFunc(list, func(ci ContainerInfo) bool { return ci.ID == id }) {
			t.Errorf("ListContainers() = %+v, %v, want no %s", list, err, id)
		}
		if _, err := sn.Stat(nctx, id); !errdefs.IsNotFound(err) {
			t.Errorf("snapshot %s after Delete: Stat = %v, want not found", id, err)
		}
		if _, err := c.client.TaskService().Get(nctx, &tasks.GetRequest{ContainerID: id}); !strings.Contains(errString(err), "not found") {
			t.Errorf("task %s after Delete: Get = %v, want not found", id, err)
		}
	}

	t.Run("delete running", func(t *testing.T) {
		id := newID(t, c)
		if _, err := c.Start(ctx, ContainerSpec{ID: id, Image: img.Name, Args: []string{"/pctest", "ignore-sigterm", "--", "sleep", "60"}}); err != nil {
			t.Fatalf("Start = %v", err)
		}
		begin := time.Now()
		if err := c.Delete(ctx, id); err != nil {
			t.Fatalf("Delete(running) = %v", err)
		}
		if d := time.Since(begin); d > 10*time.Second {
			t.Errorf("Delete(running) took %v", d)
		}
		gone(t, id)
	})

	t.Run("delete created never started", func(t *testing.T) {
		id := newID(t, c)
		spec := ContainerSpec{ID: id, Image: img.Name, Args: []string{"/pctest", "exit", "0"}}
		rec, err := c.lookupImage(nctx, img.Name)
		if err != nil {
			t.Fatal(err)
		}
		prep, err := c.prepareImage(nctx, rec, false)
		if err != nil {
			t.Fatal(err)
		}
		mounts, err := c.createContainer(nctx, &spec, rec, prep)
		if err != nil {
			t.Fatalf("createContainer = %v", err)
		}
		req := &tasks.CreateTaskRequest{ContainerID: id}
		for _, m := range mounts {
			req.Rootfs = append(req.Rootfs, &types.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
		}
		if _, err := c.client.TaskService().Create(nctx, req); err != nil {
			t.Fatalf("task create = %v", err)
		}
		list, err := c.ListContainers(ctx)
		if i := slices.IndexFunc(list, func(ci ContainerInfo) bool { return ci.ID == id }); err != nil || i < 0 || list[i].State != StateCreated {
			t.Fatalf("ListContainers() = %+v, %v, want %s created", list, err, id)
		}
		if err := c.Delete(ctx, id); err != nil {
			t.Fatalf("Delete(created) = %v", err)
		}
		gone(t, id)
	})

	t.Run("stale snapshot under the id", func(t *testing.T) {
		id := newID(t, c)
		if _, err := sn.Prepare(nctx, id, ""); err != nil {
			t.Fatalf("preparing a stale snapshot: %v", err)
		}
		st, _ := run(t, c, ContainerSpec{ID: id, Image: img.Name, Args: []string{"/pctest", "exit", "3"}})
		if st.Code != 3 {
			t.Fatalf("Wait = %+v, want exit 3 (the stale snapshot replaced by the image's)", st)
		}
		if err := c.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		gone(t, id)
	})

	t.Run("layers gone after a start", func(t *testing.T) {
		// An image with a layer of its own, so that no container of
		// another test stands on the layer this one removes.
		own := importImage(t, c, testimage.Image{Name: "pcnode.test/rt-layers-gone:1",
			Files: []testimage.File{{Path: "/layers-gone", Data: []byte("a layer of its own\n"), Mode: 0o644}}}, testimage.FormatOCI)
		first := newID(t, c)
		if st, _ := run(t, c, ContainerSpec{ID: first, Image: own.Name, Args: []string{"/pctest", "exit", "0"}}); st.Code != 0 {
			t.Fatalf("first run: Wait = %+v, want exit 0", st)
		}
		if err := c.Delete(ctx, first); err != nil {
			t.Fatal(err)
		}
		rec, err := c.lookupImage(nctx, own.Name)
		if err != nil {
			t.Fatal(err)
		}
		prep, err := c.prepareImage(nctx, rec, false) // cached by the first run
		if err != nil {
			t.Fatal(err)
		}
		if err := sn.Remove(nctx, prep.chainID.String()); err != nil {
			t.Fatalf("removing the image's top layer snapshot: %v", err)
		}
		st, _ := run(t, c, ContainerSpec{ID: newID(t, c), Image: own.Name, Args: []string{"/pctest", "exit", "4"}})
		if st.Code != 4 {
			t.Fatalf("Wait = %+v, want exit 4 (the image unpacked again)", st)
		}
		if _, err := sn.Stat(nctx, prep.chainID.String()); err != nil {
			t.Errorf("the image's layers after the start: Stat = %v, want them unpacked again", err)
		}
	})

	t.Run("a failed create leaves nothing", func(t *testing.T) {
		id := newID(t, c)
		// A user the image's /etc/passwd lacks fails the spec, after the
		// snapshot was prepared (the lease path: a user by name).
		_, err := c.Start(ctx, ContainerSpec{ID: id, Image: img.Name, User: "no-such-user", Args: []string{"/pctest", "exit", "0"}})
		if err == nil || errors.Is(err, ErrAlreadyExists) {
			t.Fatalf("Start(unknown user) = %v, want an error", err)
		}
		gone(t, id)
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
