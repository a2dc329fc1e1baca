package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// HistoryOpener returns a new, empty store that keeps history state changes
// (store.Options.History), with cleanup registered on t as Opener does.
type HistoryOpener func(t *testing.T, history int) store.Store

// RunRevisions runs the tests of revisions and the history against the
// stores open returns.
func RunRevisions(t *testing.T, open HistoryOpener) {
	tests := []struct {
		name string
		fn   func(*testing.T, HistoryOpener)
	}{
		{"StateChangesOnly", testStateChangesOnly},
		{"ResumeBounds", testResumeBounds},
		{"HistoryPruned", testHistoryPruned},
		{"UnfinishedChanges", testUnfinishedChanges},
		{"ConcurrentRevisions", testConcurrentRevisions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// change is a Change reduced to what the tests compare.
type change struct {
	Rev   uint64
	ID    string
	State pcnodev1.TaskState
	Msg   string
}

func changesOf(cs []store.Change) []change {
	var out []change
	for _, c := range cs {
		out = append(out, change{c.Revision, c.Task.GetId(), c.Task.GetState(), c.Task.GetMessage()})
	}
	return out
}

// allChanges reads every change after after, page by page.
func allChanges(t *testing.T, s store.Store, after uint64, limit int) []store.Change {
	t.Helper()
	var out []store.Change
	for {
		page, _, err := s.Changes(ctx(), after, limit)
		if err != nil {
			t.Fatalf("Changes(%d, %d) = %v", after, limit, err)
		}
		out = append(out, page...)
		if len(page) < limit || len(page) == 0 {
			return out
		}
		after = page[len(page)-1].Revision
	}
}

// Creating a task and changing its state each take the next revision, in
// the order written, with the task as written; writes that keep the state
// take none, and deleting a task keeps its history.
func testStateChangesOnly(t *testing.T, open HistoryOpener) {
	s := open(t, store.MinHistory)
	if _, revs, err := s.Changes(ctx(), 0, 0); err != nil || revs != (store.Revisions{Current: 0, Oldest: 1}) {
		t.Fatalf("Changes(0) on an empty store = %+v, %v, want {0 1}, nil", revs, err)
	}
	id := newIDs(2, 0)
	mustCreate(t, s, newTask(id[0], queued, nil))
	mustCreate(t, s, newTask(id[1], queued, nil))
	set := func(id string, st pcnodev1.TaskState, msg string) {
		t.Helper()
		if _, err := s.ModifyTask(ctx(), id, func(t *pcnodev1.Task) error { t.State, t.Message = st, msg; return nil }); err != nil {
			t.Fatalf("ModifyTask(%q) = %v", id, err)
		}
	}
	set(id[0], preparing, "pulling")
	set(id[0], preparing, "still pulling") // same state: no revision
	next := newTask(id[1], running, nil)
	next.Message = "started"
	if err := s.UpdateTask(ctx(), next); err != nil {
		t.Fatalf("UpdateTask = %v", err)
	}
	set(id[0], succeeded, "done")
	want := []change{
		{1, id[0], queued, ""},
		{2, id[1], queued, ""},
		{3, id[0], preparing, "pulling"},
		{4, id[1], running, "started"},
		{5, id[0], succeeded, "done"},
	}
	if d := diff(want, changesOf(allChanges(t, s, 0, 2))); d != "" {
		t.Errorf("Changes from 0 in pages of 2 (-want +got):\n%s", d)
	}
	if d := diff(want[3:], changesOf(allChanges(t, s, 3, 0))); d != "" {
		t.Errorf("Changes from 3 (-want +got):\n%s", d)
	}
	c, err := s.GetTaskChange(ctx(), id[0])
	if err != nil || c.Revision != 5 || c.Task.GetMessage() != "done" {
		t.Errorf("GetTaskChange(%q) = revision %d, message %q, %v, want 5, done, nil", id[0], c.Revision, c.Task.GetMessage(), err)
	}
	if _, err := s.GetTaskChange(ctx(), newIDs(1, time.Hour)[0]); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetTaskChange(unknown) = %v, want ErrNotFound", err)
	}
	// Returned changes are copies.
	got, _, _ := s.Changes(ctx(), 0, 1)
	got[0].Task.Message = "changed by the caller"
	again, _, _ := s.Changes(ctx(), 0, 1)
	if again[0].Task.GetMessage() != "" {
		t.Errorf("Changes returned the stored task itself: a caller's change shows as %q", again[0].Task.GetMessage())
	}
	if err := s.DeleteTask(ctx(), id[0]); err != nil {
		t.Fatal(err)
	}
	if d := diff(want, changesOf(allChanges(t, s, 0, 0))); d != "" {
		t.Errorf("Changes after deleting %s (-want +got):\n%s", id[0], d)
	}
	mustCreate(t, s, newTask(newIDs(1, time.Minute)[0], queued, nil))
	if _, revs, _ := s.Changes(ctx(), 5, 0); revs.Current != 6 {
		t.Errorf("revision after a delete and a create = %d, want 6 (never reused)", revs.Current)
	}
}

// A revision above the newest is ErrFutureRevision; the newest itself is
// an empty, valid resume point.
func testResumeBounds(t *testing.T, open HistoryOpener) {
	s := open(t, store.MinHistory)
	for _, id := range newIDs(3, 0) {
		mustCreate(t, s, newTask(id, queued, nil))
	}
	if got, revs, err := s.Changes(ctx(), 3, 0); err != nil || len(got) != 0 || revs != (store.Revisions{Current: 3, Oldest: 1}) {
		t.Errorf("Changes(3) = %d changes, %+v, %v, want none, {3 1}, nil", len(got), revs, err)
	}
	if _, revs, err := s.Changes(ctx(), 4, 0); !errors.Is(err, store.ErrFutureRevision) || revs.Current != 3 {
		t.Errorf("Changes(4) = %+v, %v, want current 3, ErrFutureRevision", revs, err)
	}
}

// The history keeps the most recent changes only; resuming before them is
// ErrCompacted, with the oldest kept in the Revisions.
func testHistoryPruned(t *testing.T, open HistoryOpener) {
	const history = store.MinHistory
	s := open(t, history)
	ids := newIDs(history/2+10, 0)
	for _, id := range ids {
		mustCreate(t, s, newTask(id, queued, nil))
		if _, err := s.ModifyTask(ctx(), id, func(t *pcnodev1.Task) error { t.State = running; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	total := uint64(2 * len(ids))
	oldest := total - history + 1
	_, revs, err := s.Changes(ctx(), 0, 0)
	if !errors.Is(err, store.ErrCompacted) || revs != (store.Revisions{Current: total, Oldest: oldest}) {
		t.Errorf("Changes(0) = %+v, %v, want {%d %d}, ErrCompacted", revs, err, total, oldest)
	}
	if _, _, err := s.Changes(ctx(), oldest-2, 0); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Changes(oldest-2 = %d) = %v, want ErrCompacted", oldest-2, err)
	}
	got := allChanges(t, s, oldest-1, 0)
	if len(got) != history || got[0].Revision != oldest || got[len(got)-1].Revision != total {
		t.Errorf("Changes(oldest-1) = %d changes from %d, want %d from %d to %d", len(got), got[0].Revision, history, oldest, total)
	}
	for i, c := range got {
		if c.Revision != oldest+uint64(i) {
			t.Fatalf("change %d has revision %d, want %d", i, c.Revision, oldest+uint64(i))
		}
	}
}

// UnfinishedChanges carries each task's last state change and the newest
// revision, read together.
func testUnfinishedChanges(t *testing.T, open HistoryOpener) {
	s := open(t, store.MinHistory)
	id := newIDs(3, 0)
	for _, i := range id {
		mustCreate(t, s, newTask(i, queued, nil))
	}
	if _, err := s.ModifyTask(ctx(), id[0], func(t *pcnodev1.Task) error { t.State = running; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModifyTask(ctx(), id[1], func(t *pcnodev1.Task) error { t.State = failed; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModifyTask(ctx(), id[0], func(t *pcnodev1.Task) error { t.Message = "no state change"; return nil }); err != nil {
		t.Fatal(err)
	}
	got, revs, err := s.UnfinishedChanges(ctx())
	if err != nil || revs.Current != 5 {
		t.Fatalf("UnfinishedChanges() = %+v, %v, want current 5", revs, err)
	}
	want := []change{{4, id[0], running, "no state change"}, {3, id[2], queued, ""}}
	if d := diff(want, changesOf(got)); d != "" {
		t.Errorf("UnfinishedChanges() (-want +got):\n%s", d)
	}
}

// Concurrent writers get every revision exactly once, and the history holds
// each task's changes in the order that task went through them. Run with
// -race.
func testConcurrentRevisions(t *testing.T, open HistoryOpener) {
	s := open(t, 1000)
	const writers, each = 6, 10
	steps := []pcnodev1.TaskState{queued, preparing, running, succeeded}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for range each {
				task := newTask(store.NewID(time.Now()), queued, map[string]string{"writer": fmt.Sprint(w)})
				got, _, err := s.CreateTask(ctx(), task, "", nil)
				if err != nil {
					t.Errorf("writer %d: CreateTask = %v", w, err)
					return
				}
				for _, st := range steps[1:] {
					if _, err := s.ModifyTask(ctx(), got.GetId(), func(t *pcnodev1.Task) error { t.State = st; return nil }); err != nil {
						t.Errorf("writer %d: ModifyTask = %v", w, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	got := allChanges(t, s, 0, 0)
	if want := writers * each * len(steps); len(got) != want {
		t.Fatalf("history holds %d changes, want %d", len(got), want)
	}
	next := map[string]int{}
	for i, c := range got {
		if c.Revision != uint64(i+1) {
			t.Fatalf("change %d has revision %d, want %d", i, c.Revision, i+1)
		}
		id := c.Task.GetId()
		if st := c.Task.GetState(); st != steps[next[id]] {
			t.Errorf("revision %d: task %s is %v, want %v next", c.Revision, id, st, steps[next[id]])
		}
		next[id]++
	}
}
