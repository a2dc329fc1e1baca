package client

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestRetriedMethods says which methods are retried on Unavailable: those
// marked NO_SIDE_EFFECTS in the protos, no others. A change to the protos'
// idempotency levels shows up here.
func TestRetriedMethods(t *testing.T) {
	want := []string{
		"/pcnode.v1.ImageService/GetProcessingContainer",
		"/pcnode.v1.ImageService/ListImages",
		"/pcnode.v1.NodeService/GetNode",
		"/pcnode.v1.NodeService/WatchNode",
		"/pcnode.v1.TaskService/GetTask",
		"/pcnode.v1.TaskService/GetTaskOutputs",
		"/pcnode.v1.TaskService/ListTasks",
		"/pcnode.v1.TaskService/ResolveTask",
		"/pcnode.v1.TaskService/StreamLogs",
		"/pcnode.v1.TaskService/WatchTasks",
	}
	if diff := cmp.Diff(want, RetriedMethods()); diff != "" {
		t.Errorf("RetriedMethods() (-want +got):\n%s", diff)
	}
	sc, err := retryServiceConfig(defaultRetryAttempts, defaultRetryInitial, defaultRetryMaxBackoff)
	if err != nil {
		t.Fatal(err)
	}
	var parsed serviceConfig
	if err := json.Unmarshal([]byte(sc), &parsed); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range parsed.MethodConfig[0].Name {
		names = append(names, "/"+n.Service+"/"+n.Method)
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("service config names (-want +got):\n%s", diff)
	}
	if p := parsed.MethodConfig[0].RetryPolicy; p.MaxAttempts != 4 || p.InitialBackoff != "0.100s" || cmp.Diff([]string{"UNAVAILABLE"}, p.RetryableStatusCodes) != "" {
		t.Errorf("retry policy = %+v, want 4 attempts from 0.1s on UNAVAILABLE only", p)
	}
}

// TestRetryUnavailable counts calls on the server: GetTask (no side
// effects) is retried through Unavailable, SubmitTask is not.
func TestRetryUnavailable(t *testing.T) {
	f := &fakeTasks{}
	f.getTask = func(_ context.Context, req *pcnodev1.GetTaskRequest) (*pcnodev1.GetTaskResponse, error) {
		if f.getCalls.Load() <= 2 {
			return nil, status.Error(codes.Unavailable, "shutting down")
		}
		return &pcnodev1.GetTaskResponse{Task: &pcnodev1.Task{Id: req.GetTaskId()}}, nil
	}
	f.submitTask = func(context.Context, *pcnodev1.SubmitTaskRequest) (*pcnodev1.SubmitTaskResponse, error) {
		return nil, status.Error(codes.Unavailable, "shutting down")
	}
	c := dial(t, serveUnix(t, f), WithRetryPolicy(4, 10*time.Millisecond, 50*time.Millisecond))
	resp, err := c.Tasks.GetTask(t.Context(), &pcnodev1.GetTaskRequest{TaskId: "t1"})
	if err != nil || resp.GetTask().GetId() != "t1" {
		t.Errorf("GetTask() = %v, %v; want it to succeed on the third attempt", resp, err)
	}
	if n := f.getCalls.Load(); n != 3 {
		t.Errorf("GetTask reached the server %d times, want 3 (two Unavailable, then OK)", n)
	}
	if _, err := c.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("SubmitTask() = %v, want ErrUnavailable", err)
	}
	if n := f.submitCalls.Load(); n != 1 {
		t.Errorf("SubmitTask reached the server %d times, want 1 (it has side effects)", n)
	}

	// Every attempt used up: the last Unavailable is returned.
	f.getCalls.Store(-10)
	if _, err := c.Tasks.GetTask(t.Context(), &pcnodev1.GetTaskRequest{TaskId: "t1"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("GetTask(always Unavailable) = %v, want ErrUnavailable", err)
	}
	if n := f.getCalls.Load(); n != -6 {
		t.Errorf("GetTask(always Unavailable) reached the server %d times, want 4", n+10)
	}

	// WithoutRetries: once.
	f.getCalls.Store(0)
	c2 := dial(t, serveUnix(t, f), WithoutRetries())
	if _, err := c2.Tasks.GetTask(t.Context(), &pcnodev1.GetTaskRequest{TaskId: "t1"}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("GetTask(WithoutRetries) = %v, want ErrUnavailable", err)
	}
	if n := f.getCalls.Load(); n != 1 {
		t.Errorf("GetTask(WithoutRetries) reached the server %d times, want 1", n)
	}
}
