package gputest

import (
	"fmt"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

// eventSet is one event set handed out by EventSetCreate.
type eventSet struct {
	mock       *mock.EventSet
	queue      chan waitResult
	freed      chan struct{}
	registered map[int]uint64 // GPU index -> event mask
}

type waitResult struct {
	data nvml.EventData
	ret  nvml.Return
}

func (s *Server) eventSetCreate() (nvml.EventSet, nvml.Return) {
	if r := s.failure(-1, "EventSetCreate"); r != nvml.SUCCESS {
		return nil, r
	}
	es := &eventSet{
		queue:      make(chan waitResult, 256),
		freed:      make(chan struct{}),
		registered: map[int]uint64{},
	}
	es.mock = &mock.EventSet{
		WaitFunc: func(timeoutMs uint32) (nvml.EventData, nvml.Return) {
			select {
			case <-es.freed:
				return nvml.EventData{}, nvml.ERROR_UNINITIALIZED
			default:
			}
			t := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
			defer t.Stop()
			select {
			case r := <-es.queue:
				return r.data, r.ret
			case <-es.freed:
				return nvml.EventData{}, nvml.ERROR_UNINITIALIZED
			case <-t.C:
				return nvml.EventData{}, nvml.ERROR_TIMEOUT
			}
		},
		FreeFunc: func() nvml.Return {
			s.mu.Lock()
			defer s.mu.Unlock()
			select {
			case <-es.freed:
				return nvml.ERROR_UNINITIALIZED
			default:
				close(es.freed)
				return nvml.SUCCESS
			}
		},
	}
	s.mu.Lock()
	s.sets = append(s.sets, es)
	s.mu.Unlock()
	return es.mock, nvml.SUCCESS
}

func (s *Server) registerEvents(i int, mask uint64, set nvml.EventSet) nvml.Return {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.failureLocked(i, "RegisterEvents"); r != nvml.SUCCESS {
		return r
	}
	if mask&^s.gpus[i].SupportedEvents != 0 {
		return nvml.ERROR_NOT_SUPPORTED
	}
	for _, es := range s.sets {
		if nvml.EventSet(es.mock) == set && !isClosed(es.freed) {
			es.registered[i] |= mask
			return nvml.SUCCESS
		}
	}
	return nvml.ERROR_INVALID_ARGUMENT
}

// Registered reports the event mask GPU i is registered for in live event
// sets (0 if none): tests wait on it before injecting events.
func (s *Server) Registered(i int) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var mask uint64
	for _, es := range s.sets {
		if !isClosed(es.freed) {
			mask |= es.registered[i]
		}
	}
	return mask
}

// InjectXID delivers an XID event for GPU i to every live event set that
// registered GPU i for XID events. It fails if none did.
func (s *Server) InjectXID(i int, code uint64) error {
	return s.Inject(i, nvml.EventTypeXidCriticalError, code)
}

// InjectECC delivers a double-bit (double true) or single-bit ECC event for
// GPU i, as InjectXID does.
func (s *Server) InjectECC(i int, double bool) error {
	if double {
		return s.Inject(i, nvml.EventTypeDoubleBitEccError, 0)
	}
	return s.Inject(i, nvml.EventTypeSingleBitEccError, 0)
}

// Inject delivers an event of the given type and data for GPU i (i < 0: an
// event without a device) to every live event set registered for it.
func (s *Server) Inject(i int, eventType, data uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := nvml.EventData{EventType: eventType, EventData: data}
	if i >= 0 {
		ev.Device = s.gpus[i].Device
	}
	n := 0
	for _, es := range s.sets {
		if isClosed(es.freed) {
			continue
		}
		registered := false
		for gi, mask := range es.registered {
			registered = registered || ((i < 0 || gi == i) && mask&eventType != 0)
		}
		if registered {
			es.queue <- waitResult{data: ev, ret: nvml.SUCCESS}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("gputest: no live event set is registered for event type %#x on GPU %d", eventType, i)
	}
	return nil
}

// InjectWaitError makes the next Wait on every live event set return ret,
// as a driver does when it loses a GPU or fails. It fails if no set is live.
func (s *Server) InjectWaitError(ret nvml.Return) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, es := range s.sets {
		if !isClosed(es.freed) {
			es.queue <- waitResult{ret: ret}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("gputest: no live event set")
	}
	return nil
}

// LiveEventSets counts event sets created and not yet freed.
func (s *Server) LiveEventSets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, es := range s.sets {
		if !isClosed(es.freed) {
			n++
		}
	}
	return n
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
