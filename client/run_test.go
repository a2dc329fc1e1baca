package client

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func runEvent(ev *pcnodev1.TaskEvent) *pcnodev1.RunTaskResponse {
	return &pcnodev1.RunTaskResponse{Event: ev}
}

func stateChange(state pcnodev1.TaskState) *pcnodev1.TaskEvent {
	return &pcnodev1.TaskEvent{TaskId: "t1", Event: &pcnodev1.TaskEvent_StateChange{StateChange: &pcnodev1.Task{Id: "t1", State: state}}}
}

// runServer answers RunTask by the task id asked: "ok" runs to SUCCEEDED,
// "cut" ends before the end, "denied" is refused, "long" sends until the
// caller leaves and reports that on left.
func runServer(t *testing.T, left chan<- error) *Client {
	f := &fakeTasks{}
	f.runTask = func(req *pcnodev1.RunTaskRequest, s grpc.ServerStreamingServer[pcnodev1.RunTaskResponse]) error {
		switch req.GetTaskId() {
		case "denied":
			return status.Error(codes.PermissionDenied, "RunTask needs role submitter")
		case "long":
			for {
				if err := s.Send(runEvent(stateChange(pcnodev1.TaskState_TASK_STATE_RUNNING))); err != nil {
					left <- err
					return err
				}
				select {
				case <-s.Context().Done():
					left <- s.Context().Err()
					return s.Context().Err()
				case <-time.After(time.Millisecond):
				}
			}
		}
		s.Send(runEvent(stateChange(pcnodev1.TaskState_TASK_STATE_QUEUED)))
		s.Send(runEvent(stateChange(pcnodev1.TaskState_TASK_STATE_RUNNING)))
		s.Send(runEvent(&pcnodev1.TaskEvent{TaskId: "t1", Event: &pcnodev1.TaskEvent_Log{Log: &pcnodev1.LogEntry{Sequence: 1, Data: []byte("hi\n")}}}))
		if req.GetTaskId() == "cut" {
			return nil
		}
		s.Send(runEvent(stateChange(pcnodev1.TaskState_TASK_STATE_SUCCEEDED)))
		return nil
	}
	return dial(t, serveUnix(t, f))
}

func target(id string) *pcnodev1.RunTaskRequest {
	return &pcnodev1.RunTaskRequest{Target: &pcnodev1.RunTaskRequest_TaskId{TaskId: id}, IncludeLogs: true}
}

// TestRunEvents iterates over a run: every event in order, then the end;
// a stream cut before the end and a refused stream each yield one error.
func TestRunEvents(t *testing.T) {
	c := runServer(t, nil)
	kinds := func(id string) ([]string, []error) {
		var got []string
		var errs []error
		for ev, err := range c.RunEvents(t.Context(), target(id)) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if s := ev.GetStateChange(); s != nil {
				got = append(got, s.GetState().String())
			} else if l := ev.GetLog(); l != nil {
				got = append(got, "log "+string(l.GetData()))
			}
		}
		return got, errs
	}
	got, errs := kinds("ok")
	want := []string{"TASK_STATE_QUEUED", "TASK_STATE_RUNNING", "log hi\n", "TASK_STATE_SUCCEEDED"}
	if diff := cmp.Diff(want, got); diff != "" || len(errs) != 0 {
		t.Errorf("RunEvents(ok) = %v, errors %v; want (-want +got):\n%s", got, errs, diff)
	}
	got, errs = kinds("cut")
	if len(got) != 3 || len(errs) != 1 || !errors.Is(errs[0], io.ErrUnexpectedEOF) {
		t.Errorf("RunEvents(cut) = %v, errors %v; want 3 events then io.ErrUnexpectedEOF", got, errs)
	}
	got, errs = kinds("denied")
	if len(got) != 0 || len(errs) != 1 || !errors.Is(errs[0], ErrPermissionDenied) {
		t.Errorf("RunEvents(denied) = %v, errors %v; want only ErrPermissionDenied", got, errs)
	}

	task, err := c.Run(t.Context(), target("ok"), nil)
	if err != nil || task.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
		t.Errorf("Run(ok) = %v, %v; want the SUCCEEDED task", task, err)
	}
	task, err = c.Run(t.Context(), target("cut"), nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) || task.GetState() != pcnodev1.TaskState_TASK_STATE_RUNNING {
		t.Errorf("Run(cut) = %v, %v; want the RUNNING task and io.ErrUnexpectedEOF", task, err)
	}
}

// TestRunEventsBreak: leaving the loop early cancels the stream on the server.
func TestRunEventsBreak(t *testing.T) {
	left := make(chan error, 1)
	c := runServer(t, left)
	n := 0
	for _, err := range c.RunEvents(t.Context(), target("long")) {
		if err != nil {
			t.Fatalf("RunEvents(long) = %v", err)
		}
		if n++; n == 3 {
			break
		}
	}
	select {
	case err := <-left:
		if status.Code(err) != codes.Canceled && !errors.Is(err, context.Canceled) {
			t.Errorf("server stream ended with %v, want it cancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server stream still runs 10 s after the loop was left")
	}
}
