package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/logs"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	"github.com/pcnode/pcnode/internal/testimage/pattern"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// logCaptureBoundBytes is issue 11's bound on log capture per running task.
const logCaptureBoundBytes = 4 << 20

// BenchmarkIntegrationLogCaptureRSS starts 32 long-running tasks (8 under
// PCNODE_BENCH_CI=1), finds each one's logging binary among the processes
// (by its arguments, see findLogDrivers; every one must be pcnode-logd),
// and prints the sum of their VmRSS against the bound of 4 MiB a task; then
// cancels the tasks and checks that they end cancelled with complete,
// sealed logs. For comparison it measures the old logging binary, `pcnoded
// log-driver`, the same way for one task, and the start latency of a no-op
// task (create_time → start_time as the daemon records them, and RunTask
// submit → final state in the client), median of several runs with each
// binary, in alternating blocks.
func BenchmarkIntegrationLogCaptureRSS(b *testing.B) {
	n, runs := 32, 10
	if os.Getenv("PCNODE_BENCH_CI") == "1" {
		n, runs = 8, 3
	}
	d := daemontest.Start(b, daemontest.Options{NoRace: true, LogLevel: "warn", Configure: func(c *config.Config) {
		// 2 CPUs: requests small enough for every task to run at once.
		c.Resources.DefaultCPU = config.MustQuantity("10m")
		c.Resources.DefaultMemory = config.MustQuantity("16Mi")
	}})
	logsRoot := filepath.Join(d.StateDir, "logs")
	newBin := daemontest.LogDriverBinary(b, daemontest.Build{})
	oldBin := daemontest.BinaryFor(b, daemontest.Build{})
	useDriver := func(path string) {
		if path == newBin {
			path = "" // the default: beside pcnoded
		}
		if d.Config.Logs.DriverPath != path {
			d.Config.Logs.DriverPath = path
			d.Restart(b)
		}
	}
	img := d.ImportImage(b, testimage.Image{}).GetName()
	noop := e2eSpec(img, "exit", "CODE=0")
	const head = 64 << 10 // stdout of a long task before it sleeps
	long := e2eSpec(img, "steps", "PCTEST_STEPS=write-stdout 64Ki -- echo started -- sleep 10m")
	wantLong := append(pattern.Bytes(head), "started\n"...)

	// latency runs the no-op task and returns the daemon's submit→running
	// and the client's submit→final.
	latency := func() (time.Duration, time.Duration) {
		start := time.Now()
		task, _ := d.Run(b, noop)
		wall := time.Since(start)
		if task.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
			b.Fatalf("no-op task %s: %v %s", task.GetId(), task.GetState(), task.GetMessage())
		}
		return task.GetStartTime().AsTime().Sub(task.GetCreateTime().AsTime()), wall
	}
	// startLong submits count long tasks and waits until each has written
	// its first output, returning their ids and logging binaries.
	startLong := func(count int) ([]string, []logDriverProc) {
		ids := make([]string, count)
		for i := range ids {
			ids[i] = d.Submit(b, long).GetId()
		}
		procs := make([]logDriverProc, count)
		for i, id := range ids {
			d.WaitLog(b, id, "started\n", 0)
			procs[i] = waitLogDriver(b, d, id)
		}
		return ids, procs
	}
	// stopLong cancels the tasks and checks their end and their logs.
	stopLong := func(ids []string) {
		for _, id := range ids {
			if _, err := d.Client.Tasks.CancelTask(b.Context(), &pcnodev1.CancelTaskRequest{TaskId: id}); err != nil {
				b.Fatalf("CancelTask(%s) = %v", id, client.FromError(err))
			}
		}
		for _, id := range ids {
			final := d.WaitTask(b, id, 0)
			if final.GetState() != pcnodev1.TaskState_TASK_STATE_CANCELLED {
				b.Fatalf("task %s ended %v/%v (%s), want CANCELLED", id, final.GetState(), final.GetReason(), final.GetMessage())
			}
			entries := d.TaskLogs(b, id)
			c := newE2ELogCheck()
			c.feed(entries)
			if c.err != nil {
				b.Fatalf("log of task %s: %v", id, c.err)
			}
			if got := daemontest.Output(entries, pcnodev1.LogStream_LOG_STREAM_STDOUT); string(got) != string(wantLong) {
				b.Fatalf("stdout of task %s = %d bytes, want %d: 64Ki of pattern and \"started\"", id, len(got), len(wantLong))
			}
			info, err := logs.Stat(filepath.Join(logsRoot, id))
			if err != nil || !info.Ended || info.LastSeq != uint64(c.entries) {
				b.Fatalf("log of task %s on disk = %+v, %v; want %d entries, ended", id, info, err, c.entries)
			}
		}
	}
	measure := func(procs []logDriverProc, wantExe string) (rss, file, pss int64) {
		want, err := filepath.EvalSymlinks(wantExe)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range procs {
			if p.exe != want {
				b.Fatalf("logging binary of %s is %s, want %s", p.dir, p.exe, want)
			}
			r, f, err := procRSS(p.pid)
			if err != nil {
				b.Fatalf("VmRSS of logging binary %d: %v", p.pid, err)
			}
			rss, file = rss+r, file+f
			if v, err := procPss(p.pid); err == nil {
				pss += v
			}
		}
		return rss, file, pss
	}

	// Warm up both binaries (page cache, image unpack).
	latency()
	var (
		lat      = map[string][]time.Duration{}
		ready    = map[string][]time.Duration{}
		wall     = map[string][]time.Duration{}
		total    int64
		fileRSS  int64
		pss      int64
		oldRSS   int64
		oldFile  int64
		binaries = []string{newBin, oldBin}
	)
	b.ResetTimer()
	for range b.N {
		for block := range 2 {
			for _, bin := range binaries {
				useDriver(bin)
				for range (runs + 1) / 2 {
					l, w := latency()
					lat[bin] = append(lat[bin], l)
					wall[bin] = append(wall[bin], w)
				}
				if block == 0 && bin == oldBin {
					ids, procs := startLong(1)
					oldRSS, oldFile, _ = measure(procs, oldBin)
					stopLong(ids)
				}
			}
		}
		for i := range 2 * runs {
			bin := binaries[i%2]
			ready[bin] = append(ready[bin], execToReady(b, bin, filepath.Join(b.TempDir(), "ready-log")))
		}
		useDriver(newBin)
		ids, procs := startLong(n)
		total, fileRSS, pss = measure(procs, newBin)
		stopLong(ids)
	}
	b.StopTimer()

	mib := func(v int64) float64 { return float64(v) / (1 << 20) }
	perTask := total / int64(n)
	bound := int64(n) * logCaptureBoundBytes
	ratio := float64(total) / float64(bound)
	newLat, oldLat := median(lat[newBin]), median(lat[oldBin])
	newWall, oldWall := median(wall[newBin]), median(wall[oldBin])
	b.ReportMetric(mib(total), "logd-total-MiB")
	b.ReportMetric(mib(perTask), "logd-per-task-MiB")
	b.ReportMetric(ratio, "ratio-to-bound")
	b.ReportMetric(mib(pss), "logd-total-Pss-MiB")
	b.ReportMetric(mib(oldRSS), "old-per-task-MiB")
	b.ReportMetric(float64(newLat.Microseconds())/1000, "start-ms-logd")
	b.ReportMetric(float64(oldLat.Microseconds())/1000, "start-ms-old")
	fmt.Printf("log capture of %d running tasks (VmRSS of their logging binaries):\n", n)
	fmt.Printf("  pcnode-logd total      %8.1f MiB   bound %d × 4 MiB = %.0f MiB   ratio %.3f\n", mib(total), n, mib(bound), ratio)
	fmt.Printf("  pcnode-logd per task   %8.2f MiB   (%.2f MiB of it file-backed: binary pages, shared in the page cache)\n", mib(perTask), mib(fileRSS/int64(n)))
	fmt.Printf("  pcnode-logd total Pss  %8.1f MiB   (shared pages divided among their users: the memory really spent)\n", mib(pss))
	fmt.Printf("  pcnoded log-driver     %8.2f MiB   per task (one measured; %.2f MiB file-backed)   ratio new/old %.3f\n", mib(oldRSS), mib(oldFile), float64(perTask)/float64(oldRSS))
	fmt.Printf("start latency of a no-op task, median of %d runs each, alternating blocks:\n", len(lat[newBin]))
	newReady, oldReady := median(ready[newBin]), median(ready[oldBin])
	b.ReportMetric(float64(newReady.Microseconds())/1000, "ready-ms-logd")
	b.ReportMetric(float64(oldReady.Microseconds())/1000, "ready-ms-old")
	fmt.Printf("  exec→ready (driver)    pcnode-logd %7.2f ms   pcnoded log-driver %7.2f ms   ratio %.2f   (%d runs each, interleaved)\n",
		float64(newReady.Microseconds())/1000, float64(oldReady.Microseconds())/1000, float64(newReady)/float64(oldReady), len(ready[newBin]))
	fmt.Printf("  create→start (daemon)  pcnode-logd %7.1f ms   pcnoded log-driver %7.1f ms   ratio %.2f\n",
		float64(newLat.Microseconds())/1000, float64(oldLat.Microseconds())/1000, float64(newLat)/float64(oldLat))
	fmt.Printf("  RunTask submit→final   pcnode-logd %7.1f ms   pcnoded log-driver %7.1f ms   ratio %.2f\n",
		float64(newWall.Microseconds())/1000, float64(oldWall.Microseconds())/1000, float64(newWall)/float64(oldWall))
}

// procRSS returns a process's VmRSS and the file-backed part of it
// (RssFile), in bytes, from /proc/PID/status.
func procRSS(pid int) (rss, file int64, err error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, err
	}
	found := 0
	for line := range strings.Lines(string(raw)) {
		key, v, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "RssFile") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", key, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			file = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("no VmRSS/RssFile in /proc/%d/status", pid)
	}
	return rss, file, nil
}

// procPss returns a process's proportional set size (Pss of
// /proc/PID/smaps_rollup), in bytes.
func procPss(pid int) (int64, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no Pss in /proc/%d/smaps_rollup", pid)
}

// execToReady starts bin as the containerd shim starts a logging binary
// (stdout and stderr pipes on fds 3 and 4, the readiness pipe on fd 5) for a
// log in dir and returns how long it took to signal readiness, the part of
// a container's start that the logging binary adds. It then ends its input
// and waits for it to exit.
func execToReady(b *testing.B, bin, dir string) time.Duration {
	b.Helper()
	var ends [3][2]*os.File
	for i := range ends {
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		ends[i] = [2]*os.File{r, w}
	}
	cmd := exec.Command(bin, logs.BinarySubcommand, url.Values{"dir": {dir}}.Encode())
	cmd.Env = []string{"CONTAINER_ID=bench", "CONTAINER_NAMESPACE=bench"}
	cmd.ExtraFiles = []*os.File{ends[0][0], ends[1][0], ends[2][1]}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	var one [1]byte
	n, err := ends[2][0].Read(one[:])
	took := time.Since(start)
	ends[0][1].Close()
	ends[1][1].Close()
	ends[2][0].Close()
	werr := cmd.Wait()
	if n != 1 || err != nil || werr != nil {
		b.Fatalf("%s: readiness %d bytes, %v; exit %v", bin, n, err, werr)
	}
	return took
}
