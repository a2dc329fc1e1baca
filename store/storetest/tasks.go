package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

func testCreateAndGet(t *testing.T, open Opener) {
	s := open(t)
	id := newIDs(1, 0)[0]
	in := newTask(id, queued, map[string]string{"team": "a"})
	in.Spec.RegistryAuth = &pcnodev1.RegistryAuth{Username: "u", Password: "secret"}
	want := proto.CloneOf(in)
	want.Spec.RegistryAuth = nil
	want.IdempotencyKey = "key-1"

	got, existing, err := s.CreateTask(ctx(), in, "key-1", []byte("hash"))
	if err != nil || existing {
		t.Fatalf("CreateTask(%q) = _, %v, %v, want _, false, nil", id, existing, err)
	}
	if d := diff(want, got); d != "" {
		t.Errorf("CreateTask(%q) returned diff (-want +got):\n%s", id, d)
	}
	if in.GetSpec().GetRegistryAuth() == nil || in.GetIdempotencyKey() != "" {
		t.Errorf("CreateTask(%q) changed its argument: %v", id, in)
	}

	// What is returned is a copy.
	got.State = failed
	got.Spec.Labels["team"] = "changed"

	stored, err := s.GetTask(ctx(), id)
	if err != nil {
		t.Fatalf("GetTask(%q) = %v", id, err)
	}
	if d := diff(want, stored); d != "" {
		t.Errorf("GetTask(%q) diff (-want +got):\n%s", id, d)
	}
	stored.Message = "changed"
	again, err := s.GetTask(ctx(), id)
	if err != nil || again.GetMessage() != "" {
		t.Errorf("GetTask(%q) after changing an earlier result = %v, %v; want the stored task unchanged", id, again, err)
	}

	for _, missing := range []string{newIDs(1, 1)[0], "", "not-an-id", strings.Repeat("Z", 5000)} {
		if _, err := s.GetTask(ctx(), missing); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetTask(%q) = %v, want %v", missing, err, store.ErrNotFound)
		}
	}
}

func testCreateInvalid(t *testing.T, open Opener) {
	s := open(t)
	id := newIDs(1, 0)[0]
	mustCreate(t, s, newTask(id, queued, nil))
	tests := []struct {
		name string
		task *pcnodev1.Task
		key  string
		want error
	}{
		{"nil task", nil, "", store.ErrInvalidArgument},
		{"empty id", newTask("", queued, nil), "", store.ErrInvalidArgument},
		{"lower-case id", newTask(strings.ToLower(newIDs(1, 1)[0]), queued, nil), "", store.ErrInvalidArgument},
		{"id with slash", newTask("01J/../../../../etc/passwd", queued, nil), "", store.ErrInvalidArgument},
		{"key too long", newTask(newIDs(1, 2)[0], queued, nil), strings.Repeat("k", store.MaxIdempotencyKeyLen+1), store.ErrInvalidArgument},
		{"duplicate id", newTask(id, running, nil), "", store.ErrExists},
		{"duplicate id with new key", newTask(id, running, nil), "fresh", store.ErrExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, existing, err := s.CreateTask(ctx(), tt.task, tt.key, nil)
			if !errors.Is(err, tt.want) || got != nil || existing {
				t.Errorf("CreateTask(%q) = %v, %v, %v, want nil, false, %v", tt.task.GetId(), got, existing, err, tt.want)
			}
		})
	}
	// Nothing of the failed attempts was kept.
	all, _, err := s.ListTasks(ctx(), store.ListOptions{})
	if err != nil {
		t.Fatalf("ListTasks() = %v", err)
	}
	if d := diff([]string{id}, taskIDs(all)); d != "" || all[0].GetState() != queued {
		t.Errorf("ListTasks() after failed creates = %v, want only the first task as created", all)
	}
	// "fresh" was not recorded by the failed create.
	if _, existing, err := s.CreateTask(ctx(), newTask(newIDs(1, 3)[0], queued, nil), "fresh", []byte("x")); err != nil || existing {
		t.Errorf("CreateTask with the key of a failed create = %v, %v, want a new task", existing, err)
	}
}

func testIdempotency(t *testing.T, open Opener) {
	type step struct {
		key     string
		hash    string
		want    error
		wantNew bool // a new task was created
		wantID  int  // index of the step whose task is returned
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"same key same spec", []step{
			{key: "k", hash: "h1", wantNew: true, wantID: 0},
			{key: "k", hash: "h1", wantID: 0},
			{key: "k", hash: "h1", wantID: 0},
		}},
		{"same key other spec", []step{
			{key: "k", hash: "h1", wantNew: true, wantID: 0},
			{key: "k", hash: "h2", want: store.ErrKeyConflict},
			{key: "k", hash: "", want: store.ErrKeyConflict},
			{key: "k", hash: "h1", wantID: 0},
		}},
		{"empty hash matches empty hash", []step{
			{key: "k", hash: "", wantNew: true, wantID: 0},
			{key: "k", hash: "", wantID: 0},
		}},
		{"no key never matches", []step{
			{key: "", hash: "h1", wantNew: true, wantID: 0},
			{key: "", hash: "h1", wantNew: true, wantID: 1},
		}},
		{"keys are independent", []step{
			{key: "a", hash: "h1", wantNew: true, wantID: 0},
			{key: "b", hash: "h1", wantNew: true, wantID: 1},
			{key: "A", hash: "h2", wantNew: true, wantID: 2},
			{key: "b", hash: "h1", wantID: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			tids := newIDs(len(tt.steps), 0)
			for i, st := range tt.steps {
				got, existing, err := s.CreateTask(ctx(), newTask(tids[i], queued, nil), st.key, []byte(st.hash))
				if st.want != nil {
					if !errors.Is(err, st.want) {
						t.Fatalf("step %d: CreateTask(%q, key %q) = %v, want %v", i, tids[i], st.key, err, st.want)
					}
					continue
				}
				if err != nil || existing == st.wantNew {
					t.Fatalf("step %d: CreateTask(%q, key %q) = existing %v, %v, want existing %v", i, tids[i], st.key, existing, err, !st.wantNew)
				}
				if got.GetId() != tids[st.wantID] || got.GetIdempotencyKey() != st.key {
					t.Errorf("step %d: CreateTask(%q, key %q) returned task %q key %q, want %q key %q", i, tids[i], st.key, got.GetId(), got.GetIdempotencyKey(), tids[st.wantID], st.key)
				}
				if _, err := s.GetTask(ctx(), tids[i]); (err == nil) != st.wantNew {
					t.Errorf("step %d: GetTask(%q) = %v, want stored %v", i, tids[i], err, st.wantNew)
				}
			}
		})
	}

	t.Run("key freed by delete", func(t *testing.T) {
		s := open(t)
		id := newIDs(2, 0)
		if _, _, err := s.CreateTask(ctx(), newTask(id[0], succeeded, nil), "k", []byte("h1")); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteTask(ctx(), id[0]); err != nil {
			t.Fatalf("DeleteTask(%q) = %v", id[0], err)
		}
		got, existing, err := s.CreateTask(ctx(), newTask(id[1], queued, nil), "k", []byte("h2"))
		if err != nil || existing || got.GetId() != id[1] {
			t.Errorf("CreateTask(%q, key of a deleted task) = %v, %v, %v, want a new task", id[1], got.GetId(), existing, err)
		}
	})
}

func testUpdateTask(t *testing.T, open Opener) {
	s := open(t)
	id := newIDs(2, 0)
	if _, _, err := s.CreateTask(ctx(), newTask(id[0], queued, nil), "k", nil); err != nil {
		t.Fatal(err)
	}

	next := newTask(id[0], running, map[string]string{"x": "y"})
	next.IdempotencyKey = "k"
	next.ExitCode = 3
	next.Spec.RegistryAuth = &pcnodev1.RegistryAuth{Password: "secret"}
	if err := s.UpdateTask(ctx(), next); err != nil {
		t.Fatalf("UpdateTask(%q) = %v", id[0], err)
	}
	want := proto.CloneOf(next)
	want.Spec.RegistryAuth = nil
	got, err := s.GetTask(ctx(), id[0])
	if err != nil {
		t.Fatal(err)
	}
	if d := diff(want, got); d != "" {
		t.Errorf("GetTask(%q) after UpdateTask diff (-want +got):\n%s", id[0], d)
	}
	if next.GetSpec().GetRegistryAuth() == nil {
		t.Errorf("UpdateTask(%q) changed its argument", id[0])
	}

	otherKey := proto.CloneOf(next)
	otherKey.IdempotencyKey = "other"
	noKey := proto.CloneOf(next)
	noKey.IdempotencyKey = ""
	tests := []struct {
		name string
		task *pcnodev1.Task
		want error
	}{
		{"nil", nil, store.ErrInvalidArgument},
		{"missing", newTask(id[1], running, nil), store.ErrNotFound},
		{"bad id", newTask("nope", running, nil), store.ErrNotFound},
		{"key changed", otherKey, store.ErrInvalidArgument},
		{"key dropped", noKey, store.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.UpdateTask(ctx(), tt.task); !errors.Is(err, tt.want) {
				t.Errorf("UpdateTask(%q) = %v, want %v", tt.task.GetId(), err, tt.want)
			}
		})
	}
	got, err = s.GetTask(ctx(), id[0])
	if d := diff(want, got); err != nil || d != "" {
		t.Errorf("GetTask(%q) after refused updates = %v, diff (-want +got):\n%s", id[0], err, d)
	}
}

func testModifyTask(t *testing.T, open Opener) {
	s := open(t)
	id := newIDs(2, 0)
	if _, _, err := s.CreateTask(ctx(), newTask(id[0], queued, nil), "k", nil); err != nil {
		t.Fatal(err)
	}
	errStop := errors.New("stop")
	tests := []struct {
		name      string
		id        string
		fn        func(*pcnodev1.Task) error
		want      error
		wantState pcnodev1.TaskState
	}{
		{"change state", id[0], func(t *pcnodev1.Task) error { t.State = running; return nil }, nil, running},
		{"fn error writes nothing", id[0], func(t *pcnodev1.Task) error { t.State = failed; return errStop }, errStop, running},
		{"id change refused", id[0], func(t *pcnodev1.Task) error { t.State = failed; t.Id = id[1]; return nil }, store.ErrInvalidArgument, running},
		{"key change refused", id[0], func(t *pcnodev1.Task) error { t.IdempotencyKey = "x"; return nil }, store.ErrInvalidArgument, running},
		{"credentials dropped", id[0], func(t *pcnodev1.Task) error {
			t.Spec.RegistryAuth = &pcnodev1.RegistryAuth{Password: "p"}
			t.State = succeeded
			return nil
		}, nil, succeeded},
		{"missing", id[1], func(*pcnodev1.Task) error { return nil }, store.ErrNotFound, succeeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ModifyTask(ctx(), tt.id, tt.fn)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ModifyTask(%q) = %v, want %v", tt.id, err, tt.want)
			}
			stored, err := s.GetTask(ctx(), id[0])
			if err != nil {
				t.Fatal(err)
			}
			if stored.GetState() != tt.wantState || stored.GetSpec().GetRegistryAuth() != nil {
				t.Errorf("GetTask(%q) after ModifyTask = %v, want state %v without credentials", id[0], stored, tt.wantState)
			}
			if tt.want == nil {
				if d := diff(stored, got); d != "" {
					t.Errorf("ModifyTask(%q) returned diff from stored (-stored +returned):\n%s", tt.id, d)
				}
			}
		})
	}
}

func testDeleteTask(t *testing.T, open Opener) {
	s := open(t)
	id := newIDs(2, 0)
	if _, _, err := s.CreateTask(ctx(), newTask(id[0], succeeded, nil), "k", nil); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newTask(id[1], succeeded, nil))
	if err := s.PutOutputs(ctx(), id[0], []*pcnodev1.OutputManifest{{Name: "out"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTask(ctx(), id[0]); err != nil {
		t.Fatalf("DeleteTask(%q) = %v", id[0], err)
	}
	checks := []struct {
		name string
		err  error
	}{
		{"GetTask", func() error { _, err := s.GetTask(ctx(), id[0]); return err }()},
		{"GetOutputs", func() error { _, err := s.GetOutputs(ctx(), id[0]); return err }()},
		{"DeleteTask again", s.DeleteTask(ctx(), id[0])},
		{"UpdateTask", s.UpdateTask(ctx(), newTask(id[0], running, nil))},
	}
	for _, c := range checks {
		if !errors.Is(c.err, store.ErrNotFound) {
			t.Errorf("%s(%q) after DeleteTask = %v, want %v", c.name, id[0], c.err, store.ErrNotFound)
		}
	}
	all, _, err := s.ListTasks(ctx(), store.ListOptions{})
	if d := diff([]string{id[1]}, taskIDs(all)); err != nil || d != "" {
		t.Errorf("ListTasks() after DeleteTask = %v, %v, want only %q", taskIDs(all), err, id[1])
	}
	done, _, err := s.ListTasks(ctx(), store.ListOptions{States: []pcnodev1.TaskState{succeeded}})
	if d := diff([]string{id[1]}, taskIDs(done)); err != nil || d != "" {
		t.Errorf("ListTasks(SUCCEEDED) after DeleteTask = %v, %v, want only %q", taskIDs(done), err, id[1])
	}
	if got, err := s.DeleteFinishedBefore(ctx(), base.AddDate(1, 0, 0)); err != nil || fmt.Sprint(got) != fmt.Sprint([]string{id[1]}) {
		t.Errorf("DeleteFinishedBefore() after DeleteTask = %v, %v, want only %q", got, err, id[1])
	}
}
