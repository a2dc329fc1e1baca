package daemon

import (
	"sync"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// broker fans task events out to subscribers. Publishing never blocks: a
// subscriber that falls behind by more than its buffer is dropped and its
// channel closed, so one slow watcher cannot stall the daemon. Watchers that
// are dropped see their stream end and may resubscribe.
type broker struct {
	mu   sync.Mutex
	subs map[*subscription]struct{}
}

type subscription struct {
	C      chan *pcnodev1.TaskEvent
	filter func(*pcnodev1.TaskEvent) bool
	closed bool
}

func newBroker() *broker { return &broker{subs: map[*subscription]struct{}{}} }

// subscribe returns a subscription receiving events that pass filter (all
// events when filter is nil). Call unsubscribe when done.
func (b *broker) subscribe(buffer int, filter func(*pcnodev1.TaskEvent) bool) *subscription {
	s := &subscription{C: make(chan *pcnodev1.TaskEvent, buffer), filter: filter}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

func (b *broker) unsubscribe(s *subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		if !s.closed {
			s.closed = true
			close(s.C)
		}
	}
}

func (b *broker) publish(ev *pcnodev1.TaskEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.filter != nil && !s.filter(ev) {
			continue
		}
		select {
		case s.C <- ev:
		default:
			delete(b.subs, s)
			s.closed = true
			close(s.C)
		}
	}
}
