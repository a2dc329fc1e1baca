package testimage_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcnode/pcnode/internal/testimage"
	"github.com/pcnode/pcnode/internal/testimage/pattern"
)

func program(t *testing.T) string {
	t.Helper()
	p, err := testimage.Program(t.Context())
	if err != nil {
		t.Fatalf("Program() = %v", err)
	}
	return p
}

func TestProgramIsCachedAndStatic(t *testing.T) {
	p1, p2 := program(t), program(t)
	if p1 != p2 {
		t.Errorf("Program() = %q then %q, want the same cached path", p1, p2)
	}
	b, err := os.ReadFile(p1)
	if err != nil {
		t.Fatal(err)
	}
	// A static Go binary has no program interpreter (no PT_INTERP, so no
	// "/lib64/ld-linux" path in it).
	if bytes.Contains(b, []byte("ld-linux")) {
		t.Errorf("Program() %s is dynamically linked", p1)
	}
}

// exitCode returns the exit status of a finished command, -1 if killed by
// a signal.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		t.Fatalf("run: %v", err)
	}
	return ee.ExitCode()
}

func TestProgramOutputAndExit(t *testing.T) {
	bin := program(t)
	tests := []struct {
		name       string
		argv0      string
		args       []string
		wantCode   int
		wantStdout []byte
		wantStderr []byte
	}{
		{name: "write 3 MiB to stdout", args: []string{"write-stdout", "3Mi"}, wantStdout: pattern.Bytes(3 << 20), wantStderr: []byte{}},
		{name: "stderr then exit 42", args: []string{"write-stderr", "1000", "--", "exit", "42"}, wantCode: 42, wantStdout: []byte{}, wantStderr: pattern.Bytes(1000)},
		{name: "python3 argv0", argv0: "python3", args: []string{"-u", "nothing.py"}, wantCode: 2, wantStdout: []byte{},
			wantStderr: []byte("pctest: python emulation knows upstream.py and downstream.py, not \"nothing.py\"\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), bin, tt.args...)
			if tt.argv0 != "" {
				cmd.Args[0] = tt.argv0
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if code := exitCode(t, cmd.Run()); code != tt.wantCode {
				t.Errorf("pctest %q = %d, want %d (stderr %q)", tt.args, code, tt.wantCode, stderr.String())
			}
			if !bytes.Equal(stdout.Bytes(), tt.wantStdout) {
				t.Errorf("pctest %q stdout: %d bytes, want %d identical bytes", tt.args, stdout.Len(), len(tt.wantStdout))
			}
			if !bytes.Equal(stderr.Bytes(), tt.wantStderr) {
				t.Errorf("pctest %q stderr = %.200q, want %.200q", tt.args, stderr.String(), tt.wantStderr)
			}
		})
	}
}

// startProgram starts pctest with args and returns it with a reader of its
// stderr lines.
func startProgram(t *testing.T, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(program(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, bufio.NewScanner(stderr)
}

func TestProgramSignals(t *testing.T) {
	t.Run("SIGTERM exits 143", func(t *testing.T) {
		cmd, stderr := startProgram(t, "echo", "up", "--", "sleep", "forever")
		time.Sleep(100 * time.Millisecond) // let it install its handler
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if !stderr.Scan() || stderr.Text() != "pctest: received SIGTERM, exiting 143" {
			t.Errorf("stderr line = %q, want the SIGTERM message", stderr.Text())
		}
		if code := exitCode(t, cmd.Wait()); code != 143 {
			t.Errorf("exit after SIGTERM = %d, want 143", code)
		}
	})
	t.Run("ignore-sigterm survives SIGTERM", func(t *testing.T) {
		cmd, stderr := startProgram(t, "ignore-sigterm", "--", "sleep", "forever")
		time.Sleep(100 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if !stderr.Scan() || stderr.Text() != "pctest: SIGTERM ignored" {
			t.Errorf("stderr line = %q, want \"pctest: SIGTERM ignored\"", stderr.Text())
		}
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			t.Fatalf("process gone after an ignored SIGTERM: %v", err)
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("Wait() = %v, want killed by SIGKILL", err)
		}
	})
}

func TestProgramAllocIsResident(t *testing.T) {
	const size = 64 << 20
	cmd, stderr := startProgram(t, "alloc", "64Mi", "--", "sleep", "forever")
	if !stderr.Scan() || stderr.Text() != "pctest: allocated "+strconv.Itoa(size)+" bytes" {
		t.Fatalf("stderr line = %q, want the allocation message", stderr.Text())
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	var rssKiB int64
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	if rssKiB*1024 < size {
		t.Errorf("VmRSS after alloc 64Mi = %d KiB, want at least %d KiB", rssKiB, size/1024)
	}
}
