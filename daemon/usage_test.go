package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	"github.com/pcnode/pcnode/gpu"
)

// taskRuntime extends the imageLookup fake with what a running task asks of
// containerd: Version (for nodeInfo) and Pids, which answers pids or err and
// records the container ids asked about. Every other method stays absent.
type taskRuntime struct {
	imageLookup
	pids []int
	err  error

	mu    sync.Mutex
	asked []string
}

func (f *taskRuntime) Version(context.Context) (runtime.Version, error) {
	return runtime.Version{Version: "1.6-test"}, nil
}

func (f *taskRuntime) Pids(_ context.Context, id string) ([]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, id)
	if f.err != nil {
		return nil, f.err
	}
	return append([]int(nil), f.pids...), nil
}

func (f *taskRuntime) pidsAsked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

// procMemCall is one call of the fake process-memory sampler.
type procMemCall struct {
	UUIDs []string
	Pids  []int
}

// fakeProcMem answers with totals[i] on its i-th call (the last one
// thereafter), or err, and records what it was asked.
type fakeProcMem struct {
	totals []int64
	err    error
	calls  []procMemCall
}

func (f *fakeProcMem) sample(_ context.Context, uuids []string, pids []int) (gpu.ProcessMemory, error) {
	f.calls = append(f.calls, procMemCall{UUIDs: append([]string(nil), uuids...), Pids: append([]int(nil), pids...)})
	if f.err != nil {
		return gpu.ProcessMemory{}, f.err
	}
	total := f.totals[min(len(f.calls), len(f.totals))-1]
	return gpu.ProcessMemory{PerGPU: map[string]int64{uuids[0]: total}, TotalBytes: total}, nil
}

// usageDaemon is a Daemon whose runtime is rt and whose GPUs sample process
// memory with pm (none when pm is nil).
func usageDaemon(rt *taskRuntime, pm *fakeProcMem) *Daemon {
	g := &gpuNode{inv: gpu.NewNone(), uuids: []string{gpuA, gpuB}}
	if pm != nil {
		g.procMem = pm.sample
	}
	return &Daemon{log: slog.New(slog.DiscardHandler), rt: rt, gpus: g}
}

func TestSampleGPUMemoryKeepsPeak(t *testing.T) {
	rt := &taskRuntime{pids: []int{4242, 4243}}
	pm := &fakeProcMem{totals: []int64{100 << 20, 300 << 20, 200 << 20, 50 << 20}}
	d := usageDaemon(rt, pm)
	a := gpuAssignment(gpuB)
	a.ID = "task-gpu"
	r := d.newRunner(a.ID, a, nil)
	defer r.cancel()

	for i, want := range []int64{100 << 20, 300 << 20, 300 << 20, 300 << 20} {
		r.sampleGPUMemory()
		if r.peakGPUMemory != want {
			t.Errorf("peakGPUMemory after sample %d (totals %v) = %d, want %d", i+1, pm.totals, r.peakGPUMemory, want)
		}
	}
	wantCalls := make([]procMemCall, 4)
	for i := range wantCalls {
		wantCalls[i] = procMemCall{UUIDs: []string{gpuB}, Pids: []int{4242, 4243}}
	}
	if diff := cmp.Diff(wantCalls, pm.calls); diff != "" {
		t.Errorf("process memory asked about (-want +got):\n%s", diff)
	}
	if got, want := rt.pidsAsked(), []string{a.ID, a.ID, a.ID, a.ID}; !cmp.Equal(got, want) {
		t.Errorf("Pids asked for %q, want %q", got, want)
	}
}

func TestSampleGPUMemoryNothingToSample(t *testing.T) {
	for _, tc := range []struct {
		name      string
		alloc     sched.Assignment
		canSample bool // whether the backend can sample process memory
		pidErr    error
		pmErr     error
		// What the runner is expected to have asked.
		wantPids    int
		wantProcMem int
	}{
		{name: "no GPUs", alloc: sched.Assignment{ID: "t1"}, canSample: true},
		{name: "backend cannot sample", alloc: gpuAssignment(gpuA)},
		{name: "Pids fails", alloc: gpuAssignment(gpuA), canSample: true, pidErr: errors.New("container gone"), wantPids: 1},
		{name: "sampler fails", alloc: gpuAssignment(gpuA), canSample: true, pmErr: errors.New("NVML busy"), wantPids: 1, wantProcMem: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &taskRuntime{pids: []int{7}, err: tc.pidErr}
			pm := &fakeProcMem{totals: []int64{1 << 30}, err: tc.pmErr}
			var d *Daemon
			if tc.canSample {
				d = usageDaemon(rt, pm)
			} else {
				d = usageDaemon(rt, nil)
			}
			r := d.newRunner(tc.alloc.ID, tc.alloc, nil)
			defer r.cancel()
			const peak = 5 << 20 // from earlier samples
			r.peakGPUMemory = peak
			r.sampleGPUMemory()
			if r.peakGPUMemory != peak {
				t.Errorf("sampleGPUMemory(%s): peak = %d, want %d unchanged", tc.name, r.peakGPUMemory, peak)
			}
			if got := len(rt.pidsAsked()); got != tc.wantPids {
				t.Errorf("sampleGPUMemory(%s) called Pids %d times, want %d", tc.name, got, tc.wantPids)
			}
			if got := len(pm.calls); got != tc.wantProcMem {
				t.Errorf("sampleGPUMemory(%s) called the process memory sampler %d times, want %d", tc.name, got, tc.wantProcMem)
			}
		})
	}
}
