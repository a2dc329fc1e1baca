package storetest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// listTasks is s.ListTasks, checked against s.ListTasksEncoded with the
// same options: the same tasks once decoded, in the same order, the same
// next page token, the same error.
func listTasks(t *testing.T, s store.Store, opts store.ListOptions) ([]*pcnodev1.Task, string, error) {
	t.Helper()
	page, next, err := s.ListTasks(ctx(), opts)
	encoded, encNext, encErr := s.ListTasksEncoded(ctx(), opts)
	if fmt.Sprint(err) != fmt.Sprint(encErr) || (err == nil) != (encErr == nil) {
		t.Errorf("ListTasksEncoded(%+v) = %v, ListTasks = %v: want the same error", opts, encErr, err)
	}
	if encNext != next {
		t.Errorf("ListTasksEncoded(%+v) next page token %q, ListTasks %q", opts, encNext, next)
	}
	if err != nil && encoded != nil {
		t.Errorf("ListTasksEncoded(%+v) = %d tasks and %v, want none with the error", opts, len(encoded), encErr)
	}
	decoded := make([]*pcnodev1.Task, len(encoded))
	for i, b := range encoded {
		decoded[i] = &pcnodev1.Task{}
		if err := proto.Unmarshal(b, decoded[i]); err != nil {
			t.Fatalf("ListTasksEncoded(%+v) task %d: %v", opts, i, err)
		}
	}
	if len(page) > 0 || len(decoded) > 0 {
		if d := diff(page, decoded); d != "" {
			t.Errorf("ListTasksEncoded(%+v) decoded differs from ListTasks (-ListTasks +encoded):\n%s", opts, d)
		}
	}
	return page, next, err
}

// listData stores n tasks, oldest first, with states cycling through all six
// and labels team=a|b (i%2) and kind=x|y|z (i%3), and returns them.
func listData(t *testing.T, s store.Store, n int) []*pcnodev1.Task {
	t.Helper()
	states := []pcnodev1.TaskState{queued, preparing, running, succeeded, failed, cancelled}
	var out []*pcnodev1.Task
	for i, id := range newIDs(n, 0) {
		labels := map[string]string{"team": string(rune('a' + i%2)), "kind": string(rune('x' + i%3))}
		out = append(out, mustCreate(t, s, newTask(id, states[i%len(states)], labels)))
	}
	return out
}

// wantIDs filters tasks as ListTasks should, newest first.
func wantIDs(tasks []*pcnodev1.Task, states []pcnodev1.TaskState, labels map[string]string) []string {
	var out []string
	for _, t := range slices.Backward(tasks) {
		if len(states) > 0 && !slices.Contains(states, t.GetState()) {
			continue
		}
		ok := true
		for k, v := range labels {
			if got, has := t.GetSpec().GetLabels()[k]; !has || got != v {
				ok = false
			}
		}
		if ok {
			out = append(out, t.GetId())
		}
	}
	return out
}

// listAll pages through ListTasks and returns the ids and page sizes.
func listAll(t *testing.T, s store.Store, opts store.ListOptions) (ids []string, pages []int) {
	t.Helper()
	for range 10000 {
		page, next, err := listTasks(t, s, opts)
		if err != nil {
			t.Fatalf("ListTasks(%+v) = %v", opts, err)
		}
		ids = append(ids, taskIDs(page)...)
		pages = append(pages, len(page))
		if next == "" {
			return ids, pages
		}
		opts.PageToken = next
	}
	t.Fatalf("ListTasks(%+v) never returned an empty next page token", opts)
	return nil, nil
}

func testListFilterAndPages(t *testing.T, open Opener) {
	s := open(t)
	data := listData(t, s, 37)
	tests := []struct {
		name   string
		states []pcnodev1.TaskState
		labels map[string]string
	}{
		{"all", nil, nil},
		{"one state", []pcnodev1.TaskState{running}, nil},
		{"two states", []pcnodev1.TaskState{succeeded, queued}, nil},
		{"repeated state", []pcnodev1.TaskState{failed, failed}, nil},
		{"unfinished states", []pcnodev1.TaskState{queued, preparing, running}, nil},
		{"state without tasks", []pcnodev1.TaskState{pcnodev1.TaskState_TASK_STATE_UNSPECIFIED}, nil},
		{"one label", nil, map[string]string{"team": "a"}},
		{"two labels", nil, map[string]string{"team": "b", "kind": "y"}},
		{"label and states", []pcnodev1.TaskState{queued, cancelled}, map[string]string{"kind": "z"}},
		{"label value differs", nil, map[string]string{"team": "c"}},
		{"label absent", nil, map[string]string{"owner": ""}},
	}
	for _, tt := range tests {
		want := wantIDs(data, tt.states, tt.labels)
		for _, size := range []int{1, 4, 6, 100} {
			t.Run(fmt.Sprintf("%s/page %d", tt.name, size), func(t *testing.T) {
				opts := store.ListOptions{States: tt.states, Labels: tt.labels, PageSize: size}
				got, pages := listAll(t, s, opts)
				if d := diff(want, got); d != "" {
					t.Errorf("ListTasks(%+v) over all pages diff (-want +got):\n%s", opts, d)
				}
				// Every page but the last is full, and the last is not empty
				// unless nothing matches at all.
				for i, n := range pages {
					last := i == len(pages)-1
					if (!last && n != size) || (last && n == 0 && len(want) > 0) || n > size {
						t.Errorf("ListTasks(%+v) page sizes = %v, want full pages then a non-empty last", opts, pages)
						break
					}
				}
			})
		}
	}
}

func testListPageSize(t *testing.T, open Opener) {
	s := open(t)
	listData(t, s, store.MaxPageSize+5)
	tests := []struct {
		size, want int
		wantNext   bool
	}{
		{0, store.DefaultPageSize, true},
		{1, 1, true},
		{store.MaxPageSize, store.MaxPageSize, true},
		{store.MaxPageSize + 1, store.MaxPageSize, true},
		{1 << 30, store.MaxPageSize, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			page, next, err := listTasks(t, s, store.ListOptions{PageSize: tt.size})
			if err != nil || len(page) != tt.want || (next != "") != tt.wantNext {
				t.Errorf("ListTasks(PageSize %d) = %d tasks, next %q, %v, want %d tasks, next %v", tt.size, len(page), next, err, tt.want, tt.wantNext)
			}
		})
	}
	// A page that ends exactly at the last task has no next token.
	page, next, err := listTasks(t, s, store.ListOptions{PageSize: store.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	page2, next2, err := listTasks(t, s, store.ListOptions{PageSize: 5, PageToken: next})
	if err != nil || len(page2) != 5 || next2 != "" {
		t.Errorf("ListTasks(last 5 of %d) = %d tasks, next %q, %v, want 5, no next", len(page)+5, len(page2), next2, err)
	}
}

func testListBadOptions(t *testing.T, open Opener) {
	s := open(t)
	listData(t, s, 5)
	runningOnly := store.ListOptions{States: []pcnodev1.TaskState{running}, PageSize: 1}
	_, token, err := listTasks(t, s, store.ListOptions{PageSize: 1})
	if err != nil || token == "" {
		t.Fatalf("ListTasks(PageSize 1) = %q, %v, want a next token", token, err)
	}
	_, labelToken, err := listTasks(t, s, store.ListOptions{PageSize: 1, Labels: map[string]string{"kind": "x"}})
	if err != nil || labelToken == "" {
		t.Fatalf("ListTasks(kind=x, PageSize 1) = %q, %v, want a next token", labelToken, err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Fatalf("page token %q is not unpadded base64url: %v", token, err)
	}
	flipped := slices.Clone(raw)
	flipped[len(flipped)-1] = '!'
	tests := []struct {
		name string
		opts store.ListOptions
		want error
	}{
		{"negative page size", store.ListOptions{PageSize: -1}, store.ErrInvalidArgument},
		{"not base64", store.ListOptions{PageToken: "%%%"}, store.ErrInvalidPageToken},
		{"padded base64", store.ListOptions{PageToken: token + "="}, store.ErrInvalidPageToken},
		{"truncated", store.ListOptions{PageToken: token[:len(token)-2]}, store.ErrInvalidPageToken},
		{"bad id inside", store.ListOptions{PageToken: base64.RawURLEncoding.EncodeToString(flipped)}, store.ErrInvalidPageToken},
		{"plain id", store.ListOptions{PageToken: newIDs(1, 0)[0]}, store.ErrInvalidPageToken},
		{"token of other states", store.ListOptions{States: runningOnly.States, PageToken: token}, store.ErrInvalidPageToken},
		{"token of other labels", store.ListOptions{PageToken: labelToken}, store.ErrInvalidPageToken},
		{"token of labels, other value", store.ListOptions{Labels: map[string]string{"kind": "y"}, PageToken: labelToken}, store.ErrInvalidPageToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, next, err := listTasks(t, s, tt.opts)
			if !errors.Is(err, tt.want) || page != nil || next != "" {
				t.Errorf("ListTasks(%+v) = %d tasks, %q, %v, want none, %v", tt.opts, len(page), next, err, tt.want)
			}
		})
	}
	// The same filters in another order or with a different page size take
	// the token.
	_, _, err1 := listTasks(t, s, store.ListOptions{PageSize: 3, PageToken: token})
	_, _, err2 := listTasks(t, s, store.ListOptions{Labels: map[string]string{"kind": "x"}, PageToken: labelToken})
	two := store.ListOptions{States: []pcnodev1.TaskState{running, queued}, PageSize: 1}
	_, twoToken, _ := listTasks(t, s, two)
	_, _, err3 := listTasks(t, s, store.ListOptions{States: []pcnodev1.TaskState{queued, running, queued}, PageToken: twoToken})
	for i, err := range []error{err1, err2, err3} {
		if err != nil {
			t.Errorf("ListTasks(same filters %d) with token = %v, want nil", i+1, err)
		}
	}
}

// ListTasks pages stay consistent while tasks come and go: newer tasks do
// not enter later pages, deleted ones leave, nothing repeats.
func testListWhileChanging(t *testing.T, open Opener) {
	s := open(t)
	data := listData(t, s, 10)
	first, next, err := listTasks(t, s, store.ListOptions{PageSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	// The last task listed and the next one go away; a newer task arrives.
	last := first[len(first)-1].GetId()
	if err := s.DeleteTask(ctx(), last); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTask(ctx(), data[5].GetId()); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, newTask(newIDs(1, 1e9)[0], queued, nil))
	rest, _ := listAll(t, s, store.ListOptions{PageSize: 4, PageToken: next})
	want := []string{data[4].GetId(), data[3].GetId(), data[2].GetId(), data[1].GetId(), data[0].GetId()}
	if d := diff(want, rest); d != "" {
		t.Errorf("ListTasks pages after changes diff (-want +got):\n%s", d)
	}
	// Changing a listed task's state moves it between filtered listings.
	if _, err := s.ModifyTask(ctx(), data[0].GetId(), func(t *pcnodev1.Task) error { t.State = cancelled; return nil }); err != nil {
		t.Fatal(err)
	}
	queuedNow, _ := listAll(t, s, store.ListOptions{States: []pcnodev1.TaskState{queued}})
	cancelledNow, _ := listAll(t, s, store.ListOptions{States: []pcnodev1.TaskState{cancelled}})
	if slices.Contains(queuedNow, data[0].GetId()) || !slices.Contains(cancelledNow, data[0].GetId()) {
		t.Errorf("after QUEUED→CANCELLED of %q: queued %v, cancelled %v", data[0].GetId(), queuedNow, cancelledNow)
	}
}
