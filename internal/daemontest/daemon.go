package daemontest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/testenv"
)

// Timeouts of the daemon's process life.
const (
	// StartTimeout is how long Start waits for the health check to serve.
	StartTimeout = 60 * time.Second
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout = 20 * time.Second
	// logTail is how much of pcnoded's log a failed test prints.
	logTail = 64 << 10
)

// EnvLogDir names a directory into which every test's pcnoded log is
// copied (as <namespace>.log) when the test ends, for debugging.
const EnvLogDir = "PCNODE_TEST_DAEMON_LOG_DIR"

// Options change how Start runs pcnoded.
type Options struct {
	// Configure, when set, edits the configuration before it is written.
	Configure func(*config.Config)
	// DataRoots is how many data root directories to create and configure
	// (Daemon.DataRoots). 0: one.
	DataRoots int
	// LogLevel is passed as --log-level. Empty: "debug", so that tests that
	// look for secrets in the log see everything.
	LogLevel string
	// Args are extra command-line arguments, after --config and --log-level.
	Args []string
	// NoRace runs a pcnoded built without the race detector, for tests of
	// wall-clock bounds. The logging binary the shim starts for every
	// container is pcnode-logd, always built without it; a test that sets
	// logs.driver_path to a race-enabled pcnoded (`pcnoded log-driver`)
	// makes each task 1 s slower to reach its final state (the race
	// runtime's atexit_sleep_ms, which GORACE cannot reach under the shim).
	NoRace bool
	// TCP also serves the API on a free 127.0.0.1 port with mutual TLS:
	// Start makes a CA (Daemon.CA) and a server certificate for localhost
	// and 127.0.0.1, writes them under Dir/tls (Daemon.TLSFiles) and sets
	// the [api] TCP and TLS keys before Configure runs. The unix socket
	// stays, and Daemon.Client uses it. RoleIdentity's three identities are
	// bound to their roles (RoleTLS dials as one), besides uid:0 as admin.
	TCP bool
	// CA, with TCP, signs the server certificate and is the client CA
	// instead of a CA of the daemon's own: several daemons sharing one CA
	// accept the same client certificates (a scheduler's).
	CA *CA
	// SharedDirs puts the socket's directory under /tmp (not $TMPDIR, whose
	// parents may be private) with mode 0755 (SharedDir), so that processes
	// of other uids can reach the socket; the socket itself stays 0660, of
	// group api.socket_group.
	SharedDirs bool
	// Containerd, when set, is the containerd the daemon uses (one the
	// test may stop and start, StartContainerd) instead of the test
	// command's shared one.
	Containerd *ContainerdProc
	// CrashPoints runs a pcnoded built with the crashpoints tag
	// (BinaryFor); with Env naming daemon.EnvCrashAt it kills itself at
	// that lifecycle point.
	CrashPoints bool
	// Env is added to the daemon's environment (Daemon.Env; a test may
	// change it before Restart).
	Env []string
}

// Daemon is a pcnoded process under test.
type Daemon struct {
	// Config is what was written to ConfigPath; Restart writes it again,
	// so a test may change it between runs.
	Config     config.Config
	ConfigPath string
	// Dir is the test's directory holding the state, data roots and log.
	Dir string
	// Socket is the API socket, StateDir the state directory, Namespace
	// the containerd namespace, ContainerdAddress containerd's socket.
	Socket, StateDir, Namespace, ContainerdAddress string
	// DataRoots are the configured data roots (existing directories).
	DataRoots []string
	// LogPath is the file that holds pcnoded's stderr of every run.
	LogPath string
	// With Options.TCP: TCPAddress is the listener's host:port, CA the CA
	// that signed the server certificate (and is the client CA), TLSFiles
	// the files configured.
	TCPAddress string
	CA         *CA
	TLSFiles   TLSFiles

	// Client is connected to the running process; Restart replaces it.
	Client *client.Client
	// Env is added to the environment of every later run (Restart).
	Env []string

	ctrd     *ContainerdProc // Options.Containerd
	bin      string
	logLevel string
	args     []string
	logs     *logBuffer
	logFile  *os.File

	mu   sync.Mutex
	proc *process
}

// process is one run of the binary.
type process struct {
	pid  int
	done chan struct{}
	err  error // valid after done is closed
}

// logBuffer collects pcnoded's stderr.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start runs pcnoded for t with a private state directory, data roots,
// socket and containerd namespace, waits until its health check serves, and
// connects Daemon.Client. It skips t (or fails it under `make test`) when
// testenv has no containerd. The daemon is stopped and the namespace
// emptied and deleted when t ends.
func Start(t testing.TB, opts Options) *Daemon {
	t.Helper()
	var addr string
	if opts.Containerd != nil {
		addr = opts.Containerd.Address
	} else {
		addr = testenv.ContainerdAddress(t)
	}
	bin := BinaryFor(t, Build{Race: !opts.NoRace, CrashPoints: opts.CrashPoints})

	dir := t.TempDir()
	// Unix socket paths are limited to 108 bytes; test directories are long.
	var sockDir string
	if opts.SharedDirs {
		sockDir = SharedDir(t)
	} else {
		var err error
		if sockDir, err = os.MkdirTemp("", "pcd-"); err != nil {
			t.Fatalf("daemontest: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(sockDir) })
	}

	d := &Daemon{
		Dir:               dir,
		ConfigPath:        filepath.Join(dir, "pcnoded.toml"),
		Socket:            filepath.Join(sockDir, "api.sock"),
		StateDir:          filepath.Join(dir, "state"),
		Namespace:         namespaceFor(t),
		ContainerdAddress: addr,
		LogPath:           filepath.Join(dir, "pcnoded.log"),
		ctrd:              opts.Containerd,
		bin:               bin,
		logLevel:          opts.LogLevel,
		args:              opts.Args,
		logs:              &logBuffer{},
		Env:               opts.Env,
	}
	if d.logLevel == "" {
		d.logLevel = "debug"
	}
	n := opts.DataRoots
	if n <= 0 {
		n = 1
	}
	for i := range n {
		root := filepath.Join(dir, fmt.Sprintf("data%d", i))
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatalf("daemontest: %v", err)
		}
		d.DataRoots = append(d.DataRoots, root)
	}
	d.Config = Config(d.StateDir, d.Socket, addr, d.Namespace, d.DataRoots)
	if opts.TCP {
		d.CA, _, d.TLSFiles = setupTLS(t, dir, opts.CA)
		d.TCPAddress = freeLoopbackPort(t)
		d.Config.API.TCPAddress = d.TCPAddress
		d.Config.API.TLSCertFile = d.TLSFiles.Cert
		d.Config.API.TLSKeyFile = d.TLSFiles.Key
		d.Config.API.ClientCAFile = d.TLSFiles.ClientCA
		for _, r := range config.Roles {
			d.Config.API.Roles = append(d.Config.API.Roles, config.RoleBinding{Identity: RoleIdentity(r), Role: r})
		}
	}
	if opts.Configure != nil {
		opts.Configure(&d.Config)
	}
	var err error
	if d.logFile, err = os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	t.Cleanup(func() { d.cleanup(t) })
	d.start(t)
	return d
}

// SharedDir makes a directory under /tmp that every user may traverse and
// read (mode 0755), removed when t ends: for files that processes of other
// uids must reach.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "pcd-")
	if err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	return dir
}

// namespaceFor returns a containerd namespace unique to t and this run.
func namespaceFor(t testing.TB) string {
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	name = strings.TrimPrefix(strings.TrimPrefix(name, "TestIntegration"), "Test")
	name = strings.Trim(name, "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return strings.ToLower("e2e-" + name + "-" + hex.EncodeToString(rnd[:]))
}

// start writes the configuration, runs the binary and waits for health.
func (d *Daemon) start(t testing.TB) {
	t.Helper()
	if err := writeConfig(d.ConfigPath, d.Config); err != nil {
		t.Fatalf("%v", err)
	}
	fmt.Fprintf(d.logFile, "==== daemontest: starting pcnoded %s\n", time.Now().Format(time.RFC3339Nano))
	args := append([]string{"--config", d.ConfigPath, "--log-level", d.logLevel}, d.args...)
	cmd := exec.Command(d.bin, args...)
	if len(d.Env) > 0 {
		cmd.Env = append(os.Environ(), d.Env...)
	}
	out := io.MultiWriter(d.logFile, d.logs)
	cmd.Stdout, cmd.Stderr = out, out
	// The daemon dies with the test process (go test -timeout).
	p, err := startProcess(cmd)
	if err != nil {
		t.Fatalf("daemontest: start %s: %v", d.bin, err)
	}
	d.mu.Lock()
	d.proc = p
	d.mu.Unlock()
	if err := d.waitHealthy(t.Context(), p); err != nil {
		t.Fatalf("daemontest: pcnoded did not become healthy: %v\n%s", err, tail(d.logs.String(), logTail))
	}
	c, err := client.Dial(d.Socket)
	if err != nil {
		t.Fatalf("daemontest: client.Dial(%q) = %v", d.Socket, err)
	}
	d.Client = c
}

// waitHealthy polls the gRPC health service until it answers: SERVING, or
// NOT_SERVING while containerd is unreachable or the last run's tasks are
// being recovered (pcnoded serves its API then too; tests of those states
// start it so).
func (d *Daemon) waitHealthy(ctx context.Context, p *process) error {
	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(StartTimeout)
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("pcnoded exited: %v", p.err)
		default:
		}
		if _, err := os.Stat(d.Socket); err == nil {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
			cancel()
			if st := resp.GetStatus(); err == nil && (st == healthpb.HealthCheckResponse_SERVING || st == healthpb.HealthCheckResponse_NOT_SERVING) {
				return nil
			}
			last = err
			if err == nil {
				last = fmt.Errorf("health status %v", resp.GetStatus())
			}
		} else {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving after %v: %v", StartTimeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitExit waits up to timeout for the process to exit by itself and
// returns its exit error; it fails t when the process is still running
// then.
func (d *Daemon) WaitExit(t testing.TB, timeout time.Duration) error {
	t.Helper()
	d.mu.Lock()
	p := d.proc
	d.mu.Unlock()
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("daemontest: pcnoded still running after %v", timeout)
		return nil
	}
}

// Running reports whether the process is running.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	p := d.proc
	d.mu.Unlock()
	return p.running()
}

// startProcess starts cmd with SIGKILL as its parent-death signal and
// waits for it in the background. Pdeathsig follows the creating thread,
// so that thread stays locked until the process has been waited for.
func startProcess(cmd *exec.Cmd) (*process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	p := &process{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// running reports whether p (nil: none) has not exited.
func (p *process) running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// PID returns the process id of the current run (0 when none).
func (d *Daemon) PID() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc == nil {
		return 0
	}
	return d.proc.pid
}

// Stop sends SIGTERM and waits for the process to exit; it fails t unless
// the daemon exits with status 0 within StopTimeout (then it is killed).
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	if err := d.signalAndWait(syscall.SIGTERM, StopTimeout); err != nil {
		t.Errorf("daemontest: Stop: %v\n%s", err, tail(d.logs.String(), logTail))
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (d *Daemon) Kill(t testing.TB) {
	t.Helper()
	err := d.signalAndWait(syscall.SIGKILL, StopTimeout)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Errorf("daemontest: Kill: %v", err)
	}
}

// Restart stops the daemon with SIGTERM if it is running, then starts it
// again with the same configuration file (rewritten from d.Config), state
// directory, socket and namespace, and reconnects d.Client.
func (d *Daemon) Restart(t testing.TB) {
	t.Helper()
	if d.Running() {
		d.Stop(t)
	}
	d.closeClient()
	d.start(t)
}

// signalAndWait signals d's process and waits for it (process.signalAndWait).
func (d *Daemon) signalAndWait(sig syscall.Signal, timeout time.Duration) error {
	d.mu.Lock()
	p := d.proc
	d.mu.Unlock()
	return p.signalAndWait("pcnoded", sig, timeout)
}

// signalAndWait signals the process and waits for it; it kills it after
// timeout. It returns the process's exit error (nil for status 0, and for
// no process), or an error saying that it had to be killed.
func (p *process) signalAndWait(what string, sig syscall.Signal, timeout time.Duration) error {
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return p.err
	default:
	}
	if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not exit within %v of %v; killed", what, timeout, sig)
	}
}

func (d *Daemon) closeClient() {
	if d.Client != nil {
		d.Client.Close()
		d.Client = nil
	}
}

// Logs returns everything pcnoded wrote to stderr and stdout so far, over
// all its runs.
func (d *Daemon) Logs() string { return d.logs.String() }

// cleanup stops the daemon, empties and deletes the namespace, and prints
// the log's tail if t failed.
func (d *Daemon) cleanup(t testing.TB) {
	d.closeClient()
	if d.Running() {
		if err := d.signalAndWait(syscall.SIGTERM, StopTimeout); err != nil {
			t.Logf("daemontest: stopping pcnoded at the end of the test: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if d.ctrd != nil && !d.ctrd.Running() {
		// A test's own containerd that is down: its cleanup kills everything.
	} else if err := cleanupNamespace(ctx, d.ContainerdAddress, d.Namespace, d.Config.Containerd.Snapshotter); err != nil {
		t.Logf("daemontest: cleaning namespace %s: %v", d.Namespace, err)
	}
	if dir := os.Getenv(EnvLogDir); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err == nil {
			_ = os.WriteFile(filepath.Join(dir, d.Namespace+".log"), []byte(d.logs.String()), 0o644)
		}
	}
	if t.Failed() {
		t.Logf("daemontest: pcnoded log (namespace %s, last %d KiB):\n%s", d.Namespace, logTail>>10, tail(d.logs.String(), logTail))
	}
	d.logFile.Close()
}

// tail returns the last n bytes of s, starting at a line.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "…\n" + s
}
