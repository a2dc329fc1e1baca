package sched

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// model is the test's own account of what the scheduler should hold, kept
// from the outside: the requests queued, what each started task was given,
// and the GPUs' health. The property test checks the scheduler against it.
type model struct {
	alloc   Resources
	window  time.Duration // < 0: strict
	gpus    map[string]GPU
	queued  []Request
	running map[string]Request
	holders map[string]string
}

func (m *model) free() Resources {
	f := m.alloc
	for _, r := range m.running {
		f.MilliCPU -= r.Requests.MilliCPU
		f.MemoryBytes -= r.Requests.MemoryBytes
	}
	return f
}

// gpusFor counts GPUs matching r's selector: the healthy ones (free ones
// only if asked), or with anyHealth every one in the inventory.
func (m *model) gpusFor(r Request, onlyFree, anyHealth bool) int {
	n := 0
	for _, g := range m.gpus {
		if _, held := m.holders[g.UUID]; (anyHealth || g.Health == Healthy) && g.matches(r.GPUMinMemoryBytes, r.GPUModel) && !(onlyFree && held) {
			n++
		}
	}
	return n
}

func (m *model) fitsNow(r Request) bool {
	f := m.free()
	return r.Requests.MilliCPU <= f.MilliCPU && r.Requests.MemoryBytes <= f.MemoryBytes &&
		(r.Requests.GPUs == 0 || m.gpusFor(r, true, false) >= r.Requests.GPUs)
}

// fitsEver: the task fits the idle node with every GPU healthy; this is
// what admission judges.
func (m *model) fitsEver(r Request) bool {
	return r.Requests.MilliCPU <= m.alloc.MilliCPU && r.Requests.MemoryBytes <= m.alloc.MemoryBytes &&
		(r.Requests.GPUs == 0 || m.gpusFor(r, false, true) >= r.Requests.GPUs)
}

// fitsIdle: the task fits the idle node with the GPUs healthy now; only
// such a task holds the queue back once its window is over.
func (m *model) fitsIdle(r Request) bool {
	return r.Requests.MilliCPU <= m.alloc.MilliCPU && r.Requests.MemoryBytes <= m.alloc.MemoryBytes &&
		(r.Requests.GPUs == 0 || m.gpusFor(r, false, false) >= r.Requests.GPUs)
}

func (m *model) sortQueue() {
	slices.SortFunc(m.queued, func(a, b Request) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), a.Submitted.Compare(b.Submitted), strings.Compare(a.ID, b.ID))
	})
}

func (m *model) holding(r Request, now time.Time) bool {
	return (m.window < 0 || now.Sub(r.Submitted) >= m.window) && m.fitsIdle(r)
}

func TestPropertyRandomSequences(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 30
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkRandomSequence(t, seed, 250) })
	}
}

func checkRandomSequence(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed*7919+1))
	clock := newClock()
	m := &model{
		alloc:   Resources{MilliCPU: int64(1+rng.IntN(8)) * core, MemoryBytes: int64(1+rng.IntN(16)) * gib},
		window:  []time.Duration{-1, time.Minute, 10 * time.Minute}[rng.IntN(3)],
		gpus:    map[string]GPU{},
		running: map[string]Request{},
		holders: map[string]string{},
	}
	var inv []GPU
	for i := range rng.IntN(9) {
		g := GPU{
			Index: i, UUID: fmt.Sprintf("GPU-%d", i),
			Model:       []string{"NVIDIA A100-SXM4-40GB", "Tesla T4"}[rng.IntN(2)],
			MemoryBytes: []int64{16, 40, 80}[rng.IntN(3)] * gib,
			NUMANode:    rng.IntN(3) - 1,
			Health:      []Health{Healthy, Healthy, Healthy, Unhealthy, Unknown}[rng.IntN(5)],
		}
		inv = append(inv, g)
		m.gpus[g.UUID] = g
	}
	s, err := New(Config{Allocatable: m.alloc, GPUs: inv, BackfillWindow: m.window, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for step := range steps {
		switch op := rng.IntN(10); {
		case op < 4: // enqueue
			next++
			r := Request{
				ID:       fmt.Sprintf("t%03d", next),
				Priority: rng.IntN(3),
				Requests: Resources{MilliCPU: int64(rng.IntN(5)) * 500, MemoryBytes: int64(rng.IntN(6)) * gib / 2},
			}
			if rng.IntN(3) == 0 {
				r.Requests.GPUs = 1 + rng.IntN(3)
				r.GPUModel = []string{"", "", "a100", "T4"}[rng.IntN(4)]
				r.GPUMinMemoryBytes = []int64{0, 0, 32 * gib}[rng.IntN(3)]
			}
			if rng.IntN(4) == 0 { // an explicit submission time, possibly in the past
				r.Submitted = clock.Now().Add(-time.Duration(rng.IntN(600)) * time.Second)
			}
			err := s.Enqueue(r)
			if want := m.fitsEver(r); (err == nil) != want {
				t.Fatalf("step %d: Enqueue(%+v) = %v, want accepted=%v", step, r, err, want)
			}
			if err != nil {
				if !errors.Is(err, ErrNeverFits) {
					t.Fatalf("step %d: Enqueue(%q) = %v, want ErrNeverFits", step, r.ID, err)
				}
				continue
			}
			if r.Submitted.IsZero() {
				r.Submitted = clock.Now()
			}
			m.queued = append(m.queued, r)
			m.sortQueue()
		case op < 5: // time passes
			clock.Advance(time.Duration(rng.IntN(180)) * time.Second)
		case op < 7: // a running task finishes
			if id := pick(rng, keys(m.running)); id != "" {
				if !s.Release(id) {
					t.Fatalf("step %d: Release(%q) = false, want true", step, id)
				}
				for u, h := range m.holders {
					if h == id {
						delete(m.holders, u)
					}
				}
				delete(m.running, id)
			}
		case op < 8: // a queued task is cancelled
			if len(m.queued) > 0 {
				i := rng.IntN(len(m.queued))
				if !s.Remove(m.queued[i].ID) {
					t.Fatalf("step %d: Remove(%q) = false, want true", step, m.queued[i].ID)
				}
				m.queued = slices.Delete(m.queued, i, i+1)
			}
		case op < 9: // a GPU changes health
			if len(inv) > 0 {
				g := m.gpus[inv[rng.IntN(len(inv))].UUID]
				g.Health = []Health{Healthy, Healthy, Unhealthy, Unknown}[rng.IntN(4)]
				holder, err := s.SetGPUHealth(g.UUID, g.Health)
				if err != nil || holder != m.holders[g.UUID] {
					t.Fatalf("step %d: SetGPUHealth(%q) = %q, %v, want %q", step, g.UUID, holder, err, m.holders[g.UUID])
				}
				m.gpus[g.UUID] = g
			}
		default:
			checkSchedule(t, step, s, m, clock.Now())
		}
		checkSnapshot(t, step, s, m)
	}
}

// checkSchedule runs Schedule and checks every property of its answer
// against the model, then applies it to the model.
func checkSchedule(t *testing.T, step int, s *Scheduler, m *model, now time.Time) {
	t.Helper()
	headFits := len(m.queued) > 0 && m.fitsNow(m.queued[0])
	got := s.Schedule()
	if headFits && (len(got) == 0 || got[0].ID != m.queued[0].ID) {
		t.Fatalf("step %d: Schedule() = %q, want the head %q first: it fits", step, describe(got), m.queued[0].ID)
	}
	pos := map[string]int{}
	for i, r := range m.queued {
		pos[r.ID] = i
	}
	last := -1
	for _, a := range got {
		i, ok := pos[a.ID]
		if !ok {
			t.Fatalf("step %d: Schedule() started %q, which is not queued", step, a.ID)
		}
		if i <= last {
			t.Fatalf("step %d: Schedule() = %q, not in queue order", step, describe(got))
		}
		last = i
		r := m.queued[i]
		if len(a.GPUs) != r.Requests.GPUs {
			t.Fatalf("step %d: %q got %d GPUs, requested %d", step, a.ID, len(a.GPUs), r.Requests.GPUs)
		}
		for _, g := range a.GPUs {
			mg := m.gpus[g.UUID]
			if h, held := m.holders[g.UUID]; held {
				t.Fatalf("step %d: GPU %s given to %q while %q holds it", step, g.UUID, a.ID, h)
			}
			if mg.Health != Healthy || !mg.matches(r.GPUMinMemoryBytes, r.GPUModel) {
				t.Fatalf("step %d: GPU %+v given to %q does not qualify (selector %q, >= %d)", step, mg, a.ID, r.GPUModel, r.GPUMinMemoryBytes)
			}
			m.holders[g.UUID] = a.ID
		}
		m.running[a.ID] = r
		if f := m.free(); f.MilliCPU < 0 || f.MemoryBytes < 0 {
			t.Fatalf("step %d: starting %q exceeds capacity: free %v", step, a.ID, f)
		}
	}
	started := map[string]bool{}
	for _, a := range got {
		started[a.ID] = true
	}
	m.queued = slices.DeleteFunc(m.queued, func(r Request) bool { return started[r.ID] })
	// Everything left before the first holding blocker must not fit, and
	// nothing behind it may have started.
	for _, r := range m.queued {
		if m.holding(r, now) {
			if pos[r.ID] < last {
				t.Fatalf("step %d: Schedule() = %q started tasks behind %q, which waited past the window", step, describe(got), r.ID)
			}
			break
		}
		if m.fitsNow(r) {
			t.Fatalf("step %d: %q fits but was not started", step, r.ID)
		}
	}
}

func checkSnapshot(t *testing.T, step int, s *Scheduler, m *model) {
	t.Helper()
	snap := s.Snapshot()
	var want []string
	for _, r := range m.queued {
		want = append(want, r.ID)
	}
	if strings.Join(snap.Queue, ",") != strings.Join(want, ",") {
		t.Fatalf("step %d: Snapshot().Queue = %q, want %q", step, snap.Queue, want)
	}
	if len(snap.GPUHolders) != len(m.holders) {
		t.Fatalf("step %d: Snapshot().GPUHolders = %v, want %v", step, snap.GPUHolders, m.holders)
	}
	for u, h := range m.holders {
		if snap.GPUHolders[u] != h {
			t.Fatalf("step %d: Snapshot().GPUHolders = %v, want %v", step, snap.GPUHolders, m.holders)
		}
	}
	f := m.free()
	if snap.Free.MilliCPU != f.MilliCPU || snap.Free.MemoryBytes != f.MemoryBytes || snap.Running != len(m.running) {
		t.Fatalf("step %d: Snapshot() free %v, running %d; want %v, %d", step, snap.Free, snap.Running, f, len(m.running))
	}
	if snap.Free.MilliCPU < 0 || snap.Free.MemoryBytes < 0 {
		t.Fatalf("step %d: capacity exceeded: free %v", step, snap.Free)
	}
}

func keys(m map[string]Request) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func pick(rng *rand.Rand, ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[rng.IntN(len(ids))]
}
