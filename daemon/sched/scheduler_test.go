package sched

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A node with 4 cores, 8 GiB and no GPUs.
var small = Config{Allocatable: Resources{MilliCPU: 4 * core, MemoryBytes: 8 * gib}}

func TestNewInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"negative cpu", Config{Allocatable: Resources{MilliCPU: -1}}},
		{"negative memory", Config{Allocatable: Resources{MemoryBytes: -1}}},
		{"gpu without uuid", Config{GPUs: []GPU{{Index: 0}}}},
		{"repeated uuid", Config{GPUs: []GPU{gpu(0, 0), gpu(0, 0)}}},
		{"negative index", Config{GPUs: []GPU{{Index: -1, UUID: "x"}}}},
		{"negative memory gpu", Config{GPUs: []GPU{{UUID: "x", MemoryBytes: -1}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); !errors.Is(err, ErrInvalid) {
				t.Errorf("New(%+v) = %v, want ErrInvalid", tt.cfg, err)
			}
		})
	}
}

func TestEnqueueInvalid(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		want error
	}{
		{"empty id", Request{Requests: Resources{MilliCPU: 1}}, ErrInvalid},
		{"negative cpu", Request{ID: "a", Requests: Resources{MilliCPU: -1}}, ErrInvalid},
		{"negative memory", Request{ID: "a", Requests: Resources{MemoryBytes: -1}}, ErrInvalid},
		{"negative gpus", Request{ID: "a", Requests: Resources{GPUs: -1}}, ErrInvalid},
		{"negative gpu memory", Request{ID: "a", GPUMinMemoryBytes: -1}, ErrInvalid},
		{"queued id", Request{ID: "queued"}, ErrDuplicate},
		{"running id", Request{ID: "running"}, ErrDuplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := run(t, small, enq("running", 0, core, gib, 0), sched("running"), enq("queued", 0, 4*core, gib, 0))
			if err := e.s.Enqueue(tt.req); !errors.Is(err, tt.want) {
				t.Errorf("Enqueue(%+v) = %v, want %v", tt.req, err, tt.want)
			}
			if got := e.s.Snapshot(); got.Queued != 1 || got.Running != 1 {
				t.Errorf("after a refused Enqueue: %d queued, %d running, want 1 and 1", got.Queued, got.Running)
			}
		})
	}
}

// Whether a task can ever fit is judged against every GPU of the inventory:
// a task that needs GPUs that are unhealthy, or whose health is not known
// yet (right after a start), is queued and starts once they are healthy.
func TestEnqueueCountsEveryGPU(t *testing.T) {
	cfg := Config{
		Allocatable: Resources{MilliCPU: 4 * core, MemoryBytes: 8 * gib},
		GPUs: []GPU{
			{Index: 0, UUID: "g0", Model: "Tesla T4", MemoryBytes: 16 * gib, NUMANode: 0, Health: Healthy},
			{Index: 1, UUID: "g1", Model: "Tesla T4", MemoryBytes: 16 * gib, NUMANode: 0, Health: Unhealthy},
			{Index: 2, UUID: "g2", Model: "Tesla T4", MemoryBytes: 16 * gib, NUMANode: 0, Health: Unknown},
		},
	}
	e := newEnv(t, cfg)
	for _, r := range []Request{
		{ID: "three", Requests: Resources{GPUs: 3}},
		{ID: "unhealthy-one", Requests: Resources{GPUs: 2}, GPUModel: "t4"},
	} {
		if err := e.s.Enqueue(r); err != nil {
			t.Fatalf("Enqueue(%q, %d GPUs of 3, one healthy) = %v, want queued", r.ID, r.Requests.GPUs, err)
		}
		if now, ever, reason := e.s.Fits(r); now || !ever {
			t.Errorf("Fits(%q) = %v, %v, %q, want false, true", r.ID, now, ever, reason)
		}
	}
	if got := e.s.Schedule(); len(got) != 0 {
		t.Fatalf("Schedule() with one healthy GPU = %q, want nothing", describe(got))
	}
	e.s.SetGPUHealth("g2", Healthy)
	if got := strings.Join(describe(e.s.Schedule()), " "); got != "unhealthy-one:g0,g2" {
		t.Fatalf("Schedule() once g2 is healthy = %q, want unhealthy-one:g0,g2", got)
	}
	e.s.Release("unhealthy-one")
	e.s.SetGPUHealth("g1", Healthy)
	if got := strings.Join(describe(e.s.Schedule()), " "); got != "three:g0,g1,g2" {
		t.Fatalf("Schedule() once all are healthy = %q, want three:g0,g1,g2", got)
	}
	if err := e.s.Enqueue(Request{ID: "four", Requests: Resources{GPUs: 4}}); !errors.Is(err, ErrNeverFits) {
		t.Errorf("Enqueue(4 GPUs on a 3-GPU node) = %v, want ErrNeverFits", err)
	}
}

func TestEnqueueNeverFits(t *testing.T) {
	cfg := Config{
		Allocatable: Resources{MilliCPU: 4 * core, MemoryBytes: 8 * gib},
		GPUs: []GPU{
			gpu(0, 0),
			{Index: 1, UUID: "g1", Model: "NVIDIA A100-SXM4-80GB", MemoryBytes: 80 * gib, NUMANode: 0, Health: Healthy},
			{Index: 2, UUID: "g2", Model: "Tesla T4", MemoryBytes: 16 * gib, NUMANode: 1, Health: Unhealthy},
			{Index: 3, UUID: "g3", Model: "Tesla T4", MemoryBytes: 16 * gib, NUMANode: 1, Health: Unknown},
		},
	}
	tests := []struct {
		name      string
		req       Request
		wantAvail Resources
		wantMsg   string
	}{
		{
			name:      "cpu",
			req:       Request{ID: "a", Requests: Resources{MilliCPU: 6000, MemoryBytes: gib}},
			wantAvail: Resources{MilliCPU: 4000, MemoryBytes: 8 * gib},
			wantMsg:   `task "a" can never fit this node: cpu 6000m requested, 4000m allocatable`,
		},
		{
			name:      "memory",
			req:       Request{ID: "a", Requests: Resources{MilliCPU: 1000, MemoryBytes: 16 * gib}},
			wantAvail: Resources{MilliCPU: 4000, MemoryBytes: 8 * gib},
			wantMsg:   `task "a" can never fit this node: memory 17179869184 bytes (16.0 GiB) requested, 8589934592 bytes (8.0 GiB) allocatable`,
		},
		{
			name:      "cpu and memory",
			req:       Request{ID: "a", Requests: Resources{MilliCPU: 4001, MemoryBytes: 8*gib + 1}},
			wantAvail: Resources{MilliCPU: 4000, MemoryBytes: 8 * gib},
			wantMsg:   `task "a" can never fit this node: cpu 4001m requested, 4000m allocatable; memory 8589934593 bytes (8.0 GiB) requested, 8589934592 bytes (8.0 GiB) allocatable`,
		},
		{
			name:      "more gpus than the node has",
			req:       Request{ID: "a", Requests: Resources{MilliCPU: 1, GPUs: 5}},
			wantAvail: Resources{MilliCPU: 4000, MemoryBytes: 8 * gib, GPUs: 4},
			wantMsg:   `task "a" can never fit this node: gpus 5 requested, 4 GPUs on this node`,
		},
		{
			name:      "model no gpu has",
			req:       Request{ID: "a", Requests: Resources{GPUs: 1}, GPUModel: "h100"},
			wantAvail: Resources{MilliCPU: 4000, MemoryBytes: 8 * gib, GPUs: 0},
			wantMsg:   `task "a" can never fit this node: gpus 1 requested, 0 GPUs on this node matching (model "h100")`,
		},
		{
			name:      "more gpus of a model than there are, unhealthy ones counted",
			req:       Request{ID: "a", Requests: Resources{GPUs: 3}, GPUModel: "t4"},
			wantAvail: Resources{MilliCPU: 4000, MemoryBytes: 8 * gib, GPUs: 2},
			wantMsg:   `task "a" can never fit this node: gpus 3 requested, 2 GPUs on this node matching (model "t4")`,
		},
		{
			name:      "memory selector",
			req:       Request{ID: "a", Requests: Resources{GPUs: 2}, GPUMinMemoryBytes: 48 * gib, GPUModel: "A100"},
			wantAvail: Resources{MilliCPU: 4000, MemoryBytes: 8 * gib, GPUs: 1},
			wantMsg:   `task "a" can never fit this node: gpus 2 requested, 1 GPUs on this node matching (model "A100", memory >= 51539607552 bytes (48.0 GiB))`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cfg)
			err := e.s.Enqueue(tt.req)
			if !errors.Is(err, ErrNeverFits) {
				t.Fatalf("Enqueue(%+v) = %v, want ErrNeverFits", tt.req, err)
			}
			var fe *FitError
			if !errors.As(err, &fe) {
				t.Fatalf("Enqueue(%+v) = %T, want *FitError", tt.req, err)
			}
			if diff := cmp.Diff(tt.wantAvail, fe.Available); diff != "" {
				t.Errorf("FitError.Available mismatch (-want +got):\n%s", diff)
			}
			if fe.Requested != tt.req.Requests || !fe.Never {
				t.Errorf("FitError = %+v, want Requested %v and Never", fe, tt.req.Requests)
			}
			if got := err.Error(); got != tt.wantMsg {
				t.Errorf("Enqueue(%q).Error() = %q, want %q", tt.req.ID, got, tt.wantMsg)
			}
			now, ever, reason := e.s.Fits(tt.req)
			if now || ever || reason != tt.wantMsg {
				t.Errorf("Fits(%q) = %v, %v, %q, want false, false, %q", tt.req.ID, now, ever, reason, tt.wantMsg)
			}
			if q := e.s.Snapshot().Queued; q != 0 {
				t.Errorf("Snapshot().Queued = %d after refusal, want 0", q)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name:  "empty queue starts nothing",
			cfg:   small,
			steps: []step{sched()},
		},
		{
			name: "everything that fits starts, in submission order",
			cfg:  small,
			steps: []step{
				enq("a", 0, core, gib, 0), adv(time.Second), enq("b", 0, core, gib, 0), adv(time.Second),
				enq("c", 0, 2*core, 6*gib, 0),
				sched("a", "b", "c"),
				sched(),
			},
		},
		{
			name: "exact fit",
			cfg:  small,
			steps: []step{
				enq("a", 0, 4*core, 8*gib, 0), enq("b", 0, 1, 1, 0),
				sched("a"), rel("a"), sched("b"),
			},
		},
		{
			name: "priority before submission time",
			cfg:  small,
			steps: []step{
				enq("old-low", 0, 4*core, gib, 0), adv(time.Second),
				enq("new-high", 5, 4*core, gib, 0), adv(time.Second),
				enq("newer-high", 5, 4*core, gib, 0),
				enq("negative", -3, 4*core, gib, 0),
				sched("new-high"), rel("new-high"),
				sched("newer-high"), rel("newer-high"),
				sched("old-low"), rel("old-low"),
				sched("negative"),
			},
		},
		{
			name: "same priority and time: id order",
			cfg:  small,
			steps: []step{
				enq("b", 0, 4*core, gib, 0), enq("c", 0, 4*core, gib, 0), enq("a", 0, 4*core, gib, 0),
				sched("a"), rel("a"), sched("b"), rel("b"), sched("c"),
			},
		},
		{
			name: "explicit submission times order the queue",
			cfg:  small,
			steps: []step{
				enqReq(Request{ID: "late", Submitted: epoch.Add(time.Hour), Requests: Resources{MilliCPU: 4 * core}}),
				enqReq(Request{ID: "early", Submitted: epoch.Add(-time.Hour), Requests: Resources{MilliCPU: 4 * core}}),
				sched("early"), rel("early"), sched("late"),
			},
		},
		{
			name: "memory blocks as well as cpu",
			cfg:  small,
			steps: []step{
				enq("a", 0, core, 6*gib, 0), enq("b", 0, core, 6*gib, 0),
				sched("a"), rel("a"), sched("b"),
			},
		},
		{
			name: "zero request always fits",
			cfg:  small,
			steps: []step{
				enq("big", 0, 4*core, 8*gib, 0), enq("zero", 0, 0, 0, 0), sched("big", "zero"),
			},
		},
		{
			name: "release makes room for the head",
			cfg:  small,
			steps: []step{
				enq("a", 0, 3*core, gib, 0), enq("b", 0, 3*core, gib, 0), enq("c", 0, 3*core, gib, 0),
				sched("a"), sched(), rel("a"), sched("b"), rel("b"), sched("c"),
			},
		},
		{
			name: "higher priority arriving later starts next",
			cfg:  small,
			steps: []step{
				enq("a", 0, 4*core, gib, 0), enq("b", 0, 4*core, gib, 0), sched("a"),
				adv(time.Minute), enq("urgent", 9, 4*core, gib, 0),
				rel("a"), sched("urgent"), rel("urgent"), sched("b"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, tt.cfg, tt.steps...) })
	}
}

func TestBackfill(t *testing.T) {
	window := 5 * time.Minute
	cfg := small
	cfg.BackfillWindow = window
	strict := small
	strict.BackfillWindow = -1
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{
			name: "small task passes a blocked large one within the window",
			cfg:  cfg,
			steps: []step{
				enq("running", 0, 3*core, gib, 0), sched("running"),
				enq("large", 0, 2*core, gib, 0), adv(time.Second), enq("small", 0, core, gib, 0),
				sched("small"),
			},
		},
		{
			name: "a lower priority task may pass too",
			cfg:  cfg,
			steps: []step{
				enq("running", 0, 3*core, gib, 0), sched("running"),
				enq("large", 5, 2*core, gib, 0), enq("small", 0, core, gib, 0),
				sched("small"),
			},
		},
		{
			name: "nothing passes once the blocked task waited the window",
			cfg:  cfg,
			steps: []step{
				enq("running", 0, 3*core, gib, 0), sched("running"),
				enq("large", 0, 2*core, gib, 0), adv(window), enq("small", 0, core, gib, 0),
				sched(),
				rel("running"), sched("large", "small"),
			},
		},
		{
			name: "just inside the window still passes",
			cfg:  cfg,
			steps: []step{
				enq("running", 0, 3*core, gib, 0), sched("running"),
				enq("large", 0, 2*core, gib, 0), adv(window - time.Nanosecond), enq("small", 0, core, gib, 0),
				sched("small"),
			},
		},
		{
			name: "backfill stops mid-queue at the expired blocker",
			cfg:  cfg,
			steps: []step{
				enq("running", 0, 3*core, 2*gib, 0), sched("running"),
				enq("x-large", 0, 4*core, gib, 0), adv(window),
				enq("large", 0, 2*core, gib, 0), enq("small", 0, core, gib, 0),
				// x-large's window is over: nothing behind it starts.
				sched(),
			},
		},
		{
			name: "a fresh blocker in front lets tasks pass until its window ends",
			cfg:  cfg,
			steps: []step{
				enq("running", 0, 3*core, 2*gib, 0), sched("running"),
				enq("large", 0, 2*core, gib, 0), enq("s1", 0, core, gib, 0), sched("s1"),
				enq("s2", 0, core, gib, 0), rel("s1"), adv(window - time.Second), sched("s2"),
				rel("s2"), adv(time.Second), enq("s3", 0, core, gib, 0), sched(),
				rel("running"), sched("large", "s3"),
			},
		},
		{
			name: "default window is five minutes",
			cfg:  small,
			steps: []step{
				enq("running", 0, 3*core, gib, 0), sched("running"),
				enq("large", 0, 2*core, gib, 0), enq("small", 0, core, gib, 0), enq("small2", 0, core, gib, 0),
				adv(DefaultBackfillWindow - time.Second), sched("small"), rel("small"),
				adv(time.Second), sched(),
			},
		},
		{
			name: "strict order: nothing passes ever",
			cfg:  strict,
			steps: []step{
				enq("running", 0, 3*core, gib, 0), sched("running"),
				enq("large", 0, 2*core, gib, 0), enq("small", 0, core, gib, 0),
				sched(), rel("running"), sched("large", "small"),
			},
		},
		{
			name: "a blocked task that cannot fit the idle node does not hold the queue",
			cfg:  Config{Allocatable: small.Allocatable, GPUs: gpus(2), BackfillWindow: window},
			steps: []step{
				enq("two-gpus", 0, core, gib, 2), health("g1", Unhealthy), adv(window),
				enq("cpu", 0, core, gib, 0), sched("cpu"),
				health("g1", Healthy), sched("two-gpus:g0,g1"),
			},
		},
		{
			name: "a blocked GPU task holds the queue once its window is over",
			cfg:  Config{Allocatable: small.Allocatable, GPUs: gpus(2), BackfillWindow: window},
			steps: []step{
				enq("one", 0, core, gib, 1), sched("one:g0"),
				enq("two", 0, core, gib, 2), enq("cpu", 0, core, gib, 0), sched("cpu"),
				adv(window), enq("cpu2", 0, core, gib, 0), sched(),
				rel("one"), sched("two:g0,g1", "cpu2"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { run(t, tt.cfg, tt.steps...) })
	}
}

func TestRemove(t *testing.T) {
	e := run(t, small,
		enq("a", 0, 4*core, gib, 0), enq("b", 0, 4*core, gib, 0), enq("c", 0, 4*core, gib, 0), sched("a"))
	tests := []struct {
		id   string
		want bool
	}{
		{"b", true},
		{"b", false},   // already removed
		{"a", false},   // running, not queued
		{"zzz", false}, // unknown
	}
	for _, tt := range tests {
		if got := e.s.Remove(tt.id); got != tt.want {
			t.Errorf("Remove(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
	if diff := cmp.Diff([]string{"c"}, e.s.Snapshot().Queue); diff != "" {
		t.Errorf("Snapshot().Queue mismatch (-want +got):\n%s", diff)
	}
	if e.s.Release("b") {
		t.Errorf("Release(%q) = true for a removed task, want false", "b")
	}
	rel("a")(e)
	sched("c")(e)
	// A removed id may be queued again.
	enq("b", 0, core, gib, 0)(e)
}

func TestReleaseUnknown(t *testing.T) {
	e := run(t, small, enq("q", 0, 8*core/2, gib, 0), enq("q2", 0, core, gib, 0), sched("q"))
	for _, id := range []string{"q2", "nope", ""} {
		if e.s.Release(id) {
			t.Errorf("Release(%q) = true, want false", id)
		}
	}
	if !e.s.Release("q") || e.s.Release("q") {
		t.Errorf("Release(%q) twice did not return true then false", "q")
	}
	if got := e.s.Snapshot().Allocated; got != (Resources{}) {
		t.Errorf("Snapshot().Allocated after release = %v, want zero", got)
	}
}

func TestMaxRunning(t *testing.T) {
	s, err := New(Config{Allocatable: Resources{MilliCPU: 64000, MemoryBytes: 64 << 30}, MaxRunning: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.Enqueue(Request{ID: fmt.Sprintf("t%d", i), Requests: Resources{MilliCPU: 100, MemoryBytes: 1 << 20}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(s.Schedule()); got != 2 {
		t.Fatalf("Schedule() started %d tasks, want 2 (MaxRunning)", got)
	}
	if got := len(s.Schedule()); got != 0 {
		t.Fatalf("second Schedule() started %d tasks, want 0", got)
	}
	s.Release("t0")
	a := s.Schedule()
	if len(a) != 1 || a[0].ID != "t2" {
		t.Fatalf("after Release, Schedule() = %v, want [t2]", a)
	}
}
