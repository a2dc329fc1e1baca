package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// A grace period out of bounds is refused with one grace_period problem,
// and the node is never asked to cancel.
func TestCancelTaskValidatesGrace(t *testing.T) {
	id := store.NewID(time.Now())
	for _, tc := range []struct {
		name  string
		grace *durationpb.Duration
		want  string
	}{
		{"negative", durationpb.New(-time.Second), "must not be negative"},
		{"absurd", durationpb.New(25 * time.Hour), "must be at most 24h0m0s"},
		{"malformed", &durationpb.Duration{Seconds: 1, Nanos: -5}, "different signs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &fakeNode{}
			s := &taskService{d: n}
			_, err := s.CancelTask(context.Background(), &pcnodev1.CancelTaskRequest{TaskId: id, GracePeriod: tc.grace})
			ps, ok := daemon.InvalidProblems(err)
			if !ok || len(ps) != 1 {
				t.Fatalf("CancelTask(grace %v) = %v, want INVALID_ARGUMENT with one problem", tc.grace, err)
			}
			if p := ps[0]; p.GetField() != "grace_period" || !strings.Contains(p.GetDescription(), tc.want) {
				t.Errorf("CancelTask(grace %v) problem = %s: %s, want grace_period: ...%s...", tc.grace, p.GetField(), p.GetDescription(), tc.want)
			}
			if len(n.calls) != 0 {
				t.Errorf("CancelTask(grace %v) called the node: %v, want no call", tc.grace, n.calls)
			}
		})
	}
}

// ListTasks sends the node's encoded tasks as they are: the response, as
// marshalled for the wire, decodes to those tasks, in their order, and the
// next page token; an empty page is an empty response.
func TestListTasksSendsEncodedTasks(t *testing.T) {
	var tasks []*pcnodev1.Task
	for i := range 3 {
		tasks = append(tasks, &pcnodev1.Task{
			Id:    store.NewID(time.Unix(int64(1000-i), 0)),
			State: pcnodev1.TaskState_TASK_STATE_SUCCEEDED,
			Spec: &pcnodev1.TaskSpec{
				Name: "t", Image: "example.org/x:1",
				Labels: map[string]string{"dag": "run-1", "i": strings.Repeat("x", i*200)},
			},
			FinishTime: timestamppb.New(time.Unix(int64(2000-i), 5)),
			Warnings:   []string{"w"},
		})
	}
	for _, tc := range []struct {
		name  string
		tasks []*pcnodev1.Task
		next  string
	}{
		{"page", tasks, "tok"},
		{"last page", tasks[:1], ""},
		{"empty", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &fakeNode{next: tc.next}
			for _, task := range tc.tasks {
				b, err := proto.Marshal(task)
				if err != nil {
					t.Fatal(err)
				}
				n.encoded = append(n.encoded, b)
			}
			s := &taskService{d: n}
			resp, err := s.ListTasks(context.Background(), &pcnodev1.ListTasksRequest{PageSize: 10})
			if err != nil {
				t.Fatalf("ListTasks = %v", err)
			}
			wire, err := proto.Marshal(resp)
			if err != nil {
				t.Fatal(err)
			}
			got := &pcnodev1.ListTasksResponse{}
			if err := proto.Unmarshal(wire, got); err != nil {
				t.Fatalf("unmarshal the response: %v", err)
			}
			want := &pcnodev1.ListTasksResponse{Tasks: tc.tasks, NextPageToken: tc.next}
			if d := cmp.Diff(want, got, protocmp.Transform()); d != "" {
				t.Errorf("ListTasks response on the wire (-want +got):\n%s", d)
			}
			if len(got.ProtoReflect().GetUnknown()) != 0 {
				t.Errorf("ListTasks response decodes with unknown fields %x", got.ProtoReflect().GetUnknown())
			}
			if s, w := proto.Size(resp), proto.Size(want); s != w {
				t.Errorf("ListTasks response size %d, want %d (as with tasks set)", s, w)
			}
		})
	}
}
