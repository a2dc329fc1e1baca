package sched

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"
)

// waiting wants Waiting to count exactly these (reasons not named: 0), and
// checks that it changed nothing: Schedule afterwards starts what it would
// have started anyway.
func waiting(want map[string]int) step {
	return func(e *env) {
		e.t.Helper()
		before := e.s.Snapshot()
		got := e.s.Waiting()
		full := map[string]int{}
		for _, r := range WaitReasons {
			full[r] = want[r]
		}
		if !maps.Equal(got, full) {
			e.t.Fatalf("Waiting() = %v, want %v", got, full)
		}
		total := 0
		for _, n := range got {
			total += n
		}
		if n, _ := e.s.QueueLen(); total != n {
			e.t.Fatalf("Waiting() adds up to %d, queue length %d", total, n)
		}
		if after := e.s.Snapshot(); len(after.Queue) != len(before.Queue) || len(after.GPUHolders) != len(before.GPUHolders) {
			e.t.Fatalf("Waiting() changed the scheduler: %+v, then %+v", before, after)
		}
	}
}

func TestWaiting(t *testing.T) {
	t.Run("empty", func(t *testing.T) {
		run(t, small, waiting(nil))
	})
	t.Run("cpu, memory, ready", func(t *testing.T) {
		sec := adv(time.Second) // queue order is submission order
		run(t, small,
			enq("big", 0, 3*core, gib, 0), sched("big"),
			sec, enq("cpu", 0, 2*core, gib, 0), // 1 core free
			sec, enq("mem", 0, core/2, 8*gib, 0), // 7 GiB free
			sec, enq("fits", 0, core/2, gib, 0), // starts next pass
			sec, enq("fits2", 0, core/2, gib, 0), // ... and takes the rest of the CPU
			sec, enq("after", 0, core/4, gib, 0), // nothing left for it
			waiting(map[string]int{WaitCPU: 2, WaitMemory: 1, WaitReady: 2}),
		)
	})
	t.Run("gpu", func(t *testing.T) {
		cfg := small
		cfg.GPUs = gpus(2)
		run(t, cfg,
			enq("two", 0, core, gib, 2), sched("two:g0,g1"),
			enq("one", 0, core, gib, 1),
			enq("cpu", 0, core, gib, 0),
			waiting(map[string]int{WaitGPU: 1, WaitReady: 1}),
		)
	})
	t.Run("ready tasks take the GPUs they would get", func(t *testing.T) {
		cfg := small
		cfg.GPUs = gpus(2)
		run(t, cfg,
			enq("a", 0, core, gib, 2), enq("b", 0, core, gib, 1),
			waiting(map[string]int{WaitReady: 1, WaitGPU: 1}),
			sched("a:g0,g1"),
		)
	})
	t.Run("concurrency", func(t *testing.T) {
		cfg := small
		cfg.MaxRunning = 1
		run(t, cfg,
			enq("a", 0, core, gib, 0), sched("a"),
			enq("b", 0, core, gib, 0), enq("c", 0, 4*core, gib, 0),
			waiting(map[string]int{WaitConcurrency: 2}),
		)
	})
	t.Run("behind a task past its backfill window", func(t *testing.T) {
		cfg := small
		cfg.BackfillWindow = time.Minute
		run(t, cfg,
			enq("a", 0, 3*core, gib, 0), sched("a"),
			adv(time.Second), enq("big", 0, 2*core, gib, 0),
			adv(time.Second), enq("small", 0, core/2, gib, 0),
			waiting(map[string]int{WaitCPU: 1, WaitReady: 1}), // within big's window: small may pass it
			sched("small"),
			adv(2*time.Minute), enq("later", 0, core/4, gib, 0),
			waiting(map[string]int{WaitCPU: 1, WaitBehind: 1}), // big holds the queue now
			sched(),
		)
	})
}

// TestWaitingReadyIsWhatScheduleStarts checks, over random queues, that the
// tasks Waiting calls ready are exactly as many as the next Schedule starts.
func TestWaitingReadyIsWhatScheduleStarts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 300 {
		cfg := Config{Allocatable: Resources{MilliCPU: 8 * core, MemoryBytes: 32 * gib}, GPUs: gpus(4), BackfillWindow: time.Minute, MaxRunning: rng.IntN(6)}
		e := newEnv(t, cfg)
		for i := range 20 {
			r := Request{ID: fmt.Sprintf("t%02d", i), Priority: rng.IntN(3),
				Requests: Resources{MilliCPU: int64(rng.IntN(4)+1) * core / 2, MemoryBytes: int64(rng.IntN(8)+1) * gib, GPUs: rng.IntN(3)}}
			if err := e.s.Enqueue(r); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Duration(rng.IntN(40)) * time.Second)
			if rng.IntN(4) == 0 {
				e.s.Schedule()
			}
		}
		w := e.s.Waiting()
		if started := len(e.s.Schedule()); started != w[WaitReady] {
			t.Fatalf("round %d: Waiting() = %v, then Schedule() started %d", round, w, started)
		}
	}
}
