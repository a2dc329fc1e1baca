package sched

import (
	"fmt"
	"maps"
	"slices"
)

// SetGPUs replaces the GPU inventory, e.g. after a re-probe. GPUs held by
// running tasks stay held, even when they are missing from the new list. It
// fails with ErrInvalid on an empty or repeated uuid and changes nothing then.
func (s *Scheduler) SetGPUs(gpus []GPU) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setGPUs(gpus)
}

func (s *Scheduler) setGPUs(gpus []GPU) error {
	sorted, err := validateGPUs(gpus)
	if err != nil {
		return err
	}
	s.gpus = sorted
	s.byUUID = make(map[string]int, len(sorted))
	for i, g := range sorted {
		s.byUUID[g.UUID] = i
	}
	return nil
}

// SetGPUHealth records a GPU's health and returns the id of the task holding
// it ("" when free). A GPU that turns unhealthy while held stays with its
// holder; it is not assigned again until it is Healthy. It fails with
// ErrUnknownGPU when the uuid is not in the inventory.
func (s *Scheduler) SetGPUHealth(uuid string, h Health) (holder string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.byUUID[uuid]
	if !ok {
		return "", fmt.Errorf("GPU %q: %w", uuid, ErrUnknownGPU)
	}
	s.gpus[i].Health = h
	return s.holders[uuid], nil
}

// Fits answers a dry run for req without queueing it: whether its requests fit
// what is free now, whether they fit the node at all, and when either is
// false, why, with the numbers. Queued tasks are not taken into account: a
// request that fits now may still wait behind them.
func (s *Scheduler) Fits(req Request) (now, ever bool, reason string) {
	if err := req.Requests.validate(); err != nil {
		return false, false, err.Error()
	}
	if req.GPUMinMemoryBytes < 0 {
		return false, false, fmt.Sprintf("%v: negative GPU minimum memory", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fe := s.neverFits(&req); fe != nil {
		return false, false, fe.Error()
	}
	free := s.allocatable.sub(s.allocSum)
	free.GPUs = 0
	if req.Requests.GPUs > 0 {
		free.GPUs = s.matchingGPUs(&req, true)
	}
	if req.Requests.cpuMemFit(free) && req.Requests.GPUs <= free.GPUs {
		return true, true, ""
	}
	fe := &FitError{
		ID: req.ID, Requested: req.Requests, Available: free,
		GPUMinMemoryBytes: req.GPUMinMemoryBytes, GPUModel: req.GPUModel,
	}
	return false, true, fe.Error()
}

// Snapshot is the scheduler's state at one moment.
type Snapshot struct {
	// Allocatable is the configured CPU and memory and the number of
	// healthy GPUs.
	Allocatable Resources
	// Allocated is held by running tasks: CPU, memory, GPUs (healthy or not).
	Allocated Resources
	// Free is Allocatable minus Allocated for CPU and memory (negative when
	// restored tasks overcommit the node) and the number of healthy GPUs no
	// task holds.
	Free Resources
	// Queued and Running count tasks.
	Queued, Running int
	// Queue holds the queued task ids in the order they would start.
	Queue []string
	// GPUs is the inventory in index order.
	GPUs []GPU
	// GPUHolders maps each held GPU's uuid to the task holding it.
	GPUHolders map[string]string
}

// Snapshot returns a copy of the scheduler's state.
func (s *Scheduler) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	healthy, freeGPUs := 0, 0
	for _, g := range s.gpus {
		if g.Health != Healthy {
			continue
		}
		healthy++
		if _, held := s.holders[g.UUID]; !held {
			freeGPUs++
		}
	}
	snap := Snapshot{
		Allocatable: Resources{MilliCPU: s.allocatable.MilliCPU, MemoryBytes: s.allocatable.MemoryBytes, GPUs: healthy},
		Allocated:   s.allocSum,
		Free:        s.allocatable.sub(s.allocSum),
		Queued:      len(s.queue),
		Running:     len(s.running),
		Queue:       make([]string, len(s.queue)),
		GPUs:        slices.Clone(s.gpus),
		GPUHolders:  maps.Clone(s.holders),
	}
	snap.Free.GPUs = freeGPUs
	for i, r := range s.queue {
		snap.Queue[i] = r.ID
	}
	return snap
}

// QueueLen is the number of queued tasks, and GPUHolders a copy of which
// task holds which GPU (uuid → task id): what a metrics scrape reads,
// without copying the queue as Snapshot does.
func (s *Scheduler) QueueLen() (queued int, holders map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue), maps.Clone(s.holders)
}
