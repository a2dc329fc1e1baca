package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// ListTasks sends the stored encodings of the tasks (no decode in the
// daemon): through the real API, every page holds exactly the tasks its
// filters select, newest first, each equal to what GetTask returns, and
// the page tokens walk the whole listing. The tasks are a real run (its
// record as the lifecycle wrote it) and a few hundred written into the
// file, with varied states, labels (a long one, one with non-ASCII
// runes) and fields.
func TestIntegrationListTasksEncoded(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	img := e2eTestImage(t, d).GetName()
	spec := e2eSpec(img, "sleep", "DURATION=0")
	spec.Labels = map[string]string{"project": "demo", "run": "real"}
	real, _ := d.Run(t, spec)

	d.Stop(t)
	db, err := store.Open(filepath.Join(d.StateDir, "pcnode.db"), store.Options{History: d.Config.Tasks.WatchHistory})
	if err != nil {
		t.Fatal(err)
	}
	states := []pcnodev1.TaskState{
		pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskState_TASK_STATE_CANCELLED,
	}
	first := time.Now().Add(-time.Hour)
	var filled []*pcnodev1.Task
	for i := range 250 {
		at := first.Add(time.Duration(i) * time.Second)
		labels := map[string]string{"project": "demo", "team": fmt.Sprint("t", i%4)}
		switch i % 50 {
		case 7:
			labels["note"] = strings.Repeat("λ", 300)
		case 8:
			labels["grüße"] = "ünïcode ✓"
		}
		filled = append(filled, &pcnodev1.Task{
			Id: store.NewID(at), State: states[i%len(states)], ExitCode: int32(i % 3),
			Message: fmt.Sprintf("finished %d", i), SubmittedBy: "uid:0",
			Spec: &pcnodev1.TaskSpec{
				Name: fmt.Sprint("filled ", i), Image: img, Labels: labels,
				Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "sleep"},
				Env:      []*pcnodev1.EnvVar{{Name: "I", Value: fmt.Sprint(i)}},
			},
			Warnings:   []string{"w"},
			CreateTime: timestamppb.New(at), FinishTime: timestamppb.New(at.Add(time.Second)),
		})
	}
	if err := db.CreateTasks(t.Context(), filled); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	d.Restart(t)

	all := append(slices.Clone(filled), real)
	slices.SortFunc(all, func(a, b *pcnodev1.Task) int { return strings.Compare(b.GetId(), a.GetId()) })
	type query struct {
		states []pcnodev1.TaskState
		labels map[string]string
	}
	for _, q := range []query{
		{},
		{labels: map[string]string{"project": "demo"}},
		{labels: map[string]string{"run": "real"}},
		{labels: map[string]string{"grüße": "ünïcode ✓"}},
		{labels: map[string]string{"team": "t1", "project": "demo"}},
		{states: []pcnodev1.TaskState{pcnodev1.TaskState_TASK_STATE_FAILED}},
		{states: []pcnodev1.TaskState{real.GetState(), pcnodev1.TaskState_TASK_STATE_CANCELLED}, labels: map[string]string{"team": "t2"}},
		{labels: map[string]string{"team": "none"}},
	} {
		var want []string
		for _, task := range all {
			if len(q.states) > 0 && !slices.Contains(q.states, task.GetState()) {
				continue
			}
			ok := true
			for k, v := range q.labels {
				if got, has := task.GetSpec().GetLabels()[k]; !has || got != v {
					ok = false
				}
			}
			if ok {
				want = append(want, task.GetId())
			}
		}
		for _, size := range []int32{7, 1000} {
			t.Run(fmt.Sprintf("%v %v page %d", q.states, q.labels, size), func(t *testing.T) {
				req := &pcnodev1.ListTasksRequest{States: q.states, Labels: q.labels, PageSize: size}
				var got []string
				for page := 0; ; page++ {
					if page > len(all) {
						t.Fatalf("ListTasks: more pages than tasks")
					}
					resp, err := d.Client.Tasks.ListTasks(t.Context(), req)
					if err != nil {
						t.Fatalf("ListTasks(%v) = %v", req, client.FromError(err))
					}
					if n := len(resp.GetTasks()); n > int(size) || (n < int(size) && resp.GetNextPageToken() != "") {
						t.Fatalf("ListTasks(%v) = %d tasks with next token %q, want %d per page but the last", req, n, resp.GetNextPageToken(), size)
					}
					for _, task := range resp.GetTasks() {
						got = append(got, task.GetId())
						if diff := cmp.Diff(d.GetTask(t, task.GetId()), task, protocmp.Transform()); diff != "" {
							t.Errorf("ListTasks task %s differs from GetTask's (-GetTask +ListTasks):\n%s", task.GetId(), diff)
						}
					}
					if resp.GetNextPageToken() == "" {
						break
					}
					req.PageToken = resp.GetNextPageToken()
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("ListTasks(%v %v) ids over all pages (-want +got):\n%s", q.states, q.labels, diff)
				}
			})
		}
	}
}
