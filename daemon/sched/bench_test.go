package sched

import (
	"fmt"
	"testing"
)

const benchTasks = 10_000

func benchQueue(b *testing.B) (*Scheduler, *fakeClock) {
	b.Helper()
	c := newClock()
	s, err := New(Config{Allocatable: Resources{MilliCPU: 2 * core, MemoryBytes: 64 * gib}, GPUs: gpus(8), Clock: c.Now})
	if err != nil {
		b.Fatal(err)
	}
	for i := range benchTasks {
		r := Request{ID: fmt.Sprintf("t%05d", i), Priority: i % 5, Requests: Resources{MilliCPU: core, MemoryBytes: gib, GPUs: i % 3}}
		if err := s.Enqueue(r); err != nil {
			b.Fatal(err)
		}
		c.Advance(1)
	}
	return s, c
}

// BenchmarkEnqueue10k queues 10k tasks of mixed priorities.
func BenchmarkEnqueue10k(b *testing.B) {
	for b.Loop() {
		benchQueue(b)
	}
}

// BenchmarkScheduleFull10k is one Schedule over 10k queued tasks on a full
// node: the whole queue is scanned (the head is inside its backfill window).
func BenchmarkScheduleFull10k(b *testing.B) {
	s, _ := benchQueue(b)
	s.Schedule()
	for b.Loop() {
		if got := s.Schedule(); len(got) != 0 {
			b.Fatalf("Schedule() started %d on a full node", len(got))
		}
	}
}

// BenchmarkDrain10k runs 10k queued tasks to completion, two at a time.
func BenchmarkDrain10k(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		s, _ := benchQueue(b)
		b.StartTimer()
		for done := 0; done < benchTasks; {
			started := s.Schedule()
			if len(started) == 0 {
				b.Fatalf("stuck after %d", done)
			}
			for _, a := range started {
				s.Release(a.ID)
				done++
			}
		}
	}
}
