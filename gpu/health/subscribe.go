package health

import (
	"context"
	"sync"

	"github.com/pcnode/pcnode/gpu"
)

// subscriber queues changes for one Subscribe channel, so that publishing
// never blocks on a slow reader.
type subscriber struct {
	mu    sync.Mutex
	queue []gpu.Change
	wake  chan struct{} // capacity 1
}

// Subscribe returns a channel that receives every change of any GPU's
// status from now on, in order, until ctx is done; then it is closed.
// Changes queue up (without bound) while the reader is busy.
func (m *Monitor) Subscribe(ctx context.Context) <-chan gpu.Change {
	sub := &subscriber{wake: make(chan struct{}, 1)}
	out := make(chan gpu.Change)
	m.mu.Lock()
	m.subs[sub] = struct{}{}
	m.mu.Unlock()
	go func() {
		defer close(out)
		defer func() {
			m.mu.Lock()
			delete(m.subs, sub)
			m.mu.Unlock()
		}()
		for {
			sub.mu.Lock()
			batch := sub.queue
			sub.queue = nil
			sub.mu.Unlock()
			for _, c := range batch {
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
			select {
			case <-sub.wake:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// publishLocked sends st's status to every subscriber.
func (m *Monitor) publishLocked(prev gpu.Health, st *state) {
	c := gpu.Change{Previous: prev, Status: cloneStatus(st.status)}
	if st.cause != nil {
		ev := *st.cause
		c.Cause = &ev
	}
	for sub := range m.subs {
		sub.mu.Lock()
		sub.queue = append(sub.queue, c)
		sub.mu.Unlock()
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}
