package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/typeurl/v2"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// The CLI benchmarks measure pcnoded the way a user meets it: whole
// pcnode-cli processes, from exec to exit, against whole `ctr run --rm`
// processes of the same image and command on the same containerd, in the
// same run. The bound for both ratios is 1.0 (latency at most,
// throughput at least).

// benchCI reports whether the benchmarks run in CI (PCNODE_BENCH_CI=1):
// smaller sizes, so that they stay quick.
func benchCI() bool { return os.Getenv("PCNODE_BENCH_CI") == "1" }

// benchEnvInt is the positive integer in $name, else def.
func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// cliBench is a running pcnoded with the image of a no-op task imported,
// the pcnode-cli binary built once, and the task.json that runs it.
type cliBench struct {
	d        *daemontest.Daemon
	ctrd     *containerd.Client // of d's containerd, in d's namespace
	ctrdCtx  context.Context
	cli      string // the pcnode-cli binary
	taskJSON string // a Kaapana task.json of the no-op task
	image    string
}

func startCLIBench(b *testing.B, configure func(*config.Config)) *cliBench {
	b.Helper()
	if _, err := exec.LookPath("ctr"); err != nil {
		b.Fatalf("ctr is needed for the baseline: %v", err)
	}
	root, err := daemontest.ModuleRoot()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	cli := filepath.Join(dir, "pcnode-cli")
	// As make build builds it: static, without cgo.
	build := exec.CommandContext(b.Context(), "go", "build", "-o", cli, "./cmd/pcnode-cli")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/pcnode-cli: %v\n%s", err, out)
	}
	lvl := "warn"
	if v := os.Getenv("PCNODE_BENCH_LOG_LEVEL"); v != "" {
		lvl = v
	}
	d := daemontest.Start(b, daemontest.Options{NoRace: true, LogLevel: lvl, Configure: configure})
	img := d.ImportImage(b, testimage.Image{})
	taskJSON := filepath.Join(dir, "noop.json")
	// A no-op asks for what it needs (the node's default request is a
	// whole CPU and 1 GiB, which would let only one run at a time on
	// these 2-core machines, and measure the admission policy instead).
	body := fmt.Sprintf(`{"name": "noop", "image": %q, "taskTemplate": "exit", "inputs": [], "outputs": [], "env": [{"name": "CODE", "value": "0"}], "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}`, img.GetName())
	if err := os.WriteFile(taskJSON, []byte(body), 0o644); err != nil {
		b.Fatal(err)
	}
	ctx, c := d.Containerd(b)
	return &cliBench{d: d, ctrd: c, ctrdCtx: ctx, cli: cli, taskJSON: taskJSON, image: img.GetName()}
}

// waitContainersGone waits until the namespace has no container left.
// pcnoded writes a task's final state, and answers RunTask, before it
// deletes the container; ctr run --rm exits after the delete. Waiting for
// the deletes (outside the timed region of CLIRun, inside it for
// CLIThroughput's whole batch) keeps one side's deletes from running in
// the other side's time.
func (cb *cliBench) waitContainersGone() error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cs, err := cb.ctrd.Containers(cb.ctrdCtx)
		if err != nil {
			return fmt.Errorf("listing containers: %w", err)
		}
		if len(cs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d containers still there after 2m (the first: %s)", len(cs), cs[0].ID())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// watchDeletes records the ids of the containers containerd deletes from
// now until ctx ends; wait(ids) waits until each of ids was deleted. It
// costs the machine nothing while it waits (polling the container list
// during a timed batch cost pcnode's side a few ms of CPU per task).
func (cb *cliBench) watchDeletes(ctx context.Context) (wait func(ids []string) error) {
	var (
		mu      sync.Mutex
		deleted = map[string]bool{}
		changed = make(chan struct{}, 1)
	)
	ch, errs := cb.ctrd.Subscribe(ctx, `topic=="/containers/delete"`)
	var subErr error
	go func() {
		for {
			select {
			case env := <-ch:
				if env == nil {
					return
				}
				v, err := typeurl.UnmarshalAny(env.Event)
				if ev, ok := v.(*apievents.ContainerDelete); ok && err == nil {
					mu.Lock()
					deleted[ev.ID] = true
					mu.Unlock()
					select {
					case changed <- struct{}{}:
					default:
					}
				}
			case err := <-errs:
				mu.Lock()
				subErr = err
				mu.Unlock()
				select {
				case changed <- struct{}{}:
				default:
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func(ids []string) error {
		timeout := time.After(2 * time.Minute)
		for {
			mu.Lock()
			left, err := 0, subErr
			for _, id := range ids {
				if !deleted[id] {
					left++
				}
			}
			mu.Unlock()
			switch {
			case left == 0:
				return nil
			case err != nil:
				return fmt.Errorf("watching container deletes: %w", err)
			}
			select {
			case <-changed:
			case <-timeout:
				return fmt.Errorf("%d of %d containers not deleted after 2m", left, len(ids))
			}
		}
	}
}

// cli runs one pcnode-cli process with args against the daemon and returns
// its stdout; a nonzero exit is an error with its stderr.
func (cb *cliBench) cliProc(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cb.cli, append([]string{"--address", cb.d.Socket}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("pcnode-cli %s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// ctrRun runs one `ctr run --rm` process of the no-op command, with the
// extra flags of ctr run in flags.
func (cb *cliBench) ctrRun(name string, flags ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"--address", cb.d.ContainerdAddress, "--namespace", cb.d.Namespace, "run", "--rm"}, flags...)
	out, err := exec.CommandContext(ctx, "ctr", append(args, cb.image, name, "/pctest", "exit", "0")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr run %s: %v: %s", name, err, out)
	}
	return nil
}

// BenchmarkIntegrationCLIRun measures the median wall time of a whole
// `pcnode-cli run` process of a no-op task (exec to exit: the CLI's start,
// the submit, the task's whole life and its log, the CLI's exit with the
// task's status) against a whole `ctr run --rm` process of the same image
// and command, interleaved, PCNODE_BENCH_RUNS of each (default 15; 3 under
// PCNODE_BENCH_CI=1). The bound is a ratio of at most 1.0.
func BenchmarkIntegrationCLIRun(b *testing.B) {
	runs := 15
	if benchCI() {
		runs = 3
	}
	runs = benchEnvInt("PCNODE_BENCH_RUNS", runs)
	cb := startCLIBench(b, nil)
	// Warm up both paths once (image unpack, binaries in page cache).
	if _, err := cb.cliProc("run", "-q", cb.taskJSON); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	if err := cb.waitContainersGone(); err != nil {
		b.Fatal(err)
	}
	if err := cb.ctrRun("bench-cli-ctr-warm"); err != nil {
		b.Fatal(err)
	}
	var pc, ctr []time.Duration
	b.ResetTimer()
	for n := range b.N {
		pc, ctr = pc[:0], ctr[:0]
		for i := range runs {
			start := time.Now()
			if _, err := cb.cliProc("run", cb.taskJSON); err != nil {
				b.Fatalf("run %d: %v", i, err)
			}
			pc = append(pc, time.Since(start))
			if err := cb.waitContainersGone(); err != nil {
				b.Fatal(err)
			}
			start = time.Now()
			if err := cb.ctrRun(fmt.Sprintf("bench-cli-ctr-%d-%d", n, i)); err != nil {
				b.Fatal(err)
			}
			ctr = append(ctr, time.Since(start))
		}
	}
	b.StopTimer()
	mp, mc := median(pc), median(ctr)
	ratio := float64(mp) / float64(mc)
	b.ReportMetric(float64(mp.Microseconds())/1000, "cli-run-ms")
	b.ReportMetric(float64(mc.Microseconds())/1000, "ctr-run-ms")
	b.ReportMetric(ratio, "ratio")
	fmt.Printf("whole `pcnode-cli run` vs whole `ctr run --rm` of a no-op task, median of %d runs each, interleaved:\n", runs)
	fmt.Printf("  pcnode-cli run     %8.1f ms\n", float64(mp.Microseconds())/1000)
	fmt.Printf("  ctr run --rm       %8.1f ms\n", float64(mc.Microseconds())/1000)
	fmt.Printf("  ratio cli/ctr      %8.2f   (bound ≤ 1.00)\n", ratio)
}

// BenchmarkIntegrationCLIThroughput measures N no-op tasks submitted by C
// concurrent submitters, each a loop of whole `pcnode-cli submit`
// processes, until every task's container is deleted (and every task
// succeeded), against C concurrent loops of whole `ctr run --rm` processes
// running the same N, and against the same under pcnoded's seccomp
// profile. N=120, C=10 by default (PCNODE_BENCH_TASKS,
// PCNODE_BENCH_CONCURRENCY); N=20 under PCNODE_BENCH_CI=1. After an
// untimed warm-up of C tasks on each side, each side's N run in
// PCNODE_BENCH_SEGMENTS segments (default 6), the sides' order turning
// from one segment to the next. The bound is a ratio of tasks/s of at
// least 1.0.
func BenchmarkIntegrationCLIThroughput(b *testing.B) {
	n := 120
	if benchCI() {
		n = 20
	}
	n = benchEnvInt("PCNODE_BENCH_TASKS", n)
	c := min(benchEnvInt("PCNODE_BENCH_CONCURRENCY", 10), n)
	// The same concurrency on both sides: at most c containers at once
	// (the no-op's requests would let the node run more).
	cb := startCLIBench(b, func(cfg *config.Config) { cfg.Resources.MaxConcurrent = c })
	if _, err := cb.cliProc("run", "-q", cb.taskJSON); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	if err := cb.waitContainersGone(); err != nil {
		b.Fatal(err)
	}
	if err := cb.ctrRun("bench-tp-ctr-warm"); err != nil {
		b.Fatal(err)
	}
	// loops runs job(i) for i in [0, n) from min(c, n) goroutines and
	// returns the wall time and the first error.
	loops := func(n int, job func(i int) error) (time.Duration, error) {
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
		)
		start := time.Now()
		for w := range min(c, n) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += c {
					if err := job(i); err != nil {
						mu.Lock()
						first = firstErr(first, err)
						mu.Unlock()
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start), first
	}
	// pcBatch submits n tasks and waits until all of their containers are
	// deleted, the last step of a task's life in pcnoded, which writes the
	// final state before it deletes the container; ctr run --rm exits after
	// the delete, so pcnode's side is timed to the same point (a delete left
	// over would also be paid for in the next batch's time). Then, outside
	// the timed span, it checks that every task succeeded.
	pcBatch := func(n int) (time.Duration, error) {
		ids := make([]string, n)
		wctx, cancel := context.WithCancel(cb.ctrdCtx)
		defer cancel()
		waitDeleted := cb.watchDeletes(wctx)
		start := time.Now()
		if _, err := loops(n, func(i int) error {
			out, err := cb.cliProc("submit", cb.taskJSON)
			ids[i] = strings.TrimSpace(out)
			return err
		}); err != nil {
			return 0, err
		}
		werr := waitDeleted(ids)
		took := time.Since(start)
		for i, id := range ids {
			task := cb.d.WaitTask(b, id, 2*time.Minute)
			if task.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
				return 0, fmt.Errorf("task %d (%s): %v %s", i, id, task.GetState(), task.GetMessage())
			}
		}
		return took, werr
	}
	ctrBatch := func(round, n int) (time.Duration, error) {
		return loops(n, func(i int) error {
			return cb.ctrRun(fmt.Sprintf("bench-tp-ctr-%d-%d", round, i))
		})
	}
	// pcnoded runs every container under a seccomp filter (containerd's
	// default profile, native architecture only), which plain ctr run does
	// not apply; runc compiles the filter in every container's init, a cost
	// of its own. ctr under the very same profile is shown beside the
	// bound's baseline, not instead of it.
	profile, err := runtime.SeccompProfile(false)
	if err != nil {
		b.Fatal(err)
	}
	profileJSON, err := json.Marshal(profile)
	if err != nil {
		b.Fatal(err)
	}
	profilePath := filepath.Join(b.TempDir(), "seccomp.json")
	if err := os.WriteFile(profilePath, profileJSON, 0o644); err != nil {
		b.Fatal(err)
	}
	secBatch := func(round, n int) (time.Duration, error) {
		return loops(n, func(i int) error {
			return cb.ctrRun(fmt.Sprintf("bench-tp-sec-%d-%d", round, i), "--seccomp", "--seccomp-profile", profilePath)
		})
	}
	// Each side first runs c tasks untimed at full concurrency (the first
	// batch of a fresh daemon, containerd and page cache ran up to a third
	// slower than the later ones, and it was pcnode's). Then the n tasks of
	// each side run in segments, the sides' order turning through the six
	// permutations, so that a change of the machine's load during the run
	// weighs on every side alike.
	for i, warm := range []func() (time.Duration, error){
		func() (time.Duration, error) { return pcBatch(c) },
		func() (time.Duration, error) { return ctrBatch(999999, c) },
		func() (time.Duration, error) { return secBatch(999999, c) },
	} {
		if _, err := warm(); err != nil {
			b.Fatalf("warm-up %d: %v", i, err)
		}
	}
	segs := min(benchEnvInt("PCNODE_BENCH_SEGMENTS", 6), n)
	orders := [][3]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {0, 2, 1}, {2, 0, 1}, {1, 0, 2}}
	var times [3]time.Duration // pcnode, ctr, ctr with seccomp
	b.ResetTimer()
	for round := range b.N {
		times = [3]time.Duration{}
		for seg := range segs {
			size := n/segs + btoi(seg < n%segs)
			id := round*segs + seg
			for _, side := range orders[(round*segs+seg)%len(orders)] {
				var d time.Duration
				var err error
				switch side {
				case 0:
					d, err = pcBatch(size)
				case 1:
					d, err = ctrBatch(id, size)
				case 2:
					d, err = secBatch(id, size)
				}
				if err != nil {
					b.Fatal(err)
				}
				times[side] += d
			}
		}
	}
	pcTime, ctrTime, secTime := times[0], times[1], times[2]
	b.StopTimer()
	pcRate, ctrRate, secRate := float64(n)/pcTime.Seconds(), float64(n)/ctrTime.Seconds(), float64(n)/secTime.Seconds()
	ratio := pcRate / ctrRate
	b.ReportMetric(pcRate, "cli-tasks/s")
	b.ReportMetric(ctrRate, "ctr-tasks/s")
	b.ReportMetric(secRate, "ctr-seccomp-tasks/s")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(pcRate/secRate, "ratio-seccomp")
	fmt.Printf("%d no-op tasks from %d concurrent submitters, whole processes, until all finished (%d interleaved segments):\n", n, c, segs)
	fmt.Printf("  pcnode-cli submit        %8.1f tasks/s  (%v)\n", pcRate, pcTime.Round(time.Millisecond))
	fmt.Printf("  ctr run --rm             %8.1f tasks/s  (%v)\n", ctrRate, ctrTime.Round(time.Millisecond))
	fmt.Printf("  ctr run --rm --seccomp   %8.1f tasks/s  (%v)  (pcnoded's seccomp profile)\n", secRate, secTime.Round(time.Millisecond))
	fmt.Printf("  ratio cli/ctr            %8.2f   (bound ≥ 1.00)\n", ratio)
	fmt.Printf("  ratio cli/ctr --seccomp  %8.2f   (ctr under the same seccomp filter as pcnoded's containers)\n", pcRate/secRate)
}

// btoi is 1 for true, 0 for false.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// firstErr is the first non-nil error of a and b.
func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
