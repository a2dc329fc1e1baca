package sched

// Why a queued task waits, as Waiting counts them. A task is counted under
// the first reason that applies, in the order Schedule checks.
const (
	// WaitConcurrency: the node runs as many tasks as it may
	// (max_concurrent).
	WaitConcurrency = "concurrency"
	// WaitBehind: an earlier task waits past the backfill window and holds
	// the queue back, whatever this one needs.
	WaitBehind = "behind"
	// WaitCPU: not enough free CPU.
	WaitCPU = "cpu"
	// WaitMemory: enough CPU, not enough free memory.
	WaitMemory = "memory"
	// WaitGPU: CPU and memory are free, not enough free healthy GPUs that
	// match its selector.
	WaitGPU = "gpu"
	// WaitReady: it fits now and starts at the next scheduling pass.
	WaitReady = "ready"
)

// WaitReasons are every reason Waiting reports, in a fixed order.
var WaitReasons = []string{WaitConcurrency, WaitBehind, WaitCPU, WaitMemory, WaitGPU, WaitReady}

// Waiting counts the queued tasks by why they wait: a dry run of Schedule
// that starts nothing. Every reason in WaitReasons is present; the counts
// add up to the queue's length.
func (s *Scheduler) Waiting() map[string]int {
	out := make(map[string]int, len(WaitReasons))
	for _, r := range WaitReasons {
		out[r] = 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	free := s.allocatable.sub(s.allocSum)
	running := len(s.running)
	// GPUs the dry run gives to ready tasks, so that the tasks after them
	// do not count on them; taken back before returning.
	var lent []string
	defer func() {
		for _, u := range lent {
			delete(s.holders, u)
		}
	}()
	stopped := false
	for _, r := range s.queue {
		switch {
		case s.maxRunning > 0 && running >= s.maxRunning:
			out[WaitConcurrency]++
			continue
		case stopped:
			out[WaitBehind]++
			continue
		}
		var why string
		switch {
		case r.Requests.MilliCPU > free.MilliCPU:
			why = WaitCPU
		case r.Requests.MemoryBytes > free.MemoryBytes:
			why = WaitMemory
		default:
			gpus, ok := s.pick(r)
			if ok {
				for _, u := range gpus {
					s.holders[u] = r.ID
					lent = append(lent, u)
				}
				free = free.sub(Resources{MilliCPU: r.Requests.MilliCPU, MemoryBytes: r.Requests.MemoryBytes})
				running++
				out[WaitReady]++
				continue
			}
			why = WaitGPU
		}
		out[why]++
		if (s.window < 0 || now.Sub(r.Submitted) >= s.window) && s.fitsIdle(r) {
			stopped = true
		}
	}
	return out
}
