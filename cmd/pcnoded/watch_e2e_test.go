package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// watched is one state change as a watcher saw it.
type watched struct {
	rev   uint64
	id    string
	state pcnodev1.TaskState
}

func (w watched) String() string { return fmt.Sprintf("%d:%s:%v", w.rev, w.id[len(w.id)-4:], w.state) }

// watchCollector receives a WatchTasks stream into a list.
type watchCollector struct {
	mu     sync.Mutex
	events []watched
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

// watchFrom starts WatchTasks after revision after and returns once the
// stream is live (its headers arrived).
func watchFrom(t *testing.T, d *daemontest.Daemon, after uint64) *watchCollector {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	s, err := d.Client.Tasks.WatchTasks(ctx, &pcnodev1.WatchTasksRequest{AfterRevision: after})
	if err == nil {
		_, err = s.Header()
	}
	if err != nil {
		t.Fatalf("WatchTasks(after %d) = %v", after, client.FromError(err))
	}
	w := &watchCollector{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			resp, err := s.Recv()
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			ev := resp.GetEvent()
			w.events = append(w.events, watched{ev.GetRevision(), ev.GetTaskId(), ev.GetStateChange().GetState()})
			w.mu.Unlock()
		}
	}()
	return w
}

// waitFor waits up to a minute until done holds for what w has seen, and
// returns a copy of it.
func (w *watchCollector) waitFor(t *testing.T, what string, done func([]watched) bool) []watched {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		w.mu.Lock()
		got, err := append([]watched(nil), w.events...), w.err
		w.mu.Unlock()
		if done(got) {
			return got
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("watch waiting for %s: ended with %v after %d events: %v", what, err, len(got), got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// through waits until w has seen revision rev.
func (w *watchCollector) through(t *testing.T, rev uint64) []watched {
	t.Helper()
	return w.waitFor(t, fmt.Sprint("revision ", rev), func(got []watched) bool {
		return len(got) > 0 && got[len(got)-1].rev >= rev
	})
}

// TestIntegrationWatchResume runs many tasks concurrently (some cancelled
// while they start) while one WatchTasks follows from the start and a
// second is dropped after a few events and resumed from the last revision
// it got: the second sees, before and after the drop together, exactly
// what the first saw, each change once, in revision order; each task's
// last change is its final state as GetTask reports it. Revisions then go
// on from the last one across a SIGKILL and a SIGTERM restart, and a
// revision the history no longer keeps is OUT_OF_RANGE with the oldest one
// kept.
func TestIntegrationWatchResume(t *testing.T) {
	const n = 30
	d := daemontest.Start(t, daemontest.Options{NoRace: true, Configure: func(c *config.Config) {
		c.Tasks.WatchHistory = config.MinWatchHistory
	}})
	img := e2eTestImage(t, d).GetName()

	whole := watchFrom(t, d, 0)
	first := watchFrom(t, d, 0)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := w; i < n; i += 3 {
				spec := e2eSpec(img, "sleep", "DURATION=0.2s")
				spec.Name = fmt.Sprintf("watch-%02d", i)
				resp, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec})
				if err != nil {
					t.Errorf("SubmitTask(%s) = %v", spec.Name, client.FromError(err))
					return
				}
				ids[i] = resp.GetTask().GetId()
				if i%5 == 4 {
					// Races the task's own start: any outcome is a state change.
					_, _ = d.Client.Tasks.CancelTask(t.Context(), &pcnodev1.CancelTaskRequest{TaskId: ids[i]})
				}
			}
		})
	}
	before := first.waitFor(t, "5 events", func(got []watched) bool { return len(got) >= 5 })
	first.cancel()
	<-first.done
	first.mu.Lock()
	before = append([]watched(nil), first.events...)
	first.mu.Unlock()
	resumed := watchFrom(t, d, before[len(before)-1].rev)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	finals := map[string]*pcnodev1.Task{}
	for _, id := range ids {
		finals[id] = d.WaitTask(t, id, 0)
	}
	want := whole.waitFor(t, "every task's final state", func(got []watched) bool {
		seen := 0
		for _, ev := range got {
			if client.IsFinal(ev.state) {
				seen++
			}
		}
		return seen == n
	})
	last := want[len(want)-1].rev
	after := resumed.through(t, last)
	got := append(before, after...)
	t.Logf("%d state changes of %d tasks; watcher dropped after revision %d of %d", len(want), n, before[len(before)-1].rev, last)

	for i, ev := range want {
		if ev.rev != uint64(i+1) {
			t.Fatalf("unbroken watcher: event %d has revision %d, want %d: %v", i, ev.rev, i+1, want)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dropped and resumed watcher saw\n%v\nwant what the unbroken one saw\n%v", got, want)
	}
	lastOf := map[string]watched{}
	for _, ev := range want {
		if prev, ok := lastOf[ev.id]; ok && client.IsFinal(prev.state) {
			t.Errorf("task %s: %v after its final state %v", ev.id, ev, prev)
		}
		lastOf[ev.id] = ev
	}
	for id, task := range finals {
		if lastOf[id].state != task.GetState() {
			t.Errorf("task %s: last change watched %v, GetTask says %v", id, lastOf[id], task.GetState())
		}
	}

	// Across restarts the revisions go on from the last one.
	for _, kill := range []bool{true, false} {
		if kill {
			d.Kill(t)
		} else {
			d.Stop(t)
		}
		d.Restart(t)
		w := watchFrom(t, d, last)
		task, events := d.Run(t, e2eSpec(img, "sleep", "DURATION=0.1s"))
		var revs []uint64
		for _, ev := range events {
			if ev.GetStateChange() != nil {
				revs = append(revs, ev.GetRevision())
			}
		}
		seen := w.waitFor(t, "the task's final state", func(got []watched) bool {
			return len(got) > 0 && got[len(got)-1].id == task.GetId() && client.IsFinal(got[len(got)-1].state)
		})
		if seen[0].rev != last+1 || seen[0].id != task.GetId() || seen[0].state != pcnodev1.TaskState_TASK_STATE_QUEUED {
			t.Errorf("after restart (kill %v): first change %v, want revision %d, task %s QUEUED", kill, seen[0], last+1, task.GetId())
		}
		for i, ev := range seen {
			if ev.rev != last+1+uint64(i) {
				t.Errorf("after restart (kill %v): change %d is %v, want revision %d", kill, i, ev, last+1+uint64(i))
			}
		}
		if len(revs) == 0 || revs[len(revs)-1] != seen[len(seen)-1].rev {
			t.Errorf("after restart (kill %v): RunTask state change revisions %v, want them to end at the watched %d", kill, revs, seen[len(seen)-1].rev)
		}
		for i := 1; i < len(revs); i++ {
			if revs[i] <= revs[i-1] {
				t.Errorf("after restart (kill %v): RunTask state change revisions %v not increasing", kill, revs)
			}
		}
		last = seen[len(seen)-1].rev
	}

	// Revision 1 is long pruned from a history of 100.
	s, err := d.Client.Tasks.WatchTasks(t.Context(), &pcnodev1.WatchTasksRequest{AfterRevision: 1})
	if err == nil {
		_, err = s.Recv()
	}
	st := status.Convert(err)
	var info *errdetails.ErrorInfo
	for _, det := range st.Details() {
		if i, ok := det.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	wantOldest := strconv.FormatUint(last-config.MinWatchHistory+1, 10)
	if st.Code() != codes.OutOfRange || info.GetReason() != "REVISION_COMPACTED" || info.GetMetadata()["oldest_revision"] != wantOldest {
		t.Errorf("WatchTasks(after 1) = %v, details %v, want OutOfRange, REVISION_COMPACTED, oldest_revision %s", err, st.Details(), wantOldest)
	}
	// And one in the future is refused on after_revision.
	s, err = d.Client.Tasks.WatchTasks(t.Context(), &pcnodev1.WatchTasksRequest{AfterRevision: last + 1000})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("WatchTasks(after %d) = %v, want InvalidArgument", last+1000, err)
	}
}
