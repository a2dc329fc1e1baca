package sched

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestChooseGPUs(t *testing.T) {
	// mk builds candidates from "index@numa" pairs.
	mk := func(spec ...[2]int) []*GPU {
		out := make([]*GPU, len(spec))
		for i, s := range spec {
			g := gpu(s[0], s[1])
			out[i] = &g
		}
		return out
	}
	tests := []struct {
		name  string
		cands []*GPU
		n     int
		want  []int
	}{
		{"none needed", mk([2]int{0, 0}), 0, nil},
		{"too few", mk([2]int{0, 0}), 2, nil},
		{"single: lowest index", mk([2]int{3, 1}, [2]int{5, 0}), 1, []int{3}},
		{"two on one node", mk([2]int{0, 0}, [2]int{1, 0}, [2]int{2, 1}, [2]int{3, 1}), 2, []int{0, 1}},
		{"prefers one node over lowest indices", mk([2]int{1, 0}, [2]int{2, 1}, [2]int{3, 1}), 2, []int{2, 3}},
		{"best fit: smallest node that suffices", mk([2]int{0, 0}, [2]int{1, 0}, [2]int{2, 0}, [2]int{5, 1}, [2]int{6, 1}), 2, []int{5, 6}},
		{"tie between nodes: lowest index", mk([2]int{4, 1}, [2]int{5, 1}, [2]int{6, 0}, [2]int{7, 0}), 2, []int{4, 5}},
		{"no node has enough: lowest indices", mk([2]int{0, 0}, [2]int{2, 1}, [2]int{4, 2}), 2, []int{0, 2}},
		{"unknown numa is no group", mk([2]int{0, -1}, [2]int{1, -1}, [2]int{2, 0}, [2]int{3, 0}), 2, []int{2, 3}},
		{"all unknown: lowest indices", mk([2]int{0, -1}, [2]int{1, -1}, [2]int{2, -1}), 2, []int{0, 1}},
		{"whole node", mk([2]int{0, 0}, [2]int{1, 0}, [2]int{2, 0}, [2]int{3, 0}, [2]int{4, 1}), 4, []int{0, 1, 2, 3}},
		{"spans nodes when it must", mk([2]int{0, 0}, [2]int{1, 0}, [2]int{2, 1}, [2]int{3, 1}), 3, []int{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for _, g := range chooseGPUs(tt.cands, tt.n) {
				got = append(got, g.Index)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("chooseGPUs(n=%d) mismatch (-want +got):\n%s", tt.n, diff)
			}
		})
	}
}

func TestScheduleGPUs(t *testing.T) {
	big := Resources{MilliCPU: 64 * core, MemoryBytes: 512 * gib}
	// 8 GPUs: g0..g3 on NUMA 0, g4..g7 on NUMA 1.
	eight := Config{Allocatable: big, GPUs: gpus(8)}
	mixed := Config{Allocatable: big, GPUs: []GPU{
		{Index: 0, UUID: "t4", Model: "Tesla T4", MemoryBytes: 16 * gib, NUMANode: 0, Health: Healthy},
		{Index: 1, UUID: "a40", Model: "NVIDIA A100-SXM4-40GB", MemoryBytes: 40 * gib, NUMANode: 0, Health: Healthy},
		{Index: 2, UUID: "a80", Model: "NVIDIA A100-SXM4-80GB", MemoryBytes: 80 * gib, NUMANode: 1, Health: Healthy},
		{Index: 3, UUID: "nomem", Model: "NVIDIA A100 (memory unknown)", NUMANode: 1, Health: Healthy},
	}}
	gpuReq := func(id string, n int, minMem int64, model string) step {
		return enqReq(Request{ID: id, Requests: Resources{MilliCPU: core, MemoryBytes: gib, GPUs: n}, GPUMinMemoryBytes: minMem, GPUModel: model})
	}
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name:  "single GPUs by lowest index",
			cfg:   eight,
			steps: []step{enq("a", 0, core, gib, 1), enq("b", 0, core, gib, 1), sched("a:g0", "b:g1")},
		},
		{
			name: "several GPUs from one NUMA node",
			cfg:  eight,
			steps: []step{
				enq("one", 0, core, gib, 1), sched("one:g0"),
				enq("four", 0, core, gib, 4), sched("four:g4,g5,g6,g7"),
				enq("three", 0, core, gib, 3), sched("three:g1,g2,g3"),
			},
		},
		{
			name: "best fit keeps a whole NUMA node free",
			cfg:  eight,
			steps: []step{
				enq("one", 0, core, gib, 1), sched("one:g0"),
				enq("two", 0, core, gib, 2), sched("two:g1,g2"),
				enq("four", 0, core, gib, 4), sched("four:g4,g5,g6,g7"),
			},
		},
		{
			name: "spans NUMA nodes when no node has enough",
			cfg:  eight,
			steps: []step{
				enq("three", 0, core, gib, 3), enq("three-b", 0, core, gib, 3), sched("three:g0,g1,g2", "three-b:g4,g5,g6"),
				enq("two", 0, core, gib, 2), sched("two:g3,g7"),
			},
		},
		{
			name: "GPU tasks wait for GPUs, CPU tasks backfill",
			cfg:  Config{Allocatable: big, GPUs: gpus(2)},
			steps: []step{
				enq("a", 0, core, gib, 1), enq("b", 0, core, gib, 1), enq("c", 0, core, gib, 1), enq("cpu", 0, core, gib, 0),
				sched("a:g0", "b:g1", "cpu"),
				rel("b"), sched("c:g1"),
			},
		},
		{
			name: "unhealthy and unknown GPUs are skipped",
			cfg:  eight,
			steps: []step{
				health("g0", Unhealthy), health("g1", Unknown),
				enq("a", 0, core, gib, 1), enq("b", 0, core, gib, 2), sched("a:g2", "b:g4,g5"),
			},
		},
		{
			name: "a GPU failing while held stays with its holder and is not reassigned",
			cfg:  Config{Allocatable: big, GPUs: gpus(2)},
			steps: []step{
				enq("a", 0, core, gib, 1), sched("a:g0"), health("g0", Unhealthy),
				enq("b", 0, core, gib, 1), sched("b:g1"),
				rel("a"), enq("c", 0, core, gib, 1), sched(),
				health("g0", Healthy), sched("c:g0"),
			},
		},
		{
			name:  "model selector, case-insensitive substring",
			cfg:   mixed,
			steps: []step{gpuReq("a", 1, 0, "t4"), gpuReq("b", 1, 0, "80gb"), gpuReq("c", 1, 0, ""), sched("a:t4", "b:a80", "c:a40")},
		},
		{
			name: "minimum memory selector; unknown memory never matches",
			cfg:  mixed,
			steps: []step{
				gpuReq("big", 2, 40*gib, ""), sched("big:a40,a80"),
				gpuReq("more", 1, 1, "a100"), gpuReq("unknown", 1, 0, "a100 (memory"), sched("unknown:nomem"),
				rel("big"), sched("more:a40"),
			},
		},
		{
			name: "model selector blocks even with other GPUs free",
			cfg:  mixed,
			steps: []step{
				gpuReq("a", 1, 70*gib, ""), gpuReq("b", 1, 70*gib, ""), sched("a:a80"),
				rel("a"), sched("b:a80"),
			},
		},
		{
			name: "cpu short blocks a GPU task even with GPUs free",
			cfg:  Config{Allocatable: Resources{MilliCPU: 2 * core, MemoryBytes: 8 * gib}, GPUs: gpus(2)},
			steps: []step{
				enq("cpu", 0, 2*core, gib, 0), enq("g", 0, core, gib, 1), sched("cpu"),
				rel("cpu"), sched("g:g0"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, tt.cfg, tt.steps...) })
	}
}

func TestSetGPUHealth(t *testing.T) {
	e := run(t, Config{Allocatable: small.Allocatable, GPUs: gpus(2)}, enq("a", 0, core, gib, 1), sched("a:g0"))
	tests := []struct {
		uuid       string
		h          Health
		wantHolder string
		wantErr    error
	}{
		{"g0", Unhealthy, "a", nil},
		{"g1", Unhealthy, "", nil},
		{"g9", Healthy, "", ErrUnknownGPU},
	}
	for _, tt := range tests {
		holder, err := e.s.SetGPUHealth(tt.uuid, tt.h)
		if holder != tt.wantHolder || !errors.Is(err, tt.wantErr) {
			t.Errorf("SetGPUHealth(%q, %v) = %q, %v, want %q, %v", tt.uuid, tt.h, holder, err, tt.wantHolder, tt.wantErr)
		}
	}
	snap := e.s.Snapshot()
	if diff := cmp.Diff(map[string]string{"g0": "a"}, snap.GPUHolders); diff != "" {
		t.Errorf("GPUHolders mismatch (-want +got):\n%s", diff)
	}
	want := Resources{MilliCPU: 4 * core, MemoryBytes: 8 * gib, GPUs: 0}
	if snap.Allocatable != want {
		t.Errorf("Snapshot().Allocatable = %v, want %v (no healthy GPUs)", snap.Allocatable, want)
	}
	if snap.Allocated.GPUs != 1 || snap.Free.GPUs != 0 {
		t.Errorf("Snapshot() GPUs allocated %d, free %d, want 1, 0", snap.Allocated.GPUs, snap.Free.GPUs)
	}
	// A GPU task queued now waits: the node has GPUs, none healthy now.
	if err := e.s.Enqueue(Request{ID: "b", Requests: Resources{GPUs: 1}}); err != nil {
		t.Errorf("Enqueue(1 GPU, all unhealthy) = %v, want queued", err)
	}
	if got := e.s.Schedule(); len(got) != 0 {
		t.Errorf("Schedule() with no healthy GPU = %q, want nothing", describe(got))
	}
}

func TestSetGPUs(t *testing.T) {
	e := run(t, Config{Allocatable: small.Allocatable, GPUs: gpus(2)},
		enq("a", 0, core, gib, 1), enq("b", 0, core, gib, 1), sched("a:g0", "b:g1"))
	if err := e.s.SetGPUs([]GPU{gpu(0, 0), gpu(0, 0)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetGPUs(repeated) = %v, want ErrInvalid", err)
	}
	if got := len(e.s.Snapshot().GPUs); got != 2 {
		t.Fatalf("after a refused SetGPUs: %d GPUs, want 2 (unchanged)", got)
	}
	// g1 vanished, g2 and g3 appeared (given out of order).
	if err := e.s.SetGPUs([]GPU{gpu(3, 1), gpu(0, 0), gpu(2, 1)}); err != nil {
		t.Fatalf("SetGPUs() = %v", err)
	}
	snap := e.s.Snapshot()
	if diff := cmp.Diff(map[string]string{"g0": "a", "g1": "b"}, snap.GPUHolders); diff != "" {
		t.Errorf("GPUHolders mismatch (-want +got):\n%s", diff)
	}
	var idx []int
	for _, g := range snap.GPUs {
		idx = append(idx, g.Index)
	}
	if diff := cmp.Diff([]int{0, 2, 3}, idx); diff != "" {
		t.Errorf("Snapshot().GPUs order mismatch (-want +got):\n%s", diff)
	}
	if snap.Allocated.GPUs != 2 || snap.Free.GPUs != 2 {
		t.Errorf("Snapshot() GPUs allocated %d, free %d, want 2, 2", snap.Allocated.GPUs, snap.Free.GPUs)
	}
	a, ok := e.s.Allocation("b")
	if !ok || len(a.GPUs) != 1 || a.GPUs[0].UUID != "g1" || a.GPUs[0].Index != -1 {
		t.Errorf("Allocation(%q) = %+v, %v, want the vanished g1 with index -1", "b", a, ok)
	}
	enq("c", 0, core, gib, 2)(e)
	sched("c:g2,g3")(e)
}

func TestRestore(t *testing.T) {
	cfg := Config{Allocatable: small.Allocatable, GPUs: gpus(4)}
	req := func(id string, cpu int64) Request {
		return Request{ID: id, Requests: Resources{MilliCPU: cpu, MemoryBytes: gib, GPUs: 1}}
	}
	t.Run("restored allocation is held", func(t *testing.T) {
		e := newEnv(t, cfg)
		if err := e.s.Restore(req("a", 3*core), []string{"g1"}); err != nil {
			t.Fatalf("Restore(a) = %v", err)
		}
		a, ok := e.s.Allocation("a")
		if !ok || cmp.Diff([]string{"g1"}, a.UUIDs()) != "" || a.Resources != (Resources{3 * core, gib, 1}) {
			t.Errorf("Allocation(a) = %+v, %v, want g1 and 3 cores", a, ok)
		}
		enq("b", 0, core, gib, 1)(e)
		enq("c", 0, core, gib, 1)(e)
		sched("b:g0")(e)
		rel("a")(e)
		sched("c:g1")(e)
	})
	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name string
			req  Request
			gpus []string
			want error
		}{
			{"duplicate running", req("held", core), nil, ErrDuplicate},
			{"duplicate queued", req("queued", core), nil, ErrDuplicate},
			{"gpu held by another", req("x", core), []string{"g0"}, ErrGPUConflict},
			{"repeated gpu", req("x", core), []string{"g2", "g2"}, ErrInvalid},
			{"empty uuid", req("x", core), []string{""}, ErrInvalid},
			{"empty id", req("", core), nil, ErrInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := newEnv(t, cfg)
				if err := e.s.Restore(req("held", core), []string{"g0"}); err != nil {
					t.Fatal(err)
				}
				enq("queued", 0, 4*core, gib, 0)(e)
				before := e.s.Snapshot()
				if err := e.s.Restore(tt.req, tt.gpus); !errors.Is(err, tt.want) {
					t.Errorf("Restore(%q, %q) = %v, want %v", tt.req.ID, tt.gpus, err, tt.want)
				}
				if diff := cmp.Diff(before, e.s.Snapshot()); diff != "" {
					t.Errorf("a refused Restore changed the state (-before +after):\n%s", diff)
				}
			})
		}
	})
	t.Run("overcommit is accepted and reported", func(t *testing.T) {
		e := newEnv(t, cfg)
		for _, r := range []Request{
			{ID: "a", Requests: Resources{MilliCPU: 3 * core, MemoryBytes: 6 * gib}},
			{ID: "b", Requests: Resources{MilliCPU: 3 * core, MemoryBytes: 6 * gib}},
		} {
			if err := e.s.Restore(r, nil); err != nil {
				t.Fatalf("Restore(%q) = %v", r.ID, err)
			}
		}
		snap := e.s.Snapshot()
		if want := (Resources{-2 * core, -4 * gib, 4}); snap.Free != want {
			t.Errorf("Snapshot().Free = %v, want %v", snap.Free, want)
		}
		enq("c", 0, core, gib, 0)(e)
		sched()(e)
		rel("a")(e)
		sched("c")(e)
	})
	t.Run("unknown GPU is recorded as held", func(t *testing.T) {
		e := newEnv(t, cfg)
		if err := e.s.Restore(req("a", core), []string{"GPU-gone"}); err != nil {
			t.Fatalf("Restore(unknown GPU) = %v", err)
		}
		if got := e.s.Snapshot().GPUHolders["GPU-gone"]; got != "a" {
			t.Errorf("GPUHolders[GPU-gone] = %q, want %q", got, "a")
		}
		// It comes back: still held, not given to anyone else.
		if err := e.s.SetGPUs(append(gpus(4), GPU{Index: 4, UUID: "GPU-gone", NUMANode: -1, Health: Healthy})); err != nil {
			t.Fatal(err)
		}
		enq("all", 0, core, gib, 5)(e)
		sched()(e)
		rel("a")(e)
		sched("all:g0,g1,g2,g3,GPU-gone")(e)
	})
}

func TestFits(t *testing.T) {
	e := run(t, Config{Allocatable: small.Allocatable, GPUs: gpus(2)},
		enq("a", 0, 3*core, 4*gib, 1), sched("a:g0"),
		enq("queued", 0, 4*core, gib, 0))
	tests := []struct {
		name       string
		req        Resources
		model      string
		wantNow    bool
		wantEver   bool
		wantReason string
	}{
		{"fits now", Resources{MilliCPU: core, MemoryBytes: gib, GPUs: 1}, "", true, true, ""},
		{"cpu busy", Resources{MilliCPU: 2 * core}, "", false, true, "task does not fit now: cpu 2000m requested, 1000m free"},
		{"gpu busy", Resources{GPUs: 2}, "", false, true, "task does not fit now: gpus 2 requested, 1 free healthy GPUs"},
		{"gpu busy with model", Resources{GPUs: 2}, "a100", false, true, `task does not fit now: gpus 2 requested, 1 free healthy GPUs matching (model "a100")`},
		{"never", Resources{MemoryBytes: 9 * gib}, "", false, false, "task can never fit this node: memory 9663676416 bytes (9.0 GiB) requested, 8589934592 bytes (8.0 GiB) allocatable"},
		{"invalid", Resources{MilliCPU: -1}, "", false, false, "invalid: negative quantity (cpu -1m, memory 0 bytes, gpus 0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now, ever, reason := e.s.Fits(Request{Requests: tt.req, GPUModel: tt.model})
			if now != tt.wantNow || ever != tt.wantEver || reason != tt.wantReason {
				t.Errorf("Fits(%v) = %v, %v, %q, want %v, %v, %q", tt.req, now, ever, reason, tt.wantNow, tt.wantEver, tt.wantReason)
			}
		})
	}
	if got := e.s.Snapshot().Queued; got != 1 {
		t.Errorf("Fits changed the queue: %d queued, want 1", got)
	}
}

func TestSnapshot(t *testing.T) {
	cfg := Config{Allocatable: small.Allocatable, GPUs: gpus(2)}
	e := run(t, cfg,
		enq("a", 0, core, 2*gib, 1), sched("a:g0"),
		enq("low", 0, 4*core, gib, 0), adv(time.Second), enq("high", 1, 4*core, gib, 0))
	got := e.s.Snapshot()
	want := Snapshot{
		Allocatable: Resources{4 * core, 8 * gib, 2},
		Allocated:   Resources{core, 2 * gib, 1},
		Free:        Resources{3 * core, 6 * gib, 1},
		Queued:      2,
		Running:     1,
		Queue:       []string{"high", "low"},
		GPUs:        gpus(2),
		GPUHolders:  map[string]string{"g0": "a"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Snapshot() mismatch (-want +got):\n%s", diff)
	}
	// The snapshot is a copy.
	got.GPUHolders["g1"] = "x"
	got.Queue[0] = "x"
	got.GPUs[0].Health = Unhealthy
	if diff := cmp.Diff(want, e.s.Snapshot()); diff != "" {
		t.Errorf("Snapshot() changed through a copy (-want +got):\n%s", diff)
	}
	if a, ok := e.s.Allocation("low"); ok {
		t.Errorf("Allocation(queued) = %+v, true, want false", a)
	}
}

func TestAssignmentGPUsAreCopies(t *testing.T) {
	e := run(t, Config{Allocatable: small.Allocatable, GPUs: gpus(2)}, enq("a", 0, core, gib, 1))
	as := e.s.Schedule()
	as[0].GPUs[0].UUID = "changed"
	if a, _ := e.s.Allocation("a"); a.GPUs[0].UUID != "g0" {
		t.Errorf("Allocation(a) = %q, changed through the returned assignment", a.GPUs[0].UUID)
	}
	if !strings.HasPrefix(e.s.Snapshot().GPUs[0].UUID, "g0") {
		t.Errorf("inventory changed through the returned assignment")
	}
}
