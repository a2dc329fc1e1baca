package daemon

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/pcnode/pcnode/daemon/runtime"
)

// fakeRuntime is an in-process containerRuntime for the lifecycle's unit
// tests: containers that are created, running or stopped, with exit
// statuses the test sets, errors injected per call, and a log of the calls
// made so that a test can assert "started once".
type fakeRuntime struct {
	mu         sync.Mutex
	images     map[string]runtime.Image
	containers map[string]*fakeContainer
	calls      []string           // "Method id", in order
	errs       map[string][]error // by "Method" or "Method id": returned by the next calls, first first
	usage      map[string]runtime.Usage
	// autoExit, when set for an id, stops its container with that status
	// as soon as it starts.
	autoExit map[string]runtime.ExitStatus
	// usageHook, when set, runs at the start of every Usage call, without
	// the lock: a test blocks there to land a detach inside collect.
	usageHook func(ctx context.Context, id string)
	pid       uint32
}

var _ containerRuntime = (*fakeRuntime)(nil)

type fakeContainer struct {
	spec    runtime.ContainerSpec
	state   runtime.State
	exit    runtime.ExitStatus
	exited  chan struct{} // closed when state becomes stopped
	created time.Time
	pid     uint32
}

func newFakeRuntime(images ...string) *fakeRuntime {
	f := &fakeRuntime{
		images:     map[string]runtime.Image{},
		containers: map[string]*fakeContainer{},
		errs:       map[string][]error{},
		usage:      map[string]runtime.Usage{},
		autoExit:   map[string]runtime.ExitStatus{},
		pid:        1000,
	}
	for i, ref := range images {
		f.images[ref] = runtime.Image{Name: ref, Digest: fmt.Sprintf("sha256:%064x", i+1)}
	}
	return f
}

// failNext makes the next call of method (on id, when id is not empty)
// return err.
func (f *fakeRuntime) failNext(method, id string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := method
	if id != "" {
		key += " " + id
	}
	f.errs[key] = append(f.errs[key], err)
}

// call logs a call and returns the error injected for it, if any.
// f.mu is held.
func (f *fakeRuntime) call(method, id string) error {
	f.calls = append(f.calls, method+" "+id)
	for _, key := range []string{method + " " + id, method} {
		if q := f.errs[key]; len(q) > 0 {
			f.errs[key] = q[1:]
			return q[0]
		}
	}
	return nil
}

// count returns how often method was called on id.
func (f *fakeRuntime) count(method, id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == method+" "+id {
			n++
		}
	}
	return n
}

// state returns id's container state, or "" when there is none.
func (f *fakeRuntime) state(id string) runtime.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.containers[id]; c != nil {
		return c.state
	}
	return ""
}

// exitContainer stops id's running container with status.
func (f *fakeRuntime) exitContainer(id string, st runtime.ExitStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.containers[id]; c != nil {
		f.stopLocked(c, st)
	}
}

func (f *fakeRuntime) stopLocked(c *fakeContainer, st runtime.ExitStatus) {
	if c.state == runtime.StateStopped {
		return
	}
	if st.ExitedAt.IsZero() {
		st.ExitedAt = time.Now()
	}
	c.state, c.exit = runtime.StateStopped, st
	close(c.exited)
}

// addContainer puts a container in state st, as an earlier daemon left it
// (a created-only one, or a started one that is running or stopped with
// exit).
func (f *fakeRuntime) addContainer(id string, st runtime.State, exit runtime.ExitStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pid++
	c := &fakeContainer{spec: runtime.ContainerSpec{ID: id}, state: runtime.StateCreated, exited: make(chan struct{}), created: time.Now(), pid: f.pid}
	f.containers[id] = c
	switch st {
	case runtime.StateRunning:
		c.state = runtime.StateRunning
	case runtime.StateStopped:
		c.state = runtime.StateRunning
		f.stopLocked(c, exit)
	}
}

func (f *fakeRuntime) Version(ctx context.Context) (runtime.Version, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return runtime.Version{Version: "fake"}, f.call("Version", "")
}

func (f *fakeRuntime) Import(ctx context.Context, r io.Reader, opts runtime.ImportOptions) ([]runtime.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return nil, f.call("Import", "")
}

func (f *fakeRuntime) SweepImports(ctx context.Context) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return 0, f.call("SweepImports", "")
}

func (f *fakeRuntime) Pull(ctx context.Context, ref string, auth *runtime.Auth, progress func(runtime.Progress)) (runtime.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Pull", ref); err != nil {
		return runtime.Image{}, err
	}
	return runtime.Image{}, fmt.Errorf("pull %s: %w", ref, runtime.ErrImageNotFound)
}

func (f *fakeRuntime) ListImages(ctx context.Context) ([]runtime.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ListImages", ""); err != nil {
		return nil, err
	}
	var out []runtime.Image
	for _, img := range f.images {
		out = append(out, img)
	}
	return out, nil
}

func (f *fakeRuntime) GetImage(ctx context.Context, ref string) (runtime.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("GetImage", ref); err != nil {
		return runtime.Image{}, err
	}
	img, ok := f.images[ref]
	if !ok {
		return runtime.Image{}, fmt.Errorf("image %s: %w", ref, runtime.ErrImageNotFound)
	}
	return img, nil
}

func (f *fakeRuntime) RemoveImage(ctx context.Context, ref string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("RemoveImage", ref); err != nil {
		return err
	}
	delete(f.images, ref)
	return nil
}

func (f *fakeRuntime) ReadImageFile(ctx context.Context, ref, file string, maxBytes int64) ([]byte, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return nil, "", f.call("ReadImageFile", ref)
}

// Start creates the container (calling spec.AfterCreate) and starts it;
// on an injected error nothing is left behind, as runtime.Start promises.
func (f *fakeRuntime) Start(ctx context.Context, spec runtime.ContainerSpec) (runtime.Started, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Start", spec.ID); err != nil {
		return runtime.Started{}, err
	}
	if _, ok := f.containers[spec.ID]; ok {
		return runtime.Started{}, fmt.Errorf("container %s: %w", spec.ID, runtime.ErrAlreadyExists)
	}
	img, ok := f.images[spec.Image]
	if !ok {
		return runtime.Started{}, fmt.Errorf("image %s: %w", spec.Image, runtime.ErrImageNotFound)
	}
	f.pid++
	c := &fakeContainer{spec: spec, state: runtime.StateCreated, exited: make(chan struct{}), created: time.Now(), pid: f.pid}
	f.containers[spec.ID] = c
	if spec.AfterCreate != nil {
		spec.AfterCreate()
	}
	c.state = runtime.StateRunning
	if st, ok := f.autoExit[spec.ID]; ok {
		f.stopLocked(c, st)
	}
	return runtime.Started{PID: c.pid, ImageDigest: img.Digest}, nil
}

func (f *fakeRuntime) container(id string) (*fakeContainer, error) {
	c := f.containers[id]
	if c == nil {
		return nil, fmt.Errorf("container %s: %w", id, runtime.ErrNotFound)
	}
	return c, nil
}

func (f *fakeRuntime) Wait(ctx context.Context, id string) (runtime.ExitStatus, error) {
	f.mu.Lock()
	if err := f.call("Wait", id); err != nil {
		f.mu.Unlock()
		return runtime.ExitStatus{}, err
	}
	c, err := f.container(id)
	if err == nil && c.state == runtime.StateCreated {
		err = fmt.Errorf("task of container %s: %w", id, runtime.ErrNotFound)
	}
	f.mu.Unlock()
	if err != nil {
		return runtime.ExitStatus{}, err
	}
	select {
	case <-c.exited:
	case <-ctx.Done():
		return runtime.ExitStatus{}, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return c.exit, nil
}

func (f *fakeRuntime) Kill(ctx context.Context, id string, signal syscall.Signal) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Kill", id); err != nil {
		return err
	}
	c, err := f.container(id)
	if err != nil {
		return err
	}
	f.stopLocked(c, runtime.ExitStatus{Code: 128 + int(signal)})
	return nil
}

func (f *fakeRuntime) Stop(ctx context.Context, id string, grace time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Stop", id); err != nil {
		return err
	}
	c, err := f.container(id)
	if err != nil {
		return err
	}
	f.stopLocked(c, runtime.ExitStatus{Code: 143})
	return nil
}

func (f *fakeRuntime) Usage(ctx context.Context, id string) (runtime.Usage, error) {
	f.mu.Lock()
	hook := f.usageHook
	f.mu.Unlock()
	if hook != nil {
		hook(ctx, id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Usage", id); err != nil {
		return runtime.Usage{}, err
	}
	if _, err := f.container(id); err != nil {
		return runtime.Usage{}, err
	}
	return f.usage[id], nil
}

// Delete removes the container whatever its state; deleting what does not
// exist is not an error.
func (f *fakeRuntime) Delete(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Delete", id); err != nil {
		return err
	}
	if c := f.containers[id]; c != nil {
		f.stopLocked(c, runtime.ExitStatus{Code: 137})
		delete(f.containers, id)
	}
	return nil
}

func (f *fakeRuntime) Pids(ctx context.Context, id string) ([]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Pids", id); err != nil {
		return nil, err
	}
	c, err := f.container(id)
	if err != nil {
		return nil, err
	}
	return []int{int(c.pid)}, nil
}

func (f *fakeRuntime) ListContainers(ctx context.Context) ([]runtime.ContainerInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ListContainers", ""); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(f.containers))
	for id := range f.containers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []runtime.ContainerInfo
	for _, id := range ids {
		c := f.containers[id]
		ci := runtime.ContainerInfo{ID: id, TaskID: id, Image: c.spec.Image, Created: c.created, State: c.state}
		if c.state != runtime.StateCreated {
			ci.PID = c.pid
		}
		if c.state == runtime.StateStopped {
			exit := c.exit
			ci.Exit = &exit
		}
		out = append(out, ci)
	}
	return out, nil
}

func (f *fakeRuntime) Close() error { return nil }
