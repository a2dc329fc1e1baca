package main

import (
	"bytes"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage/pattern"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// logDriverProc is a logging binary the containerd shim runs for a task.
type logDriverProc struct {
	pid int
	exe string // /proc/PID/exe
	dir string // the log directory of its arguments
}

// findLogDrivers returns the logging binaries running for log directories
// under logsRoot, by log directory: processes whose arguments are
// `log-driver QUERY` (the binary:// log URI's, see logs.BinaryIOArgs) with a
// dir in logsRoot.
func findLogDrivers(t testing.TB, logsRoot string) map[string]logDriverProc {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	found := map[string]logDriverProc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // ended meanwhile
		}
		args := strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00")
		if len(args) != 3 || args[1] != logs.BinarySubcommand {
			continue
		}
		q, err := url.ParseQuery(args[2])
		if err != nil || filepath.Dir(q.Get("dir")) != logsRoot {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		found[q.Get("dir")] = logDriverProc{pid: pid, exe: exe, dir: q.Get("dir")}
	}
	return found
}

// waitLogDriver waits for the logging binary of task id to show up.
func waitLogDriver(t testing.TB, d *daemontest.Daemon, id string) logDriverProc {
	t.Helper()
	dir := filepath.Join(d.StateDir, "logs", id)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p, ok := findLogDrivers(t, filepath.Dir(dir))[dir]; ok {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("no logging binary running for task %s (log directory %s) after 30s", id, dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestIntegrationLogDriverBinary: the shim captures a task's output with
// pcnode-logd (its /proc exe, so that a regression to the whole pcnoded
// fails), and through it the log is byte-exact across a SIGKILL and restart
// of pcnoded, rotated into many segments with sequence numbers continuing
// from one to the next; and `pcnoded log-driver`, which shims of containers
// started by an older pcnoded still run, writes the same log.
func TestIntegrationLogDriverBinary(t *testing.T) {
	const logBytes = 1 << 20
	wantStdout := append(append([]byte("before\n"), pattern.Bytes(logBytes)...), "after\n"...)
	for _, tc := range []struct {
		name string
		// old configures pcnoded itself as the logging binary.
		old bool
	}{
		{name: "pcnode-logd"},
		{name: "pcnoded log-driver (compatibility)", old: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			build := daemontest.Build{Race: true}
			want := daemontest.LogDriverBinary(t, build)
			if tc.old {
				want = daemontest.BinaryFor(t, build)
			}
			d := daemontest.Start(t, daemontest.Options{Configure: func(c *config.Config) {
				c.Logs.MaxFileSize = config.MustQuantity("64Ki")
				c.Logs.MaxFiles = 1000
				if tc.old {
					c.Logs.DriverPath = want
				}
			}})
			img := e2eTestImage(t, d).GetName()
			task := d.Submit(t, e2eSpec(img, "steps", "PCTEST_STEPS=echo before -- sleep 3s -- write-stdout 1Mi -- echo after"))
			id := task.GetId()
			d.WaitLog(t, id, "before\n", 0)

			p := waitLogDriver(t, d, id)
			wantExe, err := filepath.EvalSymlinks(want)
			if err != nil {
				t.Fatal(err)
			}
			if p.exe != wantExe {
				t.Errorf("logging binary of task %s is %s (pid %d), want %s", id, p.exe, p.pid, wantExe)
			}
			if rss, _, err := procRSS(p.pid); err == nil {
				t.Logf("logging binary %s: VmRSS %d KiB", filepath.Base(p.exe), rss>>10)
			}

			d.Kill(t) // SIGKILL: the driver lives on in the shim
			d.Restart(t)
			final := d.WaitTask(t, id, 0)
			e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)

			entries := d.TaskLogs(t, id)
			c := newE2ELogCheck()
			c.feed(entries)
			if c.err != nil {
				t.Errorf("log after restart: %v", c.err)
			}
			if stdout := daemontest.Output(entries, pcnodev1.LogStream_LOG_STREAM_STDOUT); !bytes.Equal(stdout, wantStdout) {
				t.Errorf("stdout = %d bytes (starts %q), want %d bytes: before, 1Mi of pattern, after", len(stdout), stdout[:min(len(stdout), 40)], len(wantStdout))
			}
			if len(c.stderr) != 0 {
				t.Errorf("stderr = %q, want none", c.stderr)
			}
			info, err := logs.Stat(p.dir)
			if err != nil {
				t.Fatalf("logs.Stat(%s) = %v", p.dir, err)
			}
			// 1 MiB in pattern lines plus 25 bytes a record: over 16
			// segments of 64 KiB, none rotated away.
			if info.Segments < 16 || info.FirstSeq != 1 || info.LastSeq != uint64(c.entries) || !info.Ended {
				t.Errorf("log on disk = %+v, want at least 16 segments holding sequences 1..%d, ended", info, c.entries)
			}
		})
	}
}
