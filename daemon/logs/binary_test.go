package logs

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseBinaryArgs(t *testing.T) {
	full := DriverConfig{Dir: "/var/lib/pcnode/logs/t1", MaxFileBytes: 1 << 20, MaxFiles: 3}
	defaults := DriverConfig{Dir: "/var/lib/pcnode/logs/t1", MaxFileBytes: DefaultMaxFileBytes, MaxFiles: DefaultMaxFiles}
	for _, tc := range []struct {
		name    string
		args    []string
		want    DriverConfig
		wantErr bool
	}{
		{name: "encoded", args: []string{BinaryIOArgs(full)[BinarySubcommand]}, want: full},
		{name: "encoded defaults", args: []string{BinaryIOArgs(DriverConfig{Dir: full.Dir})[BinarySubcommand]}, want: defaults},
		{name: "encoded odd dir", args: []string{url.Values{"dir": {"/a b/c&d=e/../f"}}.Encode()}, want: DriverConfig{Dir: "/a b/f", MaxFileBytes: DefaultMaxFileBytes, MaxFiles: DefaultMaxFiles}},
		{name: "flags", args: []string{"--dir", full.Dir, "--max-file-bytes", "1048576", "--max-files=3"}, want: full},
		{name: "flags dir only", args: []string{"-dir=" + full.Dir}, want: defaults},
		{name: "relative dir", args: []string{"--dir", "logs/t1"}, wantErr: true},
		{name: "no dir", args: []string{"max-files=3"}, wantErr: true},
		{name: "nothing", wantErr: true},
		{name: "unknown key", args: []string{"dir=%2Fx&colour=red"}, wantErr: true},
		{name: "repeated key", args: []string{"dir=%2Fx&dir=%2Fy"}, wantErr: true},
		{name: "bad number", args: []string{"dir=%2Fx&max-files=many"}, wantErr: true},
		{name: "negative", args: []string{"--dir=/x", "--max-file-bytes=-1"}, wantErr: true},
		{name: "unknown flag", args: []string{"--dir=/x", "--colour=red"}, wantErr: true},
		{name: "extra argument", args: []string{"--dir=/x", "more"}, wantErr: true},
		{name: "two encoded", args: []string{"dir=%2Fx", "dir=%2Fy"}, wantErr: true},
		{name: "encoded empty pairs", args: []string{"&dir=%2Fx&&max-files=3&"}, want: DriverConfig{Dir: "/x", MaxFileBytes: DefaultMaxFileBytes, MaxFiles: 3}},
		{name: "semicolon", args: []string{"dir=%2Fx;max-files=3"}, wantErr: true},
		{name: "bad escape", args: []string{"dir=%2Fx%zz"}, wantErr: true},
		{name: "bad escape in key", args: []string{"d%r=%2Fx"}, wantErr: true},
		{name: "flags end", args: []string{"--dir", "/x", "--"}, want: DriverConfig{Dir: "/x", MaxFileBytes: DefaultMaxFileBytes, MaxFiles: DefaultMaxFiles}},
		{name: "argument after flags end", args: []string{"--dir", "/x", "--", "more"}, wantErr: true},
		{name: "flag without value", args: []string{"--dir"}, wantErr: true},
		{name: "bare dash", args: []string{"--dir=/x", "-"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBinaryArgs(tc.args)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidConfig) {
					t.Errorf("ParseBinaryArgs(%q) = %+v, %v, want ErrInvalidConfig", tc.args, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBinaryArgs(%q) = %v", tc.args, err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(DriverConfig{}, "Logger")); diff != "" {
				t.Errorf("ParseBinaryArgs(%q) mismatch (-want +got):\n%s", tc.args, diff)
			}
		})
	}
}

// shimArgs turns a log URI into the command line the shim runs, as the
// runc shim's NewBinaryCmd does: the URI's path, then key and first value of
// every query parameter.
func shimArgs(t testing.TB, uri string) (string, []string) {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("url.Parse(%q) = %v", uri, err)
	}
	if u.Scheme != "binary" {
		t.Fatalf("log URI %q has scheme %q, want binary", uri, u.Scheme)
	}
	var args []string
	for k, vs := range u.Query() {
		args = append(args, k, vs[0])
	}
	return u.Path, args
}

// TestBinaryIOArgsThroughContainerd builds the log URI with containerd's
// own cio.BinaryIO and checks the command line the shim derives from it.
func TestBinaryIOArgsThroughContainerd(t *testing.T) {
	cfg := DriverConfig{Dir: "/var/lib/pcnode/logs/task 1?&=", MaxFileBytes: 4096, MaxFiles: 2}
	io, err := cio.BinaryIO("/usr/bin/pcnoded", BinaryIOArgs(cfg))("task-1")
	if err != nil {
		t.Fatalf("cio.BinaryIO = %v", err)
	}
	path, args := shimArgs(t, io.Config().Stdout)
	if path != "/usr/bin/pcnoded" || len(args) != 2 || args[0] != BinarySubcommand {
		t.Fatalf("shim command = %s %q, want /usr/bin/pcnoded %s CONFIG", path, args, BinarySubcommand)
	}
	got, err := ParseBinaryArgs(args[1:])
	if err != nil {
		t.Fatalf("ParseBinaryArgs(%q) = %v", args[1:], err)
	}
	if diff := cmp.Diff(cfg, got, cmpopts.IgnoreFields(DriverConfig{}, "Logger")); diff != "" {
		t.Errorf("configuration through the shim mismatch (-want +got):\n%s", diff)
	}
}

// driverProcess is the test binary started as the shim starts a logging
// binary: stdout on fd 3, stderr on fd 4, readiness on fd 5.
type driverProcess struct {
	cmd            *exec.Cmd
	stdout, stderr *os.File // write ends, the container's side
	ready          *os.File // read end of the readiness pipe
	output         *bytes.Buffer
	done           chan error
}

func startDriverProcess(t *testing.T, args ...string) *driverProcess {
	t.Helper()
	var pipes [3][2]*os.File
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		pipes[i] = [2]*os.File{r, w}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &driverProcess{output: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(exe, append([]string{BinarySubcommand}, args...)...)
	p.cmd.Env = []string{"CONTAINER_ID=task-1", "CONTAINER_NAMESPACE=pcnode-test"}
	p.cmd.ExtraFiles = []*os.File{pipes[0][0], pipes[1][0], pipes[2][1]}
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Like the shim: keep the write ends of the streams and the read end of
	// the readiness pipe, close the rest.
	pipes[0][0].Close()
	pipes[1][0].Close()
	pipes[2][1].Close()
	p.stdout, p.stderr, p.ready = pipes[0][1], pipes[1][1], pipes[2][0]
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stdout.Close()
		p.stderr.Close()
		p.ready.Close()
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitReady reads the readiness pipe as the shim does and returns what the
// driver wrote before closing it.
func (p *driverProcess) waitReady(t *testing.T) []byte {
	t.Helper()
	p.ready.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(p.ready)
	if err != nil {
		t.Fatalf("read readiness pipe: %v (driver output %q)", err, p.output)
	}
	return b
}

// wait waits for the driver's exit.
func (p *driverProcess) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(limit):
		t.Fatalf("driver did not exit within %v (output %q)", limit, p.output)
		return nil
	}
}

// lockHeld reports whether someone holds the log's lock.
func lockHeld(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, lockName))
	if err != nil {
		t.Fatalf("open lock: %v", err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		t.Fatalf("flock: %v", err)
	}
	return true
}

func TestRunBinarySubprocess(t *testing.T) {
	for _, tc := range []struct {
		name string
		// args builds the driver's arguments for a log in dir.
		args func(dir string) []string
		// sigterm is sent after the streams are closed, as the shim does
		// on task deletion.
		sigterm bool
	}{
		{name: "encoded args, end of file", args: func(dir string) []string {
			return []string{BinaryIOArgs(DriverConfig{Dir: dir, MaxFileBytes: 4096, MaxFiles: 100})[BinarySubcommand]}
		}},
		{name: "flags, SIGTERM after close", sigterm: true, args: func(dir string) []string {
			return []string{"--dir", dir, "--max-file-bytes", "4096", "--max-files", "100"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "log")
			p := startDriverProcess(t, tc.args(dir)...)
			if got := p.waitReady(t); !bytes.Equal(got, []byte{1}) {
				t.Fatalf("readiness pipe carried %q, want one byte", got)
			}
			if !lockHeld(t, dir) {
				t.Errorf("log lock not held once the driver is ready")
			}
			out := genLines(11, 200<<10, true)
			p.stdout.Write(out)
			p.stderr.WriteString("warning\n")
			p.stdout.Close()
			p.stderr.Close()
			if tc.sigterm {
				p.cmd.Process.Signal(syscall.SIGTERM)
			}
			if err := p.wait(t, 5*time.Second); err != nil {
				t.Fatalf("driver exited with %v (output %q), want success", err, p.output)
			}
			var gotOut []byte
			var gotErr []string
			for _, e := range readAll(t, dir, ReadOptions{}) {
				if e.Stream == StreamStdout {
					gotOut = append(gotOut, e.Data...)
				} else {
					gotErr = append(gotErr, string(e.Data))
				}
			}
			if !bytes.Equal(gotOut, out) || !cmp.Equal(gotErr, []string{"warning\n"}) {
				t.Errorf("captured %d stdout bytes (equal: %v) and stderr %q, want %d and [warning]", len(gotOut), bytes.Equal(gotOut, out), gotErr, len(out))
			}
			if info, err := Stat(dir); err != nil || !info.Ended || info.Segments < 2 {
				t.Errorf("Stat = %+v, %v, want an ended log in several segments", info, err)
			}
			if lockHeld(t, dir) {
				t.Errorf("log lock still held after the driver exited")
			}
		})
	}
}

// TestRunBinarySIGTERMWhileOpen: a driver told to stop while the streams
// are still open drains a while, then seals the log and exits before the
// shim's SIGKILL.
func TestRunBinarySIGTERMWhileOpen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "log")
	p := startDriverProcess(t, "--dir", dir)
	p.waitReady(t)
	p.stdout.WriteString("before\n")
	waitFor(t, "first entry", func() bool { info, err := Stat(dir); return err == nil && info.LastSeq == 1 })
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.stdout.WriteString("during drain\n")
	if err := p.wait(t, 11*time.Second); err != nil {
		t.Fatalf("driver exited with %v (output %q), want success", err, p.output)
	}
	if took := time.Since(start); took < drainTimeout || took > drainTimeout+5*time.Second {
		t.Errorf("driver exited %v after SIGTERM, want after about %v", took, drainTimeout)
	}
	want := numbered(1, StreamStdout, []string{"before\n", "during drain\n"})
	if diff := cmp.Diff(want, strip(readAll(t, dir, ReadOptions{}))); diff != "" {
		t.Errorf("entries mismatch (-want +got):\n%s", diff)
	}
	if info, err := Stat(dir); err != nil || !info.Ended {
		t.Errorf("Stat = %+v, %v, want ended", info, err)
	}
}

// TestRunBinaryBadArgs: a driver that cannot start exits non-zero without
// signalling readiness.
func TestRunBinaryBadArgs(t *testing.T) {
	p := startDriverProcess(t, "--dir", "relative/path")
	if got := p.waitReady(t); len(got) != 0 {
		t.Errorf("readiness pipe carried %q, want nothing", got)
	}
	if err := p.wait(t, 5*time.Second); err == nil || !strings.Contains(p.output.String(), "absolute") {
		t.Errorf("driver with a relative directory exited with %v, output %q; want failure naming the path", err, p.output)
	}
}
