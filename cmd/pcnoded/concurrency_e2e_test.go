package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationConcurrencyCap submits 100 tasks at once over one
// SubmitTasks stream to a node configured for 2 concurrent tasks: every
// task succeeds and the recorded start and finish times never overlap more
// than 2 deep.
func TestIntegrationConcurrencyCap(t *testing.T) {
	const (
		n       = 100
		maxConc = 2
	)
	d := daemontest.Start(t, daemontest.Options{Configure: func(c *config.Config) {
		c.Resources.MaxConcurrent = maxConc
	}})
	img := e2eTestImage(t, d).GetName()
	labels := map[string]string{"e2e": "concurrency"}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	stream, err := d.Client.Tasks.SubmitTasks(ctx)
	if err != nil {
		t.Fatalf("SubmitTasks() = %v", client.FromError(err))
	}
	sendErr := make(chan error, 1)
	go func() {
		for i := range n {
			spec := e2eSpec(img, "sleep", "DURATION=0.1s")
			spec.Name = fmt.Sprintf("cap-%03d", i)
			spec.Labels = labels
			if err := stream.Send(&pcnodev1.SubmitTasksRequest{Submit: &pcnodev1.SubmitTaskRequest{Spec: spec}}); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- stream.CloseSend()
	}()
	ids := make([]string, 0, n)
	for i := 0; ; i++ {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SubmitTasks Recv after %d answers = %v", i, client.FromError(err))
		}
		if resp.GetIndex() != int64(i) {
			t.Errorf("SubmitTasks answer %d has index %d, want answers in order", i, resp.GetIndex())
		}
		if e := resp.GetError(); e != nil {
			t.Errorf("SubmitTasks answer %d = error %d %q %v, want a task", i, e.GetCode(), e.GetMessage(), e.GetProblems())
			continue
		}
		if got, want := resp.GetTask().GetSpec().GetName(), fmt.Sprintf("cap-%03d", i); got != want {
			t.Errorf("SubmitTasks answer %d is task %q, want %q", i, got, want)
		}
		ids = append(ids, resp.GetTask().GetId())
	}
	if err := <-sendErr; err != nil {
		t.Fatalf("SubmitTasks Send = %v", client.FromError(err))
	}
	if len(ids) != n {
		t.Fatalf("SubmitTasks answered %d tasks, want %d", len(ids), n)
	}

	// Wait for all of them; collect them through paginated ListTasks.
	var tasks []*pcnodev1.Task
	deadline := time.Now().Add(9 * time.Minute)
	for {
		tasks = e2eListAll(t, d, &pcnodev1.ListTasksRequest{Labels: labels, PageSize: 30})
		done := 0
		for _, task := range tasks {
			if client.IsFinal(task.GetState()) {
				done++
			}
		}
		if done == n && len(tasks) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 9m, %d of %d tasks are final (ListTasks has %d)", done, n, len(tasks))
		}
		time.Sleep(500 * time.Millisecond)
	}
	gotIDs := make([]string, 0, n)
	for _, task := range tasks {
		gotIDs = append(gotIDs, task.GetId())
		if task.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
			t.Errorf("task %s (%s) ended %v/%v (%q), want SUCCEEDED", task.GetId(), task.GetSpec().GetName(), task.GetState(), task.GetReason(), task.GetMessage())
		}
		if task.GetStartTime() == nil || task.GetFinishTime() == nil {
			t.Fatalf("task %s: start_time %v finish_time %v, want both", task.GetId(), task.GetStartTime(), task.GetFinishTime())
		}
	}
	slices.Sort(ids)
	slices.Sort(gotIDs)
	if !slices.Equal(ids, gotIDs) {
		t.Errorf("ListTasks(labels) ids differ from the ids SubmitTasks returned")
	}
	// ListTasks is newest first; task ids are time-sortable.
	for i := 1; i < len(tasks); i++ {
		if tasks[i-1].GetCreateTime().AsTime().Before(tasks[i].GetCreateTime().AsTime()) {
			t.Errorf("ListTasks: task %d created %v before task %d created %v, want newest first",
				i-1, tasks[i-1].GetCreateTime().AsTime(), i, tasks[i].GetCreateTime().AsTime())
			break
		}
	}

	// Sweep the [start, finish] intervals; a finish at the same instant as a
	// start counts first.
	type edge struct {
		at    time.Time
		delta int
		id    string
	}
	var edges []edge
	for _, task := range tasks {
		edges = append(edges, edge{task.GetStartTime().AsTime(), +1, task.GetId()}, edge{task.GetFinishTime().AsTime(), -1, task.GetId()})
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	running, peak := map[string]bool{}, 0
	for _, e := range edges {
		if e.delta > 0 {
			running[e.id] = true
		} else {
			delete(running, e.id)
		}
		if len(running) > maxConc {
			t.Errorf("at %s, %d tasks were running (%v), want at most %d", e.at.Format(time.RFC3339Nano), len(running), e2eKeys(running), maxConc)
		}
		peak = max(peak, len(running))
	}
	if peak < maxConc {
		t.Errorf("at most %d task ran at a time, want the node to use its %d slots", peak, maxConc)
	}
	first, last := edges[0].at, edges[len(edges)-1].at
	t.Logf("%d tasks ran in %v (first start to last finish), peak concurrency %d", n, last.Sub(first).Round(time.Millisecond), peak)
}

// e2eListAll pages through ListTasks.
func e2eListAll(t *testing.T, d *daemontest.Daemon, req *pcnodev1.ListTasksRequest) []*pcnodev1.Task {
	t.Helper()
	var all []*pcnodev1.Task
	for page := 0; ; page++ {
		resp, err := d.Client.Tasks.ListTasks(t.Context(), req)
		if err != nil {
			t.Fatalf("ListTasks(page %d) = %v", page, client.FromError(err))
		}
		if ps := req.GetPageSize(); ps > 0 && len(resp.GetTasks()) > int(ps) {
			t.Fatalf("ListTasks(page_size %d) returned %d tasks", ps, len(resp.GetTasks()))
		}
		all = append(all, resp.GetTasks()...)
		if resp.GetNextPageToken() == "" {
			return all
		}
		if page > 1000 {
			t.Fatalf("ListTasks: more than 1000 pages")
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func e2eKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
