package main

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pcnode/pcnode/daemon/logs"
)

// buildOnce builds the binary under test once per test process.
var buildOnce struct {
	sync.Once
	path string
	err  error
	out  []byte
}

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pcnode-logd-test-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "pcnode-logd")
		buildOnce.out, buildOnce.err = exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
	})
	if buildOnce.err != nil {
		t.Fatalf("go build: %v\n%s", buildOnce.err, buildOnce.out)
	}
	return buildOnce.path
}

// TestMain removes the built binary.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.path != "" {
		os.RemoveAll(filepath.Dir(buildOnce.path))
	}
	os.Exit(code)
}

// TestDependencies keeps the logging binary small: one runs per running
// task, so it may link the standard library and daemon/logs only (no cobra,
// gRPC, protobuf or containerd), and not log/slog, which daemon/logs keeps
// out of its capture half.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	want := []string{"github.com/pcnode/pcnode/daemon/logs", "github.com/pcnode/pcnode/cmd/pcnode-logd"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("non-standard dependencies of pcnode-logd = %q, want %q", got, want)
	}
	std, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, std)
	}
	for _, heavy := range []string{"log/slog", "encoding/json", "net/http", "crypto/tls"} {
		if slices.Contains(strings.Fields(string(std)), heavy) {
			t.Errorf("pcnode-logd depends on %s", heavy)
		}
	}
}

// TestLinksCaptureOnly builds the binary and checks that the linker left
// the reading half of daemon/logs and package fmt out of it.
func TestLinksCaptureOnly(t *testing.T) {
	out, err := exec.Command("go", "tool", "nm", binary(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool nm: %v\n%s", err, out)
	}
	const pkg = "github.com/pcnode/pcnode/daemon/logs."
	var capture int
	for line := range strings.Lines(string(out)) {
		// Package fmt (and the reflection it brings) would add a quarter
		// of a megabyte to every running driver: the capture half of
		// daemon/logs builds its errors without it.
		if f := strings.Fields(line); len(f) == 3 && strings.HasPrefix(f[2], "fmt.") {
			t.Errorf("pcnode-logd links %s", f[2])
		}
		_, sym, ok := strings.Cut(line, pkg)
		if !ok {
			continue
		}
		sym = strings.TrimSpace(sym)
		if strings.HasPrefix(sym, "Read") || strings.HasPrefix(sym, "(*reader)") || strings.HasPrefix(sym, "Stat") || strings.HasPrefix(sym, "Seal") {
			t.Errorf("pcnode-logd links %s%s, a part of daemon/logs it does not use", pkg, sym)
		}
		if sym == "RunBinary" {
			capture++
		}
	}
	if capture != 1 {
		t.Errorf("pcnode-logd does not link %sRunBinary (nm found it %d times)", pkg, capture)
	}
}

// driverRun is the binary started as the containerd shim starts it: stdout
// on fd 3, stderr on fd 4, the readiness pipe on fd 5.
type driverRun struct {
	cmd            *exec.Cmd
	stdout, stderr *os.File // write ends
	ready          *os.File // read end
	diag           bytes.Buffer
}

func startDriver(t *testing.T, args ...string) *driverRun {
	t.Helper()
	var ends [3][2]*os.File
	for i := range ends {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		ends[i] = [2]*os.File{r, w}
	}
	d := &driverRun{stdout: ends[0][1], stderr: ends[1][1], ready: ends[2][0]}
	d.cmd = exec.Command(binary(t), args...)
	d.cmd.Env = []string{"CONTAINER_ID=test", "CONTAINER_NAMESPACE=test"}
	d.cmd.ExtraFiles = []*os.File{ends[0][0], ends[1][0], ends[2][1]}
	d.cmd.Stderr = &d.diag
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range d.cmd.ExtraFiles {
		f.Close()
	}
	t.Cleanup(func() {
		d.stdout.Close()
		d.stderr.Close()
		d.ready.Close()
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
			d.cmd.Wait()
		}
	})
	return d
}

// TestBinaryCaptures runs the built binary in both argument forms: it
// signals readiness, captures both streams as numbered entries and seals
// the log when they end.
func TestBinaryCaptures(t *testing.T) {
	for _, tc := range []struct {
		name string
		args func(dir string) []string
	}{
		{"as the shim runs it", func(dir string) []string {
			return []string{logs.BinarySubcommand, url.Values{"dir": {dir}, "max-file-bytes": {"4096"}, "max-files": {"100"}}.Encode()}
		}},
		{"flags", func(dir string) []string {
			return []string{"--dir", dir, "--max-file-bytes", "4096", "--max-files", "100"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			d := startDriver(t, tc.args(dir)...)
			var b [2]byte
			if n, err := d.ready.Read(b[:]); n != 1 || b[0] != 1 {
				t.Fatalf("readiness pipe gave %d bytes %v, %v; want the byte 1\n%s", n, b[:n], err, d.diag.Bytes())
			}
			var want []string
			for i := range 200 { // over 4096 bytes: several segments
				line := strings.Repeat("o", i) + "\n"
				want = append(want, line)
				if _, err := d.stdout.WriteString(line); err != nil {
					t.Fatal(err)
				}
			}
			d.stdout.Close()
			d.stderr.WriteString("last words")
			d.stderr.Close()
			if err := d.cmd.Wait(); err != nil {
				t.Fatalf("pcnode-logd = %v, want exit 0\n%s", err, d.diag.Bytes())
			}
			// The streams are read concurrently: each keeps its order,
			// their interleaving is the driver's.
			var stdout, stderr []string
			var seqs []uint64
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := logs.Read(ctx, dir, logs.ReadOptions{Follow: true}, func(es []logs.Entry) error {
				for _, e := range es {
					if e.Stream == logs.StreamStderr {
						stderr = append(stderr, string(e.Data))
					} else {
						stdout = append(stdout, string(e.Data))
					}
					seqs = append(seqs, e.Seq)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("logs.Read(follow) = %v (a sealed log ends a follower)", err)
			}
			if !slices.Equal(stdout, want) {
				t.Errorf("stdout = %d entries %q..., want %d", len(stdout), stdout[:min(3, len(stdout))], len(want))
			}
			if !slices.Equal(stderr, []string{"last words"}) {
				t.Errorf("stderr = %q, want [\"last words\"]", stderr)
			}
			for i, s := range seqs {
				if s != uint64(i+1) {
					t.Fatalf("entry %d has sequence %d, want %d", i, s, i+1)
				}
			}
			if info, err := logs.Stat(dir); err != nil || info.Segments < 2 || !info.Ended {
				t.Errorf("logs.Stat = %+v, %v; want several segments, ended", info, err)
			}
		})
	}
}

// TestBinaryRefusesBadArguments: a bad argument is an exit status of 1 and
// a message naming it, before readiness, and no log is written.
func TestBinaryRefusesBadArguments(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"relative directory", []string{logs.BinarySubcommand, "dir=relative/log"}, "not an absolute path"},
		{"unknown key", []string{logs.BinarySubcommand, url.Values{"dir": {dir}, "colour": {"red"}}.Encode()}, `unknown log driver argument "colour"`},
		{"bad number", []string{logs.BinarySubcommand, url.Values{"dir": {dir}, "max-files": {"many"}}.Encode()}, "max-files"},
		{"negative size", []string{"--dir", dir, "--max-file-bytes", "-1"}, "negative limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDriver(t, tc.args...)
			err := d.cmd.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(d.diag.String(), tc.want) {
				t.Errorf("pcnode-logd %q = %v, stderr %q; want exit status 1 and a message containing %q", tc.args, err, d.diag.String(), tc.want)
			}
			if n, _ := d.ready.Read(make([]byte, 1)); n != 0 {
				t.Errorf("pcnode-logd %q signalled readiness", tc.args)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("pcnode-logd %q left %s (%v), want nothing written", tc.args, dir, err)
			}
		})
	}
}

// TestBinaryDrains: with the write ends of both pipes still open (the shim
// holds them until the task is deleted), a drain request (logs.RequestDrain,
// which pcnoded sends once the container has exited) makes the binary read
// everything the pipes hold, a line without a newline included, seal the
// log and exit, and remove its drain FIFO.
func TestBinaryDrains(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	d := startDriver(t, logs.BinarySubcommand, url.Values{"dir": {dir}}.Encode())
	var b [1]byte
	if n, _ := d.ready.Read(b[:]); n != 1 {
		t.Fatalf("no readiness\n%s", d.diag.Bytes())
	}
	var want bytes.Buffer
	for i := range 2000 { // more than a pipe holds: read while written
		line := strings.Repeat("d", i%300) + "\n"
		want.WriteString(line)
		if _, err := d.stdout.WriteString(line); err != nil {
			t.Fatal(err)
		}
	}
	// Left in the pipes, unread, when the drain is asked for.
	d.stdout.WriteString("no newline at the end")
	want.WriteString("no newline at the end")
	d.stderr.WriteString("err line\n")
	told, err := logs.RequestDrain(dir)
	if err != nil || !told {
		t.Fatalf("RequestDrain = %v, %v; want true, nil", told, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("pcnode-logd = %v, want exit 0\n%s", err, d.diag.Bytes())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("pcnode-logd did not end within 5 s of the drain request with the pipes still open")
	}
	var stdout bytes.Buffer
	var stderr []string
	if err := logs.Read(t.Context(), dir, logs.ReadOptions{}, func(es []logs.Entry) error {
		for _, e := range es {
			if e.Stream == logs.StreamStderr {
				stderr = append(stderr, string(e.Data))
			} else {
				stdout.Write(e.Data)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), want.Bytes()) {
		t.Errorf("stdout: %d bytes captured, want %d (byte-exact)", stdout.Len(), want.Len())
	}
	if !slices.Equal(stderr, []string{"err line\n"}) {
		t.Errorf("stderr = %q, want [\"err line\\n\"]", stderr)
	}
	if info, err := logs.Stat(dir); err != nil || !info.Ended {
		t.Errorf("logs.Stat = %+v, %v; want ended", info, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, logs.DrainFileName)); !os.IsNotExist(err) {
		t.Errorf("drain FIFO left behind: %v", err)
	}
	// Nobody listens any more: not an error, nothing told.
	if told, err := logs.RequestDrain(dir); err != nil || told {
		t.Errorf("RequestDrain after the driver ended = %v, %v; want false, nil", told, err)
	}
}
