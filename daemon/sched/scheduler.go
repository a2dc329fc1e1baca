package sched

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultBackfillWindow is the backfill window used when Config leaves it zero.
const DefaultBackfillWindow = 5 * time.Minute

// Config is what a Scheduler is built from.
type Config struct {
	// Allocatable is the CPU and memory tasks may use: the node's capacity
	// minus reservations (see Allocatable). Its GPUs field is not used; GPU
	// capacity is the GPUs list.
	Allocatable Resources
	// GPUs is the node's GPU inventory. Only Healthy ones are assigned.
	GPUs []GPU
	// BackfillWindow bounds how long a blocked task may be passed by tasks
	// behind it that fit. Zero means DefaultBackfillWindow; a negative value
	// turns backfill off (strict order).
	BackfillWindow time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// MaxRunning caps how many tasks run at once whatever their requests.
	// 0: no cap.
	MaxRunning int
}

// Request is a task as the scheduler sees it.
type Request struct {
	// ID is the task id; unique among queued and running tasks.
	ID string
	// Priority: higher starts first.
	Priority int
	// Submitted orders tasks of equal priority and starts the backfill
	// window. Zero means now (by the scheduler's clock) at Enqueue.
	Submitted time.Time
	// Requests is what is reserved for the task while it runs.
	Requests Resources
	// GPUMinMemoryBytes: each assigned GPU must have at least this much
	// memory. 0: any.
	GPUMinMemoryBytes int64
	// GPUModel: each assigned GPU's model must contain this,
	// case-insensitively. Empty: any.
	GPUModel string
}

func (r *Request) validate() error {
	if r.ID == "" {
		return fmt.Errorf("%w: empty task id", ErrInvalid)
	}
	if err := r.Requests.validate(); err != nil {
		return fmt.Errorf("task %q: %w", r.ID, err)
	}
	if r.GPUMinMemoryBytes < 0 {
		return fmt.Errorf("task %q: %w: negative GPU minimum memory", r.ID, ErrInvalid)
	}
	return nil
}

// compare is the queue order: priority desc, submitted asc, id asc.
func (r *Request) compare(o *Request) int {
	return cmp.Or(
		cmp.Compare(o.Priority, r.Priority),
		r.Submitted.Compare(o.Submitted),
		strings.Compare(r.ID, o.ID),
	)
}

// Assignment is a task started by Schedule (or restored), with what it holds.
type Assignment struct {
	// ID is the task id.
	ID string
	// Resources is what is reserved: the request's CPU and memory and the
	// number of GPUs held.
	Resources Resources
	// GPUs are the assigned GPUs in index order, as the inventory described
	// them when the Assignment was made; a GPU no longer in the inventory has
	// Index -1.
	GPUs []GPU
}

// UUIDs returns the uuids of the assigned GPUs, in index order.
func (a Assignment) UUIDs() []string {
	out := make([]string, len(a.GPUs))
	for i, g := range a.GPUs {
		out[i] = g.UUID
	}
	return out
}

// running is a task that holds resources.
type running struct {
	req   Request
	gpus  []string // uuids
	alloc Resources
}

// Scheduler decides which queued tasks start and tracks what running tasks
// hold. It is safe for concurrent use.
type Scheduler struct {
	mu          sync.Mutex
	allocatable Resources
	window      time.Duration // < 0: no backfill
	maxRunning  int           // 0: no cap
	clock       func() time.Time

	gpus    []GPU             // sorted by index
	byUUID  map[string]int    // uuid → position in gpus
	holders map[string]string // uuid → task id

	queue    []*Request // in queue order
	queued   map[string]*Request
	running  map[string]*running
	allocSum Resources // CPU and memory of running tasks; GPUs = GPUs held
}

// New returns a Scheduler for cfg. It fails, with ErrInvalid, on negative
// allocatable resources or a malformed GPU list (empty or repeated uuid).
func New(cfg Config) (*Scheduler, error) {
	a := cfg.Allocatable
	if a.MilliCPU < 0 || a.MemoryBytes < 0 {
		return nil, fmt.Errorf("%w: negative allocatable resources (%s)", ErrInvalid, a)
	}
	s := &Scheduler{
		allocatable: Resources{MilliCPU: a.MilliCPU, MemoryBytes: a.MemoryBytes},
		window:      cfg.BackfillWindow,
		maxRunning:  cfg.MaxRunning,
		clock:       cfg.Clock,
		holders:     map[string]string{},
		queued:      map[string]*Request{},
		running:     map[string]*running{},
	}
	if s.window == 0 {
		s.window = DefaultBackfillWindow
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if err := s.setGPUs(cfg.GPUs); err != nil {
		return nil, err
	}
	return s, nil
}

// Enqueue queues a task. It fails with ErrInvalid for a malformed request,
// ErrDuplicate when the id is already queued or running, and a *FitError
// wrapping ErrNeverFits when the task could not fit even on the idle node.
// Every GPU of the inventory counts, whatever its health: a task that fits
// only once a GPU recovers (or once health is known, after a start) waits in
// the queue.
func (s *Scheduler) Enqueue(req Request) error {
	if err := req.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.known(req.ID) {
		return fmt.Errorf("task %q: %w", req.ID, ErrDuplicate)
	}
	if fe := s.neverFits(&req); fe != nil {
		return fe
	}
	if req.Submitted.IsZero() {
		req.Submitted = s.clock()
	}
	r := &req
	i, _ := slices.BinarySearchFunc(s.queue, r, (*Request).compare)
	s.queue = slices.Insert(s.queue, i, r)
	s.queued[r.ID] = r
	return nil
}

// Remove drops a queued task and reports whether it was queued. A running
// task is not affected (use Release).
func (s *Scheduler) Remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.queued[id]
	if !ok {
		return false
	}
	i, found := slices.BinarySearchFunc(s.queue, r, (*Request).compare)
	if !found || s.queue[i] != r {
		panic("sched: queue and index disagree") // an internal bug, never input
	}
	s.queue = slices.Delete(s.queue, i, i+1)
	delete(s.queued, id)
	return true
}

// Release frees what a running task holds and reports whether it was running.
// Call Schedule afterwards to start what now fits.
func (s *Scheduler) Release(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.running[id]
	if !ok {
		return false
	}
	for _, u := range r.gpus {
		delete(s.holders, u)
	}
	s.allocSum = s.allocSum.sub(r.alloc)
	delete(s.running, id)
	return true
}

// Restore records a task that is already running, after a daemon restart: its
// CPU and memory requests and the GPUs (by uuid) it was given. It is accepted
// even when it exceeds what is free, because the container exists. It fails
// with ErrInvalid for a malformed request or repeated uuid, ErrDuplicate
// when the id is known, and ErrGPUConflict when another task holds one of
// the GPUs. The GPUs held are exactly gpuUUIDs; req.Requests.GPUs is not
// consulted. A uuid not in the inventory (the GPU vanished) is still recorded
// as held, so it is not given to another task if it returns.
func (s *Scheduler) Restore(req Request, gpuUUIDs []string) error {
	if err := req.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.known(req.ID) {
		return fmt.Errorf("task %q: %w", req.ID, ErrDuplicate)
	}
	seen := map[string]bool{}
	for _, u := range gpuUUIDs {
		if u == "" || seen[u] {
			return fmt.Errorf("task %q: %w: empty or repeated GPU uuid %q", req.ID, ErrInvalid, u)
		}
		seen[u] = true
		if h, ok := s.holders[u]; ok {
			return fmt.Errorf("task %q: GPU %s: %w (%q)", req.ID, u, ErrGPUConflict, h)
		}
	}
	s.start(&req, slices.Clone(gpuUUIDs))
	return nil
}

// Schedule returns the queued tasks to start now, in queue order, and marks
// them running: their resources are held until Release. See the package
// documentation for the order and the backfill rule.
func (s *Scheduler) Schedule() []Assignment {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock()
	free := s.allocatable.sub(s.allocSum)
	var out []Assignment
	kept := s.queue[:0]
	stopped := false
	for _, r := range s.queue {
		if s.maxRunning > 0 && len(s.running) >= s.maxRunning {
			stopped = true
		}
		if stopped {
			kept = append(kept, r)
			continue
		}
		if r.Requests.cpuMemFit(free) {
			if gpus, ok := s.pick(r); ok {
				a := s.start(r, gpus)
				delete(s.queued, r.ID)
				free = free.sub(a.Resources)
				out = append(out, a)
				continue
			}
		}
		kept = append(kept, r)
		// r is blocked. It holds back the tasks behind it once its window
		// is over, unless it could not fit on the idle node either, with
		// the GPUs healthy now: waiting for running tasks would not help
		// it, only a GPU's recovery would.
		if s.window < 0 || now.Sub(r.Submitted) >= s.window {
			if s.fitsIdle(r) {
				stopped = true
			}
		}
	}
	clear(s.queue[len(kept):])
	s.queue = kept
	return out
}

// Allocation returns what a running task holds.
func (s *Scheduler) Allocation(id string) (Assignment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.running[id]
	if !ok {
		return Assignment{}, false
	}
	return s.assignment(r), true
}

// known reports whether id is queued or running. Callers hold mu.
func (s *Scheduler) known(id string) bool {
	_, q := s.queued[id]
	_, r := s.running[id]
	return q || r
}

// start marks req running with the given GPUs. Callers hold mu.
func (s *Scheduler) start(req *Request, gpus []string) Assignment {
	r := &running{
		req:   *req,
		gpus:  gpus,
		alloc: Resources{MilliCPU: req.Requests.MilliCPU, MemoryBytes: req.Requests.MemoryBytes, GPUs: len(gpus)},
	}
	for _, u := range gpus {
		s.holders[u] = req.ID
	}
	s.allocSum = s.allocSum.add(r.alloc)
	s.running[req.ID] = r
	return s.assignment(r)
}

func (s *Scheduler) assignment(r *running) Assignment {
	a := Assignment{ID: r.req.ID, Resources: r.alloc}
	for _, u := range r.gpus {
		if i, ok := s.byUUID[u]; ok {
			a.GPUs = append(a.GPUs, s.gpus[i])
		} else {
			a.GPUs = append(a.GPUs, GPU{Index: -1, UUID: u, NUMANode: -1, Health: Unknown})
		}
	}
	slices.SortStableFunc(a.GPUs, func(x, y GPU) int { return cmp.Compare(x.Index, y.Index) })
	return a
}

// pick chooses GPUs for r among the healthy, free, matching ones. Callers
// hold mu.
func (s *Scheduler) pick(r *Request) ([]string, bool) {
	n := r.Requests.GPUs
	if n == 0 {
		return nil, true
	}
	var cands []*GPU
	for i := range s.gpus {
		g := &s.gpus[i]
		if _, held := s.holders[g.UUID]; !held && g.Health == Healthy && g.matches(r.GPUMinMemoryBytes, r.GPUModel) {
			cands = append(cands, g)
		}
	}
	chosen := chooseGPUs(cands, n)
	if chosen == nil {
		return nil, false
	}
	out := make([]string, len(chosen))
	for i, g := range chosen {
		out[i] = g.UUID
	}
	return out, true
}

// matchingGPUs counts the GPUs that satisfy r's selector: every one in the
// inventory whatever its health (all), or only the healthy ones that no task
// holds (free). Callers hold mu.
func (s *Scheduler) matchingGPUs(r *Request, free bool) int {
	n := 0
	for i := range s.gpus {
		g := &s.gpus[i]
		if !g.matches(r.GPUMinMemoryBytes, r.GPUModel) {
			continue
		}
		if _, held := s.holders[g.UUID]; free && (held || g.Health != Healthy) {
			continue
		}
		n++
	}
	return n
}

// healthyGPUs counts the healthy GPUs that satisfy r's selector, held or
// not. Callers hold mu.
func (s *Scheduler) healthyGPUs(r *Request) int {
	n := 0
	for i := range s.gpus {
		if g := &s.gpus[i]; g.Health == Healthy && g.matches(r.GPUMinMemoryBytes, r.GPUModel) {
			n++
		}
	}
	return n
}

// neverFits returns a *FitError when r could not fit even on the idle node
// with every GPU of its inventory healthy, else nil: GPUs that are unhealthy
// or of unknown health now count, since they may recover (or their health
// may not be known yet, right after a start). Callers hold mu.
func (s *Scheduler) neverFits(r *Request) *FitError {
	avail := s.allocatable
	avail.GPUs = 0
	if r.Requests.GPUs > 0 {
		avail.GPUs = s.matchingGPUs(r, false)
	}
	if r.Requests.cpuMemFit(avail) && r.Requests.GPUs <= avail.GPUs {
		return nil
	}
	return &FitError{
		ID: r.ID, Requested: r.Requests, Available: avail,
		GPUMinMemoryBytes: r.GPUMinMemoryBytes, GPUModel: r.GPUModel, Never: true,
	}
}

// fitsIdle reports whether r would fit the idle node with the GPUs healthy
// now: whether waiting for running tasks to finish would let it start.
// Callers hold mu.
func (s *Scheduler) fitsIdle(r *Request) bool {
	avail := s.allocatable
	avail.GPUs = 0
	if r.Requests.GPUs > 0 {
		avail.GPUs = s.healthyGPUs(r)
	}
	return r.Requests.cpuMemFit(avail) && r.Requests.GPUs <= avail.GPUs
}
