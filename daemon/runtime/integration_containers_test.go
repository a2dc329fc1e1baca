package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/internal/testimage"
)

// pctestImage imports the default test image with an NVIDIA_VISIBLE_DEVICES
// of its own, as CUDA base images have.
func pctestImage(t *testing.T, c *Containerd) Image {
	t.Helper()
	return importImage(t, c, testimage.Image{Name: "pcnode.test/rt-run:1", Env: []string{"NVIDIA_VISIBLE_DEVICES=all"}}, testimage.FormatOCI)
}

func TestIntegrationRunWithMounts(t *testing.T) {
	c := newRuntime(t, Config{}, nil)
	img := pctestImage(t, c)
	in, out := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(in, "a.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(in, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "sub", "b.txt"), []byte("world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mounts := []Mount{{Source: in, Destination: "/data/in", ReadOnly: true}, {Source: out, Destination: "/data/out"}}

	spec := ContainerSpec{
		ID:     newID(t, c),
		Image:  "pcnode.test/rt-run:1",
		Args:   []string{"/pctest", "env", "--", "copy", "/data/in", "/data/out", "--", "ls", "/sys/class/net"},
		Env:    []string{"NVIDIA_VISIBLE_DEVICES=void", "GREETING=hello"},
		Mounts: mounts,
		Labels: map[string]string{"purpose": "test"},
	}
	st, logPath := run(t, c, spec)
	log := waitLog(t, logPath, "NVIDIA_VISIBLE_DEVICES=void\n", "GREETING=hello\n", "lo -> ", "total files=")
	if st.Code != 0 || st.OOMKilled || st.ExitedAt.IsZero() {
		t.Fatalf("Wait = %+v, want exit 0; log:\n%s", st, log)
	}
	for _, bad := range []string{"NVIDIA_VISIBLE_DEVICES=all", "eth0"} {
		if strings.Contains(log, bad) {
			t.Errorf("log holds %q (image env not overridden, or not network none):\n%s", bad, log)
		}
	}
	for rel, want := range map[string]string{"a.txt": "hello\n", "sub/b.txt": "world\n"} {
		got, err := os.ReadFile(filepath.Join(out, rel))
		if err != nil || string(got) != want {
			t.Errorf("output %s = %q, %v, want %q", rel, got, err, want)
		}
	}

	list, err := c.ListContainers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(list, func(ci ContainerInfo) bool { return ci.ID == spec.ID })
	if i < 0 {
		t.Fatalf("ListContainers() = %+v, lacks %s", list, spec.ID)
	}
	got := list[i]
	if got.TaskID != spec.ID || got.State != StateStopped || got.Exit == nil || got.Exit.Code != 0 ||
		got.Image != img.Name || got.Labels["purpose"] != "test" {
		t.Errorf("ListContainers()[%s] = %+v (exit %+v), want stopped, exit 0, image %s, labels", spec.ID, got, got.Exit, img.Name)
	}

	t.Run("inputs are read-only", func(t *testing.T) {
		st, log := runForStderr(t, c, ContainerSpec{
			Image:  img.Name,
			Args:   []string{"/pctest", "write-file", "/data/in/new.txt", "10"},
			Mounts: mounts,
		}, "read-only file system")
		if st.Code != 1 {
			t.Errorf("writing an input: exit %d, log %q; want exit 1 and read-only file system", st.Code, log)
		}
		if _, err := os.Stat(filepath.Join(in, "new.txt")); !os.IsNotExist(err) {
			t.Errorf("input dir got new.txt (stat: %v)", err)
		}
	})
	t.Run("read-only rootfs and user", func(t *testing.T) {
		st, log := runForStderr(t, c, ContainerSpec{
			Image:          img.Name,
			Args:           []string{"/pctest", "id", "--", "write-file", "/tmp/x", "1"},
			User:           "nobody",
			ReadOnlyRootfs: true,
		}, "uid=65534 gid=65534", "read-only file system")
		if st.Code != 1 {
			t.Errorf("exit %d, log %q; want uid 65534 and a read-only root", st.Code, log)
		}
	})
}

func TestIntegrationExitAndOOM(t *testing.T) {
	c := newRuntime(t, Config{}, nil)
	img := pctestImage(t, c)
	tests := []struct {
		name  string
		args  []string
		limit int64
		want  ExitStatus
	}{
		{"exit 3", []string{"/pctest", "exit", "3"}, 0, ExitStatus{Code: 3}},
		{"exit 137 is no OOM", []string{"/pctest", "exit", "137"}, 32 << 20, ExitStatus{Code: 137}},
		{"within limit", []string{"/pctest", "alloc", "16Mi"}, 64 << 20, ExitStatus{Code: 0}},
		{"over limit", []string{"/pctest", "alloc", "200Mi", "--", "sleep", "5"}, 32 << 20, ExitStatus{Code: 137, OOMKilled: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, logPath := run(t, c, ContainerSpec{Image: img.Name, Args: tt.args, MemoryLimitBytes: tt.limit})
			st.ExitedAt = time.Time{}
			// The usage read with the exit status: the cgroup's, so
			// the process's memory shows.
			if st.Usage == nil || st.Usage.PeakMemoryBytes <= 0 {
				t.Errorf("Wait: Usage = %+v, want the exited container's usage", st.Usage)
			}
			st.Usage = nil
			if diff := cmp.Diff(tt.want, st); diff != "" {
				b, _ := os.ReadFile(logPath)
				t.Errorf("Wait (-want +got):\n%s\nlog:\n%s", diff, b)
			}
		})
	}
}

func TestIntegrationStopKillUsage(t *testing.T) {
	c := newRuntime(t, Config{}, nil)
	img := pctestImage(t, c)
	ctx := t.Context()
	start := func(t *testing.T, spec ContainerSpec) string {
		t.Helper()
		spec.ID = newID(t, c)
		spec.Image = img.Name
		if _, err := c.Start(ctx, spec); err != nil {
			t.Fatalf("Start(%+v) = %v", spec, err)
		}
		return spec.ID
	}
	t.Run("stop after grace", func(t *testing.T) {
		id := start(t, ContainerSpec{Args: []string{"/pctest", "ignore-sigterm", "--", "sleep", "60"}})
		time.Sleep(300 * time.Millisecond) // let it install its handler
		begin := time.Now()
		if err := c.Stop(ctx, id, time.Second); err != nil {
			t.Fatalf("Stop(%q, 1s) = %v", id, err)
		}
		if d := time.Since(begin); d < time.Second || d > 5*time.Second {
			t.Errorf("Stop(%q, 1s) took %v, want about 1s", id, d)
		}
		st, err := c.Wait(ctx, id)
		if err != nil || st.Code != 137 || st.OOMKilled {
			t.Errorf("Wait after Stop = %+v, %v, want 137 without OOM", st, err)
		}
		if err := c.Stop(ctx, id, time.Second); err != nil {
			t.Errorf("Stop(stopped) = %v, want nil", err)
		}
		if err := c.Kill(ctx, id, syscall.SIGTERM); err != nil {
			t.Errorf("Kill(stopped) = %v, want nil", err)
		}
	})
	t.Run("stop on SIGTERM", func(t *testing.T) {
		id := start(t, ContainerSpec{Args: []string{"/pctest", "sleep", "60"}})
		time.Sleep(300 * time.Millisecond)
		begin := time.Now()
		if err := c.Stop(ctx, id, 30*time.Second); err != nil {
			t.Fatalf("Stop(%q, 30s) = %v", id, err)
		}
		if d := time.Since(begin); d > 5*time.Second {
			t.Errorf("Stop(%q) of a task that handles SIGTERM took %v", id, d)
		}
		if st, err := c.Wait(ctx, id); err != nil || st.Code != 143 {
			t.Errorf("Wait after Stop = %+v, %v, want 143", st, err)
		}
	})
	t.Run("kill", func(t *testing.T) {
		id := start(t, ContainerSpec{Args: []string{"/pctest", "sleep", "60"}})
		if err := c.Kill(ctx, id, syscall.SIGKILL); err != nil {
			t.Fatalf("Kill(%q, SIGKILL) = %v", id, err)
		}
		if st, err := c.Wait(ctx, id); err != nil || st.Code != 137 || st.OOMKilled {
			t.Errorf("Wait after SIGKILL = %+v, %v, want 137 without OOM", st, err)
		}
	})
	t.Run("usage", func(t *testing.T) {
		id := start(t, ContainerSpec{Args: []string{"/pctest", "spin", "1s", "--", "alloc", "48Mi"}, CPUQuotaMillis: 1000, PidsLimit: 64})
		running, err := c.Usage(ctx, id)
		if err != nil {
			t.Fatalf("Usage(running) = %v", err)
		}
		st, err := c.Wait(ctx, id)
		if err != nil || st.Code != 0 {
			t.Fatalf("Wait = %+v, %v, want 0", st, err)
		}
		u, err := c.Usage(ctx, id)
		if err != nil {
			t.Fatalf("Usage(exited) = %v", err)
		}
		// spin burns CPU for 1s of wall time; on a loaded machine it gets
		// much less than that, so only ask for some.
		if u.PeakMemoryBytes < 48<<20 || u.CPUTime < 10*time.Millisecond || u.CPUTime < running.CPUTime {
			t.Errorf("Usage = %+v (while running %+v), want peak >= 48Mi and some CPU time", u, running)
		}
	})
	t.Run("unknown container", func(t *testing.T) {
		for name, err := range map[string]error{
			"Wait":  func() error { _, err := c.Wait(ctx, "no-such-task"); return err }(),
			"Usage": func() error { _, err := c.Usage(ctx, "no-such-task"); return err }(),
			"Kill":  c.Kill(ctx, "no-such-task", syscall.SIGTERM),
			"Stop":  c.Stop(ctx, "no-such-task", time.Second),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("%s(no-such-task) = %v, want ErrNotFound", name, err)
			}
		}
		if err := c.Delete(ctx, "no-such-task"); err != nil {
			t.Errorf("Delete(no-such-task) = %v, want nil", err)
		}
	})
}

func TestIntegrationReattach(t *testing.T) {
	keeper := newRuntime(t, Config{}, nil) // cleans up
	first := newRuntime(t, Config{}, nil)
	img := pctestImage(t, first)
	ctx := t.Context()
	id := newID(t, keeper)
	logPath := filepath.Join(t.TempDir(), "task.log")
	uri, _ := FileLogURI(logPath)
	if _, err := first.Start(ctx, ContainerSpec{ID: id, Image: img.Name, Args: []string{"/pctest", "sleep", "2", "--", "echo", "done", "--", "exit", "5"}, LogURI: uri}); err != nil {
		t.Fatalf("Start = %v", err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}

	// A new connection, as pcnoded has after a restart.
	second := newRuntime(t, Config{}, nil)
	list, err := second.ListContainers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(list, func(ci ContainerInfo) bool { return ci.ID == id })
	if i < 0 || list[i].State != StateRunning || list[i].PID == 0 || list[i].Exit != nil {
		t.Fatalf("ListContainers() = %+v, want %s running", list, id)
	}
	st, err := second.Wait(ctx, id)
	if err != nil || st.Code != 5 {
		t.Fatalf("Wait from a new client = %+v, %v, want exit 5", st, err)
	}
	waitLog(t, logPath, "done\n") // written after the first client left
	if err := second.Delete(ctx, id); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if err := second.Delete(ctx, id); err != nil {
		t.Fatalf("Delete twice = %v, want nil", err)
	}
	list, err = second.ListContainers(ctx)
	if err != nil || slices.ContainsFunc(list, func(ci ContainerInfo) bool { return ci.ID == id }) {
		t.Fatalf("ListContainers() after Delete = %+v, %v, want no %s", list, err, id)
	}
	if _, err := second.Wait(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Wait after Delete = %v, want ErrNotFound", err)
	}
}

func TestIntegrationStartErrors(t *testing.T) {
	c := newRuntime(t, Config{CDISpecDirs: []string{t.TempDir()}}, nil)
	img := pctestImage(t, c)
	ctx := t.Context()

	if _, err := c.Start(ctx, ContainerSpec{ID: newID(t, c), Image: "pcnode.test/absent:1"}); !errors.Is(err, ErrImageNotFound) {
		t.Errorf("Start(absent image) = %v, want ErrImageNotFound", err)
	}
	if _, err := c.Start(ctx, ContainerSpec{ID: "bad/id", Image: img.Name}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Start(bad id) = %v, want ErrInvalidArgument", err)
	}

	id := newID(t, c)
	gpu := ContainerSpec{ID: id, Image: img.Name, Args: []string{"/pctest", "exit", "0"}, CDIDevices: []string{"nvidia.com/gpu=GPU-none"}}
	if _, err := c.Start(ctx, gpu); !errors.Is(err, ErrDeviceUnavailable) {
		t.Fatalf("Start(unknown CDI device) = %v, want ErrDeviceUnavailable", err)
	}
	list, err := c.ListContainers(ctx)
	if err != nil || slices.ContainsFunc(list, func(ci ContainerInfo) bool { return ci.ID == id }) {
		t.Fatalf("ListContainers() after failed start = %+v, %v, want no %s", list, err, id)
	}

	// The id is free again, and a second start of a running one is refused
	// without touching it.
	running := ContainerSpec{ID: id, Image: img.Name, Args: []string{"/pctest", "sleep", "2", "--", "exit", "4"}}
	if _, err := c.Start(ctx, running); err != nil {
		t.Fatalf("Start after failed start = %v", err)
	}
	if _, err := c.Start(ctx, running); !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("Start(same id) = %v, want ErrAlreadyExists", err)
	}
	if st, err := c.Wait(ctx, id); err != nil || st.Code != 4 {
		t.Fatalf("Wait(first) = %+v, %v, want 4", st, err)
	}
}

func TestIntegrationCDIDevices(t *testing.T) {
	dir := t.TempDir()
	nodes := t.TempDir()
	for i, name := range []string{"gpu0", "gpu1"} {
		// Character devices like /dev/null and /dev/zero, under other names.
		if err := syscall.Mknod(filepath.Join(nodes, name), syscall.S_IFCHR|0o666, int((1<<8)|[]int{3, 5}[i])); err != nil {
			t.Fatalf("mknod: %v", err)
		}
	}
	spec := `cdiVersion: "0.6.0"
kind: nvidia.com/gpu
devices:
  - name: GPU-aaaa
    containerEdits:
      env: ["PCNODE_FAKE_GPU=aaaa"]
      deviceNodes:
        - path: /dev/pcnode-gpu0
          hostPath: ` + filepath.Join(nodes, "gpu0") + `
  - name: GPU-bbbb
    containerEdits:
      env: ["PCNODE_FAKE_GPU=bbbb"]
      deviceNodes:
        - path: /dev/pcnode-gpu1
          hostPath: ` + filepath.Join(nodes, "gpu1") + `
`
	if err := os.WriteFile(filepath.Join(dir, "fake-gpu.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newRuntime(t, Config{CDISpecDirs: []string{dir}}, nil)
	img := pctestImage(t, c)
	st, logPath := run(t, c, ContainerSpec{
		Image:      img.Name,
		Args:       []string{"/pctest", "env", "--", "ls", "/dev", "--", "cat", "/dev/pcnode-gpu0"},
		Env:        []string{"NVIDIA_VISIBLE_DEVICES=GPU-aaaa"},
		CDIDevices: []string{"nvidia.com/gpu=GPU-aaaa"},
	})
	log := waitLog(t, logPath, "PCNODE_FAKE_GPU=aaaa\n", "NVIDIA_VISIBLE_DEVICES=GPU-aaaa\n", " pcnode-gpu0\n", "total files=")
	if st.Code != 0 {
		t.Fatalf("exit %d, want 0; log:\n%s", st.Code, log)
	}
	if strings.Contains(log, "pcnode-gpu1") || strings.Contains(log, "bbbb") {
		t.Errorf("log shows the device not asked for:\n%s", log)
	}
}
