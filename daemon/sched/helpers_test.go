package sched

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	gib  = int64(1) << 30
	core = int64(1000)
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: epoch} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// gpu makes a healthy GPU "g<index>" with 40 GiB on the given NUMA node.
func gpu(index, numa int) GPU {
	return GPU{Index: index, UUID: fmt.Sprintf("g%d", index), Model: "NVIDIA A100-SXM4-40GB", MemoryBytes: 40 * gib, NUMANode: numa, Health: Healthy}
}

// gpus makes n GPUs, the first half on NUMA node 0 and the rest on node 1.
func gpus(n int) []GPU {
	out := make([]GPU, n)
	for i := range out {
		out[i] = gpu(i, i*2/max(n, 1))
	}
	return out
}

// env is a scheduler on a fake clock, driven by steps.
type env struct {
	t     *testing.T
	s     *Scheduler
	clock *fakeClock
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	c := newClock()
	cfg.Clock = c.Now
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v) = %v", cfg, err)
	}
	return &env{t: t, s: s, clock: c}
}

type step func(e *env)

// enq queues a task submitted now.
func enq(id string, prio int, cpu, mem int64, ngpu int) step {
	return enqReq(Request{ID: id, Priority: prio, Requests: Resources{MilliCPU: cpu, MemoryBytes: mem, GPUs: ngpu}})
}

func enqReq(r Request) step {
	return func(e *env) {
		e.t.Helper()
		if err := e.s.Enqueue(r); err != nil {
			e.t.Fatalf("Enqueue(%q) = %v, want nil", r.ID, err)
		}
	}
}

func adv(d time.Duration) step { return func(e *env) { e.clock.Advance(d) } }

func rel(id string) step {
	return func(e *env) {
		e.t.Helper()
		if !e.s.Release(id) {
			e.t.Fatalf("Release(%q) = false, want true", id)
		}
	}
}

func health(uuid string, h Health) step {
	return func(e *env) {
		e.t.Helper()
		if _, err := e.s.SetGPUHealth(uuid, h); err != nil {
			e.t.Fatalf("SetGPUHealth(%q) = %v", uuid, err)
		}
	}
}

// sched runs Schedule and wants exactly these starts, in order; a start is
// written "id" or "id:uuid,uuid".
func sched(want ...string) step {
	return func(e *env) {
		e.t.Helper()
		got := describe(e.s.Schedule())
		if strings.Join(got, " ") != strings.Join(want, " ") {
			e.t.Fatalf("Schedule() = %q, want %q", got, want)
		}
	}
}

func describe(as []Assignment) []string {
	out := []string{}
	for _, a := range as {
		d := a.ID
		if len(a.GPUs) > 0 {
			d += ":" + strings.Join(a.UUIDs(), ",")
		}
		out = append(out, d)
	}
	return out
}

func run(t *testing.T, cfg Config, steps ...step) *env {
	t.Helper()
	e := newEnv(t, cfg)
	for _, st := range steps {
		st(e)
	}
	return e
}
