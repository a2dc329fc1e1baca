package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

func testOutputs(t *testing.T, open Opener) {
	s := open(t)
	id := newIDs(2, 0)
	mustCreate(t, s, newTask(id[0], succeeded, nil))
	big := &pcnodev1.OutputManifest{Name: "big", HostPath: "/data/out/big"}
	for i := range 2000 {
		big.Files = append(big.Files, &pcnodev1.OutputFile{Path: fmt.Sprintf("dir/file-%04d.dcm", i), SizeBytes: int64(i), Sha256: fmt.Sprintf("%064x", i)})
	}
	big.FileCount, big.TotalBytes = 2000, 1999*2000/2
	two := []*pcnodev1.OutputManifest{
		{Name: "out", HostPath: "/data/out", FileCount: 1, TotalBytes: 5, Files: []*pcnodev1.OutputFile{{Path: "a.txt", SizeBytes: 5, Sha256: "ab"}}},
		{Name: "empty", HostPath: "/data/empty"},
	}
	tests := []struct {
		name string
		id   string
		put  []*pcnodev1.OutputManifest
		want error
		get  []*pcnodev1.OutputManifest // after the put
	}{
		{"none yet", id[0], nil, nil, nil},
		{"two channels in order", id[0], two, nil, two},
		{"replaced", id[0], []*pcnodev1.OutputManifest{big}, nil, []*pcnodev1.OutputManifest{big}},
		{"nil manifest refused", id[0], []*pcnodev1.OutputManifest{two[0], nil}, store.ErrInvalidArgument, []*pcnodev1.OutputManifest{big}},
		{"cleared", id[0], []*pcnodev1.OutputManifest{}, nil, nil},
		{"missing task", id[1], two, store.ErrNotFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.put != nil {
				if err := s.PutOutputs(ctx(), tt.id, tt.put); !errors.Is(err, tt.want) {
					t.Fatalf("PutOutputs(%q) = %v, want %v", tt.id, err, tt.want)
				}
			}
			got, err := s.GetOutputs(ctx(), tt.id)
			if tt.id == id[1] {
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("GetOutputs(%q) = %v, want %v", tt.id, err, store.ErrNotFound)
				}
				return
			}
			if err != nil {
				t.Fatalf("GetOutputs(%q) = %v", tt.id, err)
			}
			if len(got) == 0 && len(tt.get) == 0 {
				return
			}
			if d := diff(tt.get, got); d != "" {
				t.Errorf("GetOutputs(%q) diff (-want +got):\n%s", tt.id, d)
			}
			// A returned manifest is a copy.
			got[0].Name = "changed"
			if again, _ := s.GetOutputs(ctx(), tt.id); again[0].GetName() == "changed" {
				t.Errorf("GetOutputs(%q) returned the stored manifest, not a copy", tt.id)
			}
		})
	}
	// PutOutputs keeps no reference to its argument.
	in := []*pcnodev1.OutputManifest{{Name: "out"}}
	if err := s.PutOutputs(ctx(), id[0], in); err != nil {
		t.Fatal(err)
	}
	in[0].Name = "changed"
	if got, err := s.GetOutputs(ctx(), id[0]); err != nil || got[0].GetName() != "out" {
		t.Errorf("GetOutputs(%q) after changing PutOutputs' argument = %v, %v, want name out", id[0], got, err)
	}
}

func testUnfinished(t *testing.T, open Opener) {
	s := open(t)
	if got, err := s.Unfinished(ctx()); err != nil || len(got) != 0 {
		t.Fatalf("Unfinished() on an empty store = %v, %v, want none", got, err)
	}
	data := listData(t, s, 14)
	want := wantIDs(data, []pcnodev1.TaskState{queued, preparing, running}, nil)
	for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
		want[i], want[j] = want[j], want[i] // oldest first
	}
	got, err := s.Unfinished(ctx())
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(want, taskIDs(got)); d != "" {
		t.Errorf("Unfinished() diff (-want +got):\n%s", d)
	}
	// Finishing the oldest and unfinishing nothing else shrinks the list.
	if _, err := s.ModifyTask(ctx(), want[0], func(t *pcnodev1.Task) error { t.State = failed; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err = s.Unfinished(ctx())
	if d := diff(want[1:], taskIDs(got)); err != nil || d != "" {
		t.Errorf("Unfinished() after finishing %q = %v, diff (-want +got):\n%s", want[0], err, d)
	}
}

func testDeleteFinishedBefore(t *testing.T, open Opener) {
	s := open(t)
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(base.Add(d)) }
	id := newIDs(9, 0)
	tasks := []*pcnodev1.Task{
		// 0: finished an hour after base.
		{Id: id[0], State: succeeded, FinishTime: at(time.Hour)},
		// 1: finished first, failed.
		{Id: id[1], State: failed, FinishTime: at(time.Minute)},
		// 2: finished exactly at the cut: kept.
		{Id: id[2], State: cancelled, FinishTime: at(2 * time.Hour)},
		// 3: finished after the cut: kept.
		{Id: id[3], State: succeeded, FinishTime: at(3 * time.Hour)},
		// 4: running since long ago: kept.
		{Id: id[4], State: running, CreateTime: at(-time.Hour), UpdateTime: at(-time.Hour)},
		// 5: queued with a finish time (never happens; state wins): kept.
		{Id: id[5], State: queued, FinishTime: at(0)},
		// 6: final without finish time: update time counts.
		{Id: id[6], State: failed, UpdateTime: at(90 * time.Minute), CreateTime: at(3 * time.Hour)},
		// 7: final with create time only.
		{Id: id[7], State: failed, CreateTime: at(30 * time.Minute)},
		// 8: final without any time, long before everything.
		{Id: id[8], State: cancelled},
	}
	for i, task := range tasks {
		if _, _, err := s.CreateTask(ctx(), task, fmt.Sprint("key-", i), nil); err != nil {
			t.Fatal(err)
		}
		if err := s.PutOutputs(ctx(), task.GetId(), []*pcnodev1.OutputManifest{{Name: "out"}}); err != nil {
			t.Fatal(err)
		}
	}
	cut := base.Add(2 * time.Hour)

	got, err := s.DeleteFinishedBefore(ctx(), cut)
	want := []string{id[8], id[1], id[7], id[0], id[6]} // by the time that counts
	if d := diff(want, got); err != nil || d != "" {
		t.Fatalf("DeleteFinishedBefore(%v) = %v, diff (-want +got):\n%s", cut, err, d)
	}
	for i, tid := range id {
		_, err := s.GetTask(ctx(), tid)
		_, outErr := s.GetOutputs(ctx(), tid)
		gone := errors.Is(err, store.ErrNotFound) && errors.Is(outErr, store.ErrNotFound)
		if wantGone := slices.Contains(want, tid); gone != wantGone || (!wantGone && (err != nil || outErr != nil)) {
			t.Errorf("task %d after DeleteFinishedBefore: GetTask = %v, GetOutputs = %v, want deleted %v", i, err, outErr, wantGone)
		}
		// A deleted task's key is free again, a kept one's is not.
		_, existing, err := s.CreateTask(ctx(), newTask(newIDs(1, time.Duration(i+1)*time.Second)[0], queued, nil), fmt.Sprint("key-", i), nil)
		if err != nil || existing == slices.Contains(want, tid) {
			t.Errorf("CreateTask(key-%d) after DeleteFinishedBefore = existing %v, %v, want existing %v", i, existing, err, !slices.Contains(want, tid))
		}
	}
	if got, err := s.DeleteFinishedBefore(ctx(), cut); err != nil || len(got) != 0 {
		t.Errorf("DeleteFinishedBefore(%v) again = %v, %v, want nothing", cut, got, err)
	}
	// Finishing a task makes it expire by its new finish time.
	if _, err := s.ModifyTask(ctx(), id[4], func(t *pcnodev1.Task) error {
		t.State, t.FinishTime = succeeded, at(time.Second)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DeleteFinishedBefore(ctx(), cut); err != nil || len(got) != 1 || got[0] != id[4] {
		t.Errorf("DeleteFinishedBefore(%v) after finishing %q = %v, %v, want it alone", cut, id[4], got, err)
	}
}

// Concurrent writers neither lose nor duplicate anything, and one
// idempotency key yields exactly one task. Run with -race.
//
// Each writer records what it saw in its own element of results, read only
// after wg.Wait: there is no channel whose capacity must match the number of
// sends, so a writer can only block inside the store. (With channels drained
// after wg.Wait, a buffer one send too small hangs the test for good.)
func testConcurrentWriters(t *testing.T, open Opener) {
	s := open(t)
	const writers, each = 8, 25
	type result struct{ created, matched []string }
	results := make([]result, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := &results[w]
			for i := range each {
				task := newTask(store.NewID(time.Now()), queued, map[string]string{"writer": fmt.Sprint(w)})
				got, existing, err := s.CreateTask(ctx(), task, "", nil)
				if err != nil || existing {
					t.Errorf("writer %d: CreateTask = %v, %v", w, existing, err)
					return
				}
				r.created = append(r.created, got.GetId())
				if _, err := s.ModifyTask(ctx(), got.GetId(), func(t *pcnodev1.Task) error {
					t.State = running
					t.ExitCode++
					return nil
				}); err != nil {
					t.Errorf("writer %d: ModifyTask = %v", w, err)
				}
				if _, _, err := s.ListTasks(ctx(), store.ListOptions{States: []pcnodev1.TaskState{running}, PageSize: 5}); err != nil {
					t.Errorf("writer %d: ListTasks = %v", w, err)
				}
				// Everyone races for the same key in round i.
				shared := newTask(store.NewID(time.Now()), queued, nil)
				got, existing, err = s.CreateTask(ctx(), shared, fmt.Sprint("round-", i), []byte("spec"))
				if err != nil {
					t.Errorf("writer %d: CreateTask(round-%d) = %v", w, i, err)
					return
				}
				if existing {
					r.matched = append(r.matched, got.GetId())
				} else {
					r.created = append(r.created, got.GetId())
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range results {
		for _, id := range r.created {
			if seen[id] {
				t.Errorf("task %q created twice", id)
			}
			seen[id] = true
		}
	}
	if want := writers*each + each; len(seen) != want {
		t.Errorf("created %d tasks, want %d", len(seen), want)
	}
	for _, r := range results {
		for _, id := range r.matched {
			if !seen[id] {
				t.Errorf("idempotent match returned %q, which was never created", id)
			}
		}
	}
	all, pages := listAll(t, s, store.ListOptions{PageSize: store.MaxPageSize})
	if len(all) != len(seen) {
		t.Errorf("ListTasks() = %d tasks in pages %v, want %d", len(all), pages, len(seen))
	}
	for _, id := range all {
		got, err := s.GetTask(ctx(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.GetSpec().GetLabels()["writer"] != "" && (got.GetState() != running || got.GetExitCode() != 1) {
			t.Errorf("GetTask(%q) = state %v exit %d, want RUNNING exit 1 after one ModifyTask", id, got.GetState(), got.GetExitCode())
		}
	}
}

func testClosed(t *testing.T, open Opener) {
	s := open(t)
	id := newIDs(1, 0)[0]
	mustCreate(t, s, newTask(id, queued, nil))
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() twice = %v, want nil", err)
	}
	for name, err := range callAll(s, id) {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close = %v, want %v", name, err, store.ErrClosed)
		}
	}
}

func testCanceledContext(t *testing.T, open Opener) {
	s := open(t)
	id := newIDs(1, 0)[0]
	mustCreate(t, s, newTask(id, queued, nil))
	c, cancel := context.WithCancel(context.Background())
	cancel()
	for name, err := range callAllCtx(c, s, id) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v, want %v", name, err, context.Canceled)
		}
	}
	if got, err := s.GetTask(ctx(), id); err != nil || got.GetState() != queued {
		t.Errorf("GetTask(%q) after canceled calls = %v, %v, want it unchanged", id, got, err)
	}
}

func callAll(s store.Store, id string) map[string]error { return callAllCtx(ctx(), s, id) }

// callAllCtx calls every method of s once, with valid arguments about id.
func callAllCtx(c context.Context, s store.Store, id string) map[string]error {
	errs := map[string]error{}
	_, _, errs["CreateTask"] = s.CreateTask(c, newTask(newIDs(1, time.Hour)[0], queued, nil), "k", nil)
	_, errs["GetTask"] = s.GetTask(c, id)
	errs["UpdateTask"] = s.UpdateTask(c, newTask(id, running, nil))
	_, errs["ModifyTask"] = s.ModifyTask(c, id, func(*pcnodev1.Task) error { return nil })
	_, _, errs["ListTasks"] = s.ListTasks(c, store.ListOptions{})
	_, _, errs["ListTasksEncoded"] = s.ListTasksEncoded(c, store.ListOptions{})
	errs["PutOutputs"] = s.PutOutputs(c, id, nil)
	_, errs["GetOutputs"] = s.GetOutputs(c, id)
	_, errs["Unfinished"] = s.Unfinished(c)
	_, errs["DeleteFinishedBefore"] = s.DeleteFinishedBefore(c, base.AddDate(1, 0, 0))
	errs["DeleteTask"] = s.DeleteTask(c, id)
	_, errs["GetNodeState"] = s.GetNodeState(c)
	errs["SetDraining"] = s.SetDraining(c, true)
	errs["PutGPUMark"] = s.PutGPUMark(c, "GPU-a", store.GPUMark{Kind: "xid", XID: 79, Time: base})
	errs["DeleteGPUMark"] = s.DeleteGPUMark(c, "GPU-a")
	return errs
}

func testFinishedSince(t *testing.T, open Opener) {
	s := open(t)
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(base.Add(d)) }
	id := newIDs(7, 0)
	tasks := []*pcnodev1.Task{
		{Id: id[0], State: succeeded, FinishTime: at(time.Hour)},
		{Id: id[1], State: failed, FinishTime: at(2 * time.Hour)}, // exactly at the cut: listed
		{Id: id[2], State: cancelled, FinishTime: at(3 * time.Hour)},
		{Id: id[3], State: running, UpdateTime: at(4 * time.Hour)},                               // not final
		{Id: id[4], State: failed, UpdateTime: at(150 * time.Minute)},                            // update time counts
		{Id: id[5], State: succeeded, FinishTime: at(3 * time.Hour)},                             // same time as 2: by id
		{Id: id[6], State: queued, FinishTime: at(5 * time.Hour), CreateTime: at(5 * time.Hour)}, // not final
	}
	for _, task := range tasks {
		mustCreate(t, s, task)
	}
	tests := []struct {
		since time.Time
		want  []string
	}{
		{base.Add(2 * time.Hour), []string{id[5], id[2], id[4], id[1]}},
		{base.Add(3 * time.Hour), []string{id[5], id[2]}},
		{base.Add(6 * time.Hour), nil},
		{base.Add(-time.Hour), []string{id[5], id[2], id[4], id[1], id[0]}},
	}
	for _, tt := range tests {
		got, err := s.FinishedSince(ctx(), tt.since)
		if d := diff(tt.want, got); err != nil || d != "" {
			t.Errorf("FinishedSince(%v) = %v, diff (-want +got):\n%s", tt.since, err, d)
		}
	}
	// Deleting and finishing move a task out of and into the listing.
	if err := s.DeleteTask(ctx(), id[5]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ModifyTask(ctx(), id[3], func(t *pcnodev1.Task) error {
		t.State, t.FinishTime = succeeded, at(4*time.Hour)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.FinishedSince(ctx(), base.Add(3*time.Hour))
	if d := diff([]string{id[3], id[2]}, got); err != nil || d != "" {
		t.Errorf("FinishedSince after a delete and a finish = %v, diff (-want +got):\n%s", err, d)
	}
}
