package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// labelTask is a task with labels in state s, finished at finish when
// final.
func labelTask(s pcnodev1.TaskState, labels map[string]string, finish time.Time) *pcnodev1.Task {
	t := &pcnodev1.Task{
		Id:         store.NewID(finish),
		State:      s,
		Spec:       &pcnodev1.TaskSpec{Name: "labelled", Image: "img", Labels: labels},
		CreateTime: timestamppb.New(finish),
	}
	if s == pcnodev1.TaskState_TASK_STATE_SUCCEEDED || s == pcnodev1.TaskState_TASK_STATE_FAILED {
		t.FinishTime = timestamppb.New(finish)
	}
	return t
}

// listIDs pages through ListTasks with pages of size and returns the ids.
func listIDs(t *testing.T, db store.Store, opts store.ListOptions, size int) []string {
	t.Helper()
	opts.PageSize = size
	var ids []string
	for range 100_000 {
		page, next, err := db.ListTasks(context.Background(), opts)
		if err != nil {
			t.Fatalf("ListTasks(%+v) = %v", opts, err)
		}
		for _, p := range page {
			ids = append(ids, p.GetId())
		}
		if next == "" {
			return ids
		}
		opts.PageToken = next
	}
	t.Fatalf("ListTasks(%+v) never ended", opts)
	return nil
}

// Listing by labels and states through the label index gives exactly what
// filtering every task gives, for random data, filters and page sizes; the
// file checks (index against records) at cleanup.
func TestListLabelIndexRandom(t *testing.T) {
	ctx := context.Background()
	db, _ := openBolt(t)
	rng := rand.New(rand.NewPCG(11, 11))
	states := []pcnodev1.TaskState{
		pcnodev1.TaskState_TASK_STATE_QUEUED, pcnodev1.TaskState_TASK_STATE_RUNNING,
		pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskState_TASK_STATE_FAILED,
	}
	label := func() map[string]string {
		l := map[string]string{}
		for _, k := range []string{"a", "b", "c"} {
			if rng.IntN(4) > 0 {
				l[k] = fmt.Sprint(rng.IntN(3))
			}
		}
		return l
	}
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var all []*pcnodev1.Task
	var bulk []*pcnodev1.Task
	for i := range 400 {
		task := labelTask(states[rng.IntN(len(states))], label(), start.Add(time.Duration(i)*time.Minute))
		if i%2 == 0 {
			bulk = append(bulk, task) // half through CreateTasks, half one by one
			continue
		}
		if _, _, err := db.CreateTask(ctx, task, "", nil); err != nil {
			t.Fatal(err)
		}
		all = append(all, task)
	}
	if err := db.CreateTasks(ctx, bulk); err != nil {
		t.Fatal(err)
	}
	all = append(all, bulk...)
	// Change the labels of some and the state of others, delete a few.
	for i, task := range all {
		switch i % 10 {
		case 0:
			got, err := db.ModifyTask(ctx, task.GetId(), func(t *pcnodev1.Task) error { t.Spec.Labels = label(); return nil })
			if err != nil {
				t.Fatal(err)
			}
			all[i] = got
		case 1:
			got, err := db.ModifyTask(ctx, task.GetId(), func(t *pcnodev1.Task) error { t.State = states[rng.IntN(len(states))]; return nil })
			if err != nil {
				t.Fatal(err)
			}
			all[i] = got
		case 2:
			if err := db.DeleteTask(ctx, task.GetId()); err != nil {
				t.Fatal(err)
			}
			all[i] = nil
		}
	}
	all = slices.DeleteFunc(all, func(t *pcnodev1.Task) bool { return t == nil })
	slices.SortFunc(all, func(a, b *pcnodev1.Task) int { return strings.Compare(b.GetId(), a.GetId()) })
	for range 60 {
		opts := store.ListOptions{Labels: label()}
		if rng.IntN(2) == 0 {
			opts.States = []pcnodev1.TaskState{states[rng.IntN(len(states))], states[rng.IntN(len(states))]}
		}
		var want []string
		for _, task := range all {
			ok := len(opts.States) == 0 || slices.Contains(opts.States, task.GetState())
			for k, v := range opts.Labels {
				ok = ok && task.GetSpec().GetLabels()[k] == v
			}
			if ok {
				want = append(want, task.GetId())
			}
		}
		size := 1 + rng.IntN(30)
		if got := listIDs(t, db, opts, size); !slices.Equal(got, want) {
			t.Fatalf("ListTasks(%+v, pages of %d) = %d ids, want %d:\ngot  %v\nwant %v", opts, size, len(got), len(want), got, want)
		}
	}
}

// Retention removes the label entries of the tasks it deletes (the file
// check at cleanup finds none left over).
func TestLabelIndexRetention(t *testing.T) {
	ctx := context.Background()
	db, _ := openBolt(t)
	old := time.Now().Add(-48 * time.Hour)
	var tasks []*pcnodev1.Task
	for i := range 50 {
		tasks = append(tasks, labelTask(pcnodev1.TaskState_TASK_STATE_SUCCEEDED, map[string]string{"dag": fmt.Sprint(i % 5)}, old.Add(time.Duration(i)*time.Second)))
	}
	keep := labelTask(pcnodev1.TaskState_TASK_STATE_SUCCEEDED, map[string]string{"dag": "0"}, time.Now())
	if err := db.CreateTasks(ctx, append(tasks, keep)); err != nil {
		t.Fatal(err)
	}
	ids, err := db.DeleteFinishedBefore(ctx, time.Now().Add(-time.Hour))
	if err != nil || len(ids) != 50 {
		t.Fatalf("DeleteFinishedBefore = %d ids, %v, want 50", len(ids), err)
	}
	if got := listIDs(t, db, store.ListOptions{Labels: map[string]string{"dag": "0"}}, 10); !slices.Equal(got, []string{keep.GetId()}) {
		t.Errorf("ListTasks(dag=0) after retention = %v, want [%s]", got, keep.GetId())
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("Check() = %v", err)
	}
}

// A label too long to index is refused, naming the label, and nothing is
// written: neither by CreateTask, nor by CreateTasks (for any of its
// tasks), nor by an update.
func TestLabelTooLong(t *testing.T) {
	ctx := context.Background()
	db, _ := openBolt(t)
	long := map[string]string{"k": strings.Repeat("v", 20<<10)}
	now := time.Now()
	if _, _, err := db.CreateTask(ctx, labelTask(pcnodev1.TaskState_TASK_STATE_QUEUED, long, now), "", nil); !errors.Is(err, store.ErrInvalidArgument) || !strings.Contains(err.Error(), `label "k"`) {
		t.Errorf("CreateTask(label of 20 KiB) = %v, want ErrInvalidArgument naming label k", err)
	}
	good := labelTask(pcnodev1.TaskState_TASK_STATE_QUEUED, map[string]string{"k": "v"}, now)
	if err := db.CreateTasks(ctx, []*pcnodev1.Task{good, labelTask(pcnodev1.TaskState_TASK_STATE_QUEUED, long, now)}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("CreateTasks(one label of 20 KiB) = %v, want ErrInvalidArgument", err)
	}
	if page, _, err := db.ListTasks(ctx, store.ListOptions{}); err != nil || len(page) != 0 {
		t.Errorf("ListTasks after refused creations = %d tasks, %v, want none", len(page), err)
	}
	if _, _, err := db.CreateTask(ctx, good, "", nil); err != nil {
		t.Fatal(err)
	}
	_, err := db.ModifyTask(ctx, good.GetId(), func(t *pcnodev1.Task) error { t.Spec.Labels = long; return nil })
	if !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("ModifyTask(label of 20 KiB) = %v, want ErrInvalidArgument", err)
	}
	if got := listIDs(t, db, store.ListOptions{Labels: map[string]string{"k": "v"}}, 10); !slices.Equal(got, []string{good.GetId()}) {
		t.Errorf("ListTasks(k=v) after a refused update = %v, want [%s]", got, good.GetId())
	}
}

// CreateTasks refuses, writing nothing, a task already stored, one given
// twice, one with an idempotency key, and more than MaxBulkTasks.
func TestCreateTasksRefused(t *testing.T) {
	ctx := context.Background()
	db, _ := openBolt(t)
	now := time.Now()
	stored := labelTask(pcnodev1.TaskState_TASK_STATE_QUEUED, nil, now)
	if _, _, err := db.CreateTask(ctx, stored, "", nil); err != nil {
		t.Fatal(err)
	}
	fresh := labelTask(pcnodev1.TaskState_TASK_STATE_QUEUED, nil, now)
	keyed := labelTask(pcnodev1.TaskState_TASK_STATE_QUEUED, nil, now)
	keyed.IdempotencyKey = "k"
	tests := []struct {
		name  string
		tasks []*pcnodev1.Task
		want  error
	}{
		{"stored", []*pcnodev1.Task{fresh, stored}, store.ErrExists},
		{"twice", []*pcnodev1.Task{fresh, fresh}, store.ErrExists},
		{"idempotency key", []*pcnodev1.Task{fresh, keyed}, store.ErrInvalidArgument},
		{"bad id", []*pcnodev1.Task{fresh, {Id: "nope"}}, store.ErrInvalidArgument},
		{"too many", make([]*pcnodev1.Task, store.MaxBulkTasks+1), store.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := db.CreateTasks(ctx, tt.tasks); !errors.Is(err, tt.want) {
				t.Errorf("CreateTasks(%s) = %v, want %v", tt.name, err, tt.want)
			}
			if _, err := db.GetTask(ctx, fresh.GetId()); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetTask(%s) after a refused CreateTasks = %v, want ErrNotFound", fresh.GetId(), err)
			}
		})
	}
}
