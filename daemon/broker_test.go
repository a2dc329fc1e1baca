package daemon

import (
	"fmt"
	"sync"
	"testing"
	"time"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

func event(taskID string) *pcnodev1.TaskEvent { return &pcnodev1.TaskEvent{TaskId: taskID} }

func forTask(id string) func(*pcnodev1.TaskEvent) bool {
	return func(ev *pcnodev1.TaskEvent) bool { return ev.GetTaskId() == id }
}

// drain returns the task ids buffered in c and whether c is closed, without
// waiting for more.
func drain(c <-chan *pcnodev1.TaskEvent) (ids []string, closed bool) {
	for {
		select {
		case ev, ok := <-c:
			if !ok {
				return ids, true
			}
			ids = append(ids, ev.GetTaskId())
		default:
			return ids, false
		}
	}
}

// publishWithin publishes ev and fails the test if that blocks.
func publishWithin(t *testing.T, b *broker, ev *pcnodev1.TaskEvent) {
	t.Helper()
	done := make(chan struct{})
	go func() { b.publish(ev); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("publish(%q) blocked", ev.GetTaskId())
	}
}

func TestBrokerFilter(t *testing.T) {
	b := newBroker()
	all := b.subscribe(10, nil)
	a := b.subscribe(10, forTask("a"))
	none := b.subscribe(10, func(*pcnodev1.TaskEvent) bool { return false })
	for _, id := range []string{"a", "b", "a", "c"} {
		publishWithin(t, b, event(id))
	}
	for _, tc := range []struct {
		name string
		sub  *Subscription
		want []string
	}{
		{"all", all, []string{"a", "b", "a", "c"}},
		{"a", a, []string{"a", "a"}},
		{"none", none, nil},
	} {
		got, closed := drain(tc.sub.C)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || closed {
			t.Errorf("subscriber %s got %q (closed %v), want %q (open)", tc.name, got, closed, tc.want)
		}
	}
}

func TestBrokerUnsubscribe(t *testing.T) {
	b := newBroker()
	s := b.subscribe(10, nil)
	other := b.subscribe(10, nil)
	publishWithin(t, b, event("before"))
	b.unsubscribe(s)
	publishWithin(t, b, event("after"))
	if got, closed := drain(s.C); fmt.Sprint(got) != "[before]" || !closed {
		t.Errorf("unsubscribed subscriber got %q (closed %v), want [before] then closed", got, closed)
	}
	b.unsubscribe(s) // a second unsubscribe is harmless
	if got, closed := drain(other.C); fmt.Sprint(got) != "[before after]" || closed {
		t.Errorf("other subscriber got %q (closed %v), want [before after] (open)", got, closed)
	}
	if n := len(b.subs); n != 1 {
		t.Errorf("broker has %d subscriptions after unsubscribe, want 1", n)
	}
}

func TestBrokerDropsSlowSubscriber(t *testing.T) {
	b := newBroker()
	slow := b.subscribe(2, nil)
	fast := b.subscribe(100, nil)
	filtered := b.subscribe(1, forTask("none")) // filtered events do not fill its buffer
	unbuffered := b.subscribe(0, nil)           // no reader: dropped at once
	for i := range 5 {
		publishWithin(t, b, event(fmt.Sprint(i)))
	}
	if got, closed := drain(slow.C); fmt.Sprint(got) != "[0 1]" || !closed {
		t.Errorf("slow subscriber got %q (closed %v), want [0 1] then closed", got, closed)
	}
	if got, closed := drain(unbuffered.C); len(got) != 0 || !closed {
		t.Errorf("unbuffered subscriber got %q (closed %v), want nothing and closed", got, closed)
	}
	if got, closed := drain(fast.C); fmt.Sprint(got) != "[0 1 2 3 4]" || closed {
		t.Errorf("fast subscriber got %q (closed %v), want [0 1 2 3 4] (open)", got, closed)
	}
	if got, closed := drain(filtered.C); len(got) != 0 || closed {
		t.Errorf("filtered subscriber got %q (closed %v), want nothing (open)", got, closed)
	}
	if _, ok := b.subs[slow]; ok {
		t.Error("slow subscriber still registered after being dropped")
	}
	// Unsubscribing a dropped subscriber must not close its channel again.
	b.unsubscribe(slow)
	b.unsubscribe(unbuffered)
	publishWithin(t, b, event("5"))
	if got, _ := drain(fast.C); fmt.Sprint(got) != "[5]" {
		t.Errorf("fast subscriber after drop got %q, want [5]", got)
	}
}

// Subscribers nobody reads are dropped once their buffers are full;
// publish never waits for them.
func TestBrokerPublishNeverBlocks(t *testing.T) {
	b := newBroker()
	for range 10 {
		b.subscribe(0, nil)
		b.subscribe(1, nil)
	}
	for i := range 100 {
		publishWithin(t, b, event(fmt.Sprint(i)))
	}
	if n := len(b.subs); n != 0 {
		t.Errorf("broker keeps %d subscriptions nobody reads, want 0", n)
	}
}

func TestBrokerConcurrent(t *testing.T) {
	const (
		publishers = 4
		perPub     = 200
		readers    = 4
	)
	b := newBroker()
	// Readers with buffers large enough for everything see every event.
	var subs []*Subscription
	for range readers {
		subs = append(subs, b.subscribe(publishers*perPub, nil))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// Churn: subscribers that come, read a little, and go, some slow.
	var churn sync.WaitGroup
	for i := range 4 {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := b.subscribe(i, forTask(fmt.Sprint(i)))
				select {
				case <-s.C:
				default:
				}
				b.unsubscribe(s)
			}
		}()
	}
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPub {
				b.publish(event(fmt.Sprintf("%d", (p*perPub+i)%8)))
			}
		}()
	}
	wg.Wait()
	close(stop)
	churn.Wait()
	for i, s := range subs {
		got, closed := drain(s.C)
		if len(got) != publishers*perPub || closed {
			t.Errorf("reader %d got %d events (closed %v), want %d (open)", i, len(got), closed, publishers*perPub)
		}
		b.unsubscribe(s)
	}
	if n := len(b.subs); n != 0 {
		t.Errorf("broker has %d subscriptions left, want 0", n)
	}
}

// flush publishes the store's state changes in revision order, each once,
// however many writers commit and flush concurrently; a broker started at
// a revision publishes only what comes after it.
func TestBrokerFlushOrder(t *testing.T) {
	ctx := t.Context()
	m := store.NewMemory()
	seed := &pcnodev1.Task{Id: store.NewID(time.Now()), State: pcnodev1.TaskState_TASK_STATE_QUEUED}
	if _, _, err := m.CreateTask(ctx, seed, "", nil); err != nil {
		t.Fatal(err)
	}
	b := newBroker()
	b.startAt(1) // the seed was written before the broker started
	sub := b.subscribe(1000, nil)
	const writers, each = 6, 20
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				task := &pcnodev1.Task{Id: store.NewID(time.Now()), State: pcnodev1.TaskState_TASK_STATE_QUEUED}
				if _, _, err := m.CreateTask(ctx, task, "", nil); err != nil {
					t.Error(err)
					return
				}
				if err := b.flush(ctx, m); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for i := range writers * each {
		ev := <-sub.C
		if want := uint64(i + 2); ev.GetRevision() != want || ev.GetStateChange() == nil {
			t.Fatalf("event %d: revision %d, state change %v, want revision %d", i, ev.GetRevision(), ev.GetStateChange() != nil, want)
		}
	}
	if ids, _ := drain(sub.C); len(ids) != 0 {
		t.Errorf("%d events more than the %d changes written", len(ids), writers*each)
	}
}
