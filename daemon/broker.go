package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// broker fans task events out to subscribers. Publishing never blocks: a
// subscriber that falls behind by more than its buffer is dropped and its
// channel closed, so one slow watcher cannot stall the daemon. Watchers that
// are dropped see their stream end and may resubscribe.
//
// State changes are not handed to the broker: after every write, flush reads
// the store's history from the last revision published and publishes what
// is new, one flush at a time, so every subscriber receives state changes
// in revision order, each once, whichever writers raced to commit them.
type broker struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}

	flushMu   sync.Mutex
	published uint64 // newest revision published; guarded by flushMu
}

// changeSource is where flush reads state changes: the store.
type changeSource interface {
	Changes(ctx context.Context, after uint64, limit int) ([]store.Change, store.Revisions, error)
}

// Subscription is one subscriber to the node's task events
// (Daemon.SubscribeTasks): C carries the events its filter passes, and is
// closed when the subscriber falls more than its buffer behind.
type Subscription struct {
	C      chan *pcnodev1.TaskEvent
	filter func(*pcnodev1.TaskEvent) bool
	closed bool
}

func newBroker() *broker { return &broker{subs: map[*Subscription]struct{}{}} }

// startAt makes flush publish the state changes after rev only: the
// revision the store held when the daemon started, whose changes no live
// watcher is owed. A broker that is never started publishes from revision 1.
func (b *broker) startAt(rev uint64) {
	b.flushMu.Lock()
	b.published = rev
	b.flushMu.Unlock()
}

// flush publishes, in revision order, every state change src holds after the
// last one published. When src has already pruned some of them (more than
// its whole history written between two flushes) it publishes from the
// oldest kept and returns an error naming the revisions lost.
func (b *broker) flush(ctx context.Context, src changeSource) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	var lost error
	for {
		page, revs, err := src.Changes(ctx, b.published, 0)
		if errors.Is(err, store.ErrCompacted) && lost == nil {
			lost = fmt.Errorf("revisions %d to %d were pruned before they were announced", b.published+1, revs.Oldest-1)
			b.published = revs.Oldest - 1
			continue
		}
		if err != nil {
			return errors.Join(lost, err)
		}
		for _, c := range page {
			b.publish(ChangeEvent(c))
			b.published = c.Revision
		}
		if len(page) < store.DefaultChangesLimit {
			return lost
		}
	}
}

// ChangeEvent is the TaskEvent of a state change. Its time is the task's
// update_time (when the change was written), so that a change replayed
// from the history reads as it did live.
func ChangeEvent(c store.Change) *pcnodev1.TaskEvent {
	ts := c.Task.GetUpdateTime()
	if ts == nil {
		ts = c.Task.GetCreateTime()
	}
	if ts == nil {
		ts = timestamppb.Now()
	}
	return &pcnodev1.TaskEvent{
		TaskId:   c.Task.GetId(),
		Time:     ts,
		Revision: c.Revision,
		Event:    &pcnodev1.TaskEvent_StateChange{StateChange: c.Task},
	}
}

// subscribe returns a subscription receiving events that pass filter (all
// events when filter is nil). Call unsubscribe when done.
func (b *broker) subscribe(buffer int, filter func(*pcnodev1.TaskEvent) bool) *Subscription {
	s := &Subscription{C: make(chan *pcnodev1.TaskEvent, buffer), filter: filter}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

func (b *broker) unsubscribe(s *Subscription) {
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
