package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// BenchmarkIntegrationSubmitToExit measures the median time from submitting
// a no-op task to pcnoded until the task is recorded finished, next to
// `ctr run --rm` of the same image and command on the same containerd, in
// the same run, and reports both and their ratio. `make bench` runs it;
// PCNODE_BENCH_RUNS sets the number of runs of each (default 15).
//
// pcnoded's figure includes what ctr does not do: the spec's validation and
// resolution, two bbolt writes per state change (QUEUED, PREPARING,
// RUNNING, SUCCEEDED), output preparation, log capture through the shim's
// logging binary, reading usage from the cgroup and deleting the container.
func BenchmarkIntegrationSubmitToExit(b *testing.B) {
	runs := 15
	if v, err := strconv.Atoi(os.Getenv("PCNODE_BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	d := daemontest.Start(b, daemontest.Options{NoRace: true, LogLevel: "warn"})
	img := d.ImportImage(b, testimage.Image{})
	spec := &pcnodev1.TaskSpec{
		Name:     "noop",
		Image:    img.GetName(),
		Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "exit"},
		Env:      []*pcnodev1.EnvVar{{Name: "CODE", Value: "0"}},
	}
	ctrRun := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "ctr", "--address", d.ContainerdAddress, "--namespace", d.Namespace,
			"run", "--rm", img.GetName(), fmt.Sprintf("bench-ctr-%d", i), "/pctest", "exit", "0").CombinedOutput()
		if err != nil {
			return fmt.Errorf("ctr run: %v: %s", err, out)
		}
		return nil
	}
	if _, err := exec.LookPath("ctr"); err != nil {
		b.Fatalf("ctr is needed for the baseline: %v", err)
	}
	// Warm up both paths once (image unpack, binaries in page cache).
	if task, _ := d.Run(b, spec); task.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
		b.Fatalf("warm-up task: %v %s", task.GetState(), task.GetMessage())
	}
	if err := ctrRun(1000); err != nil {
		b.Fatal(err)
	}

	var pc, ctr []time.Duration
	b.ResetTimer()
	for range b.N {
		pc, ctr = pc[:0], ctr[:0]
		for i := range runs {
			start := time.Now()
			task, _ := d.Run(b, spec)
			pc = append(pc, time.Since(start))
			if task.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
				b.Fatalf("run %d: %v %s", i, task.GetState(), task.GetMessage())
			}
			start = time.Now()
			if err := ctrRun(i); err != nil {
				b.Fatal(err)
			}
			ctr = append(ctr, time.Since(start))
		}
	}
	b.StopTimer()
	mp, mc := median(pc), median(ctr)
	ratio := float64(mp) / float64(mc)
	b.ReportMetric(float64(mp.Milliseconds()), "pcnoded-ms")
	b.ReportMetric(float64(mc.Milliseconds()), "ctr-run-ms")
	b.ReportMetric(ratio, "ratio")
	fmt.Printf("submit→exit of a no-op task, median of %d runs each, same containerd, same run:\n", runs)
	fmt.Printf("  pcnoded RunTask    %8.1f ms\n", float64(mp.Microseconds())/1000)
	fmt.Printf("  ctr run --rm       %8.1f ms\n", float64(mc.Microseconds())/1000)
	fmt.Printf("  ratio pcnoded/ctr  %8.2f\n", ratio)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
