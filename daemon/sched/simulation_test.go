package sched

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestSimulation runs 100 tasks through a node with room for two at a time,
// on a simulated clock: each started task finishes after a deterministic
// duration, is released, and Schedule runs again. Every task must complete,
// never more than two at once, with no slot left idle while tasks wait.
func TestSimulation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		task func(i int) Request
		// fifo: tasks must start in submission order.
		fifo bool
	}{
		{
			name: "cpu: two cores, one per task",
			cfg:  Config{Allocatable: Resources{MilliCPU: 2 * core, MemoryBytes: 64 * gib}},
			task: func(i int) Request {
				return Request{ID: fmt.Sprintf("t%03d", i), Requests: Resources{MilliCPU: core, MemoryBytes: gib}}
			},
			fifo: true,
		},
		{
			name: "memory: 8 GiB, 4 GiB per task, defaults applied",
			cfg:  Config{Allocatable: Resources{MilliCPU: 64 * core, MemoryBytes: 8 * gib}},
			task: func(i int) Request {
				return Request{ID: fmt.Sprintf("t%03d", i), Requests: ApplyDefaults(Resources{}, Defaults{MilliCPU: 100, MemoryBytes: 4 * gib})}
			},
			fifo: true,
		},
		{
			name: "gpus: two GPUs, one per task, mixed priorities",
			cfg:  Config{Allocatable: Resources{MilliCPU: 64 * core, MemoryBytes: 64 * gib}, GPUs: gpus(2)},
			task: func(i int) Request {
				return Request{ID: fmt.Sprintf("t%03d", i), Priority: i % 3, Requests: Resources{MilliCPU: core, MemoryBytes: gib, GPUs: 1}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 100
			e := newEnv(t, tt.cfg)
			for i := range n {
				if err := e.s.Enqueue(tt.task(i)); err != nil {
					t.Fatalf("Enqueue(%d) = %v", i, err)
				}
				e.clock.Advance(time.Millisecond)
			}
			type run struct {
				id  string
				end time.Time
			}
			var (
				active    []run
				order     []string
				peak      int
				completed int
				held      = map[string]string{}
			)
			for completed < n {
				for _, a := range e.s.Schedule() {
					for _, u := range a.UUIDs() {
						if h, ok := held[u]; ok {
							t.Fatalf("GPU %s given to %s while %s holds it", u, a.ID, h)
						}
						held[u] = a.ID
					}
					var d time.Duration
					fmt.Sscanf(a.ID, "t%d", &d)
					d = time.Second + (d*7919%13)*time.Second // 1..13 s, deterministic
					active = append(active, run{a.ID, e.clock.Now().Add(d)})
					order = append(order, a.ID)
				}
				peak = max(peak, len(active))
				if len(active) > 2 {
					t.Fatalf("%d tasks running at %v, want at most 2", len(active), e.clock.Now().Sub(epoch))
				}
				if len(active) < 2 && e.s.Snapshot().Queued > 0 {
					t.Fatalf("%d running while %d wait: a slot is idle", len(active), e.s.Snapshot().Queued)
				}
				if len(active) == 0 {
					t.Fatalf("nothing running, %d of %d completed", completed, n)
				}
				// Advance to the next finish and release everything done.
				slices.SortFunc(active, func(a, b run) int { return a.end.Compare(b.end) })
				e.clock.Advance(active[0].end.Sub(e.clock.Now()))
				for len(active) > 0 && !active[0].end.After(e.clock.Now()) {
					rel(active[0].id)(e)
					for u, h := range held {
						if h == active[0].id {
							delete(held, u)
						}
					}
					active = active[1:]
					completed++
				}
			}
			if peak != 2 {
				t.Errorf("peak concurrency = %d, want 2", peak)
			}
			if snap := e.s.Snapshot(); snap.Queued != 0 || snap.Running != 0 || snap.Allocated != (Resources{}) {
				t.Errorf("after all completed: %+v, want empty", snap)
			}
			if tt.fifo {
				for i, id := range order {
					if want := fmt.Sprintf("t%03d", i); id != want {
						t.Fatalf("start %d = %s, want %s (submission order)", i, id, want)
					}
				}
			}
		})
	}
}

// TestConcurrentUse drives one Scheduler from several goroutines (run it with
// -race) and checks the books balance at the end.
func TestConcurrentUse(t *testing.T) {
	s, err := New(Config{Allocatable: Resources{MilliCPU: 4 * core, MemoryBytes: 8 * gib}, GPUs: gpus(4)})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := s.Enqueue(Request{ID: id, Requests: Resources{MilliCPU: core, MemoryBytes: gib, GPUs: i % 2}}); err != nil {
					t.Errorf("Enqueue(%q) = %v", id, err)
					return
				}
				for _, a := range s.Schedule() {
					s.Fits(Request{Requests: Resources{MilliCPU: core}})
					_ = s.Snapshot()
					if !s.Release(a.ID) {
						t.Errorf("Release(%q) = false", a.ID)
					}
				}
				if i%10 == 0 {
					s.SetGPUHealth("g1", Health(i%3))
				}
			}
		})
	}
	wg.Wait()
	s.SetGPUHealth("g1", Healthy)
	// Drain whatever is left.
	for s.Snapshot().Queued > 0 {
		started := s.Schedule()
		if len(started) == 0 {
			t.Fatalf("queue stuck: %+v", s.Snapshot())
		}
		for _, a := range started {
			s.Release(a.ID)
		}
	}
	if snap := s.Snapshot(); snap.Running != 0 || snap.Allocated != (Resources{}) || len(snap.GPUHolders) != 0 {
		t.Errorf("after draining: %+v, want nothing held", snap)
	}
}
