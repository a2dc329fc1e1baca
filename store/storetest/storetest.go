package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// Opener returns a new, empty store for one test. It registers its own
// cleanup (closing, consistency checks) on t. The suite may Close the store
// itself.
type Opener func(t *testing.T) store.Store

// Run runs the suite against the stores open returns.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"CreateInvalid", testCreateInvalid},
		{"Idempotency", testIdempotency},
		{"UpdateTask", testUpdateTask},
		{"ModifyTask", testModifyTask},
		{"ListFilterAndPages", testListFilterAndPages},
		{"ListPageSize", testListPageSize},
		{"ListBadOptions", testListBadOptions},
		{"ListWhileChanging", testListWhileChanging},
		{"DeleteTask", testDeleteTask},
		{"Outputs", testOutputs},
		{"OutputsPages", testOutputsPages},
		{"ListPageBytes", testListPageBytes},
		{"Unfinished", testUnfinished},
		{"DeleteFinishedBefore", testDeleteFinishedBefore},
		{"FinishedSince", testFinishedSince},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Closed", testClosed},
		{"CanceledContext", testCanceledContext},
		{"NodeState", testNodeState},
		{"NodeStateInvalid", testNodeStateInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open) })
	}
}

// base is the time the suite's tasks are created around.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newIDs returns n fresh ids, strictly increasing, one millisecond apart from
// after base+offset.
func newIDs(n int, offset time.Duration) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = store.NewID(base.Add(offset + time.Duration(i)*time.Millisecond))
	}
	return out
}

// newTask returns a task with id in state with labels.
func newTask(id string, state pcnodev1.TaskState, labels map[string]string) *pcnodev1.Task {
	return &pcnodev1.Task{
		Id:    id,
		State: state,
		Spec: &pcnodev1.TaskSpec{
			Name:   "task " + id,
			Image:  "registry.example.org/dummy:1",
			Labels: labels,
		},
		CreateTime: timestamppb.New(base),
	}
}

// mustCreate creates task with no idempotency key.
func mustCreate(t *testing.T, s store.Store, task *pcnodev1.Task) *pcnodev1.Task {
	t.Helper()
	got, existing, err := s.CreateTask(context.Background(), task, "", nil)
	if err != nil || existing {
		t.Fatalf("CreateTask(%q) = _, %v, %v, want _, false, nil", task.GetId(), existing, err)
	}
	return got
}

// taskIDs lists the ids of tasks.
func taskIDs(tasks []*pcnodev1.Task) []string {
	var out []string
	for _, t := range tasks {
		out = append(out, t.GetId())
	}
	return out
}

// diff compares protos.
func diff(want, got any) string { return cmp.Diff(want, got, protocmp.Transform()) }

// ctx is the context of the suite's calls.
func ctx() context.Context { return context.Background() }

const (
	queued    = pcnodev1.TaskState_TASK_STATE_QUEUED
	preparing = pcnodev1.TaskState_TASK_STATE_PREPARING
	running   = pcnodev1.TaskState_TASK_STATE_RUNNING
	succeeded = pcnodev1.TaskState_TASK_STATE_SUCCEEDED
	failed    = pcnodev1.TaskState_TASK_STATE_FAILED
	cancelled = pcnodev1.TaskState_TASK_STATE_CANCELLED
)
