package daemontest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/pcnode/pcnode/internal/testenv"
)

// ContainerdProc is a containerd of a test's own, which the test may stop,
// kill and start again (to see what pcnoded does while containerd is down).
// It has its own configuration, root, state and socket in a temporary
// directory, as deploy/dev/test.sh writes them, with CRI disabled; a
// restart uses the same directories, so that containerd finds its shims and
// their tasks again.
type ContainerdProc struct {
	// Address is containerd's gRPC socket.
	Address string
	// Dir holds config.toml, root/, state/, opt/ and containerd.log.
	Dir string

	logFile *os.File

	mu   sync.Mutex
	proc *process
}

// containerdReadyTimeout bounds how long Start waits for containerd to
// answer.
const containerdReadyTimeout = 30 * time.Second

// StartContainerd starts a private containerd for t and waits until it
// answers. When t ends, every task of every namespace is killed and
// deleted, containerd is stopped, every shim of it killed and what is still
// mounted below its directory unmounted. It skips t (or fails it under
// `make test`) without root or a containerd binary.
func StartContainerd(t testing.TB) *ContainerdProc {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Unavailable(t, "a private containerd needs root")
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		testenv.Unavailable(t, "no containerd binary: "+err.Error())
	}
	// Unix socket paths are limited to 108 bytes; test directories are long.
	dir, err := os.MkdirTemp("", "pcc-")
	if err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	c := &ContainerdProc{Address: filepath.Join(dir, "containerd.sock"), Dir: dir}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Address, c.Address+".ttrpc", filepath.Join(dir, "opt"))
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	if c.logFile, err = os.OpenFile(filepath.Join(dir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	t.Cleanup(func() { c.cleanup(t) })
	c.Start(t)
	return c
}

// Running reports whether containerd's process runs.
func (c *ContainerdProc) Running() bool {
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	return p.running()
}

// Start starts containerd (again) on the same directories and waits until
// it answers a version request.
func (c *ContainerdProc) Start(t testing.TB) {
	t.Helper()
	if c.Running() {
		t.Fatalf("daemontest: containerd at %s already runs", c.Address)
	}
	fmt.Fprintf(c.logFile, "==== daemontest: starting containerd %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("containerd", "--config", filepath.Join(c.Dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = c.logFile, c.logFile
	// containerd dies with the test process; its shims do not (they are
	// not its children once started), and cleanup kills them.
	p, err := startProcess(cmd)
	if err != nil {
		t.Fatalf("daemontest: start containerd: %v", err)
	}
	c.mu.Lock()
	c.proc = p
	c.mu.Unlock()
	if err := c.waitReady(t.Context(), p); err != nil {
		t.Fatalf("daemontest: containerd at %s: %v\n%s", c.Address, err, tail(c.log(), logTail))
	}
}

// waitReady polls containerd's version until it answers.
func (c *ContainerdProc) waitReady(ctx context.Context, p *process) error {
	deadline := time.Now().Add(containerdReadyTimeout)
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("containerd exited: %v", p.err)
		default:
		}
		if _, err := os.Stat(c.Address); err == nil {
			cl, err := containerd.New(c.Address, containerd.WithTimeout(time.Second))
			if err == nil {
				vctx, cancel := context.WithTimeout(ctx, time.Second)
				_, err = cl.Version(vctx)
				cancel()
				cl.Close()
				if err == nil {
					return nil
				}
			}
			last = err
		} else {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering after %v: %v", containerdReadyTimeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends containerd SIGTERM and waits for it to exit (as a service
// manager stops it for an upgrade); its shims and their tasks keep running.
func (c *ContainerdProc) Stop(t testing.TB) {
	t.Helper()
	if err := c.signalAndWait(syscall.SIGTERM, 20*time.Second); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Errorf("daemontest: stopping containerd: %v", err)
		}
	}
}

// Kill sends containerd SIGKILL and waits for it to exit.
func (c *ContainerdProc) Kill(t testing.TB) {
	t.Helper()
	if err := c.signalAndWait(syscall.SIGKILL, 20*time.Second); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Errorf("daemontest: killing containerd: %v", err)
		}
	}
}

func (c *ContainerdProc) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	return p.signalAndWait("containerd", sig, timeout)
}

func (c *ContainerdProc) log() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "containerd.log"))
	return string(b)
}

// cleanup kills and deletes every task (containerd started if it is down,
// so that it does so through the shims), stops containerd, kills the shims
// that are left, unmounts what is mounted below Dir and removes Dir.
func (c *ContainerdProc) cleanup(t testing.TB) {
	if !c.Running() {
		func() {
			defer func() { _ = recover() }()
			// A containerd that does not start again is not fatal here:
			// the shims are killed below in any case.
			c.startQuiet()
		}()
	}
	if c.Running() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := c.killTasks(ctx); err != nil {
			t.Logf("daemontest: killing the tasks of containerd %s: %v", c.Address, err)
		}
		cancel()
	}
	if err := c.signalAndWait(syscall.SIGTERM, 10*time.Second); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Logf("daemontest: stopping containerd %s: %v", c.Address, err)
		}
	}
	for _, pid := range shimsOf(c.Address) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	unmountBelow(c.Dir)
	if t.Failed() {
		t.Logf("daemontest: containerd log (%s, last %d KiB):\n%s", c.Address, logTail>>10, tail(c.log(), logTail))
	}
	c.logFile.Close()
	if err := os.RemoveAll(c.Dir); err != nil {
		t.Logf("daemontest: removing %s: %v", c.Dir, err)
	}
}

// startQuiet starts containerd again for cleanup, without a testing.TB.
func (c *ContainerdProc) startQuiet() {
	cmd := exec.Command("containerd", "--config", filepath.Join(c.Dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = c.logFile, c.logFile
	if err := cmd.Start(); err != nil {
		return
	}
	p := &process{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	c.mu.Lock()
	c.proc = p
	c.mu.Unlock()
	_ = c.waitReady(context.Background(), p)
}

// killTasks kills and deletes every task in every namespace.
func (c *ContainerdProc) killTasks(ctx context.Context) error {
	cl, err := containerd.New(c.Address, containerd.WithTimeout(5*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	nss, err := cl.NamespaceService().List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := cl.Containers(nctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ctr := range ctrs {
			task, err := ctr.Task(nctx, nil)
			if err != nil {
				continue
			}
			_ = task.Kill(nctx, syscall.SIGKILL, containerd.WithKillAll)
			if _, err := task.Delete(nctx, containerd.WithProcessKill); err != nil {
				errs = append(errs, fmt.Errorf("delete task %s/%s: %w", ns, ctr.ID(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// shimsOf returns the pids of the shims whose command line names address
// as their containerd ("-address <address>").
func shimsOf(address string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
		for i := 0; i+1 < len(args); i++ {
			if string(args[i]) == "-address" && string(args[i+1]) == address {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// unmountBelow lazily unmounts every mount point below dir, deepest first.
func unmountBelow(dir string) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	prefix := filepath.Clean(dir) + "/"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && strings.HasPrefix(fields[1], prefix) {
			points = append(points, fields[1])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, m := range points {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}
