package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestFinishTask(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	r := stepRunner(t, d, task.GetId())
	start := time.Now().Add(-time.Minute)
	if _, err := r.markRunning(context.Background(), timestamppb.New(start), ""); err != nil {
		t.Fatal(err)
	}
	rt.addContainer(task.GetId(), runtime.StateStopped, runtime.ExitStatus{Code: 3})
	exitedAt := start.Add(-time.Second) // before the start: finish time is clamped to it
	o := &outcome{
		state: pcnodev1.TaskState_TASK_STATE_FAILED, reason: pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, msg: "exited 3",
		exit:      runtime.ExitStatus{Code: 3, ExitedAt: exitedAt},
		usage:     &pcnodev1.Usage{PeakMemoryBytes: 7},
		summaries: []*pcnodev1.OutputSummary{{Name: "out", FileCount: 1}},
		warnings:  []string{"w"},
	}
	for run := range 2 { // the second as a re-run after a crash: the final state stays
		if run == 1 {
			o.msg = "something else"
		}
		if err := r.finishTask(context.Background(), task, o); err != nil {
			t.Fatalf("finishTask() run %d error = %v", run, err)
		}
		got := getTask(t, d, task.GetId())
		wantState(t, got, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT)
		if got.GetExitCode() != 3 || got.GetMessage() != "exited 3" || got.GetUsage().GetPeakMemoryBytes() != 7 ||
			len(got.GetOutputs()) != 1 || len(got.GetWarnings()) != 1 || !got.GetFinishTime().AsTime().Equal(got.GetStartTime().AsTime()) {
			t.Errorf("finishTask() run %d recorded %v", run, got)
		}
	}
	// The container is clean up's, not finish's.
	if st := rt.state(task.GetId()); st != runtime.StateStopped {
		t.Errorf("container after finish = %q, want it still there (stopped)", st)
	}
}

func TestFinishTaskDetached(t *testing.T) {
	d, root := stepDaemon(t, newFakeRuntime(stepImage))
	task := stepTask(t, d, root)
	r := stepRunner(t, d, task.GetId())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := r.finishTask(ctx, task, &outcome{state: pcnodev1.TaskState_TASK_STATE_SUCCEEDED})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("finishTask() detached error = %v, want context.Canceled", err)
	}
	if got := getTask(t, d, task.GetId()); IsFinal(got.GetState()) {
		t.Errorf("finishTask() detached wrote %v", got.GetState())
	}
}

// TestFinishTaskReleasesFirst: whoever sees the final state finds the
// task's allocation and opened directories given back, although the
// container is deleted only afterwards (clean up).
func TestFinishTaskReleasesFirst(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt, "out")
	task := stepTask(t, d, root, "out")
	id := task.GetId()
	if err := d.sched.Restore(sched.Request{ID: id, Submitted: time.Now(), Requests: sched.Resources{MilliCPU: 500, MemoryBytes: 1 << 20}}, nil); err != nil {
		t.Fatal(err)
	}
	r := stepRunner(t, d, id)
	if err := r.prepareOutputs(task); err != nil {
		t.Fatal(err)
	}
	if d.taskChannelsOf(id) == nil {
		t.Fatal("prepareOutputs claimed no channels")
	}
	if _, err := r.markRunning(context.Background(), timestamppb.Now(), ""); err != nil {
		t.Fatal(err)
	}
	rt.addContainer(id, runtime.StateStopped, runtime.ExitStatus{})
	o := &outcome{state: pcnodev1.TaskState_TASK_STATE_SUCCEEDED, reason: pcnodev1.TaskReason_TASK_REASON_COMPLETED, msg: "exited 0"}
	if err := r.finishTask(context.Background(), task, o); err != nil {
		t.Fatal(err)
	}
	_, allocatedAtFinal := d.sched.Allocation(id)
	claimedAtFinal := d.taskChannelsOf(id) != nil
	if allocatedAtFinal || claimedAtFinal {
		t.Errorf("after the final state: allocated %v, directories claimed %v; want neither", allocatedAtFinal, claimedAtFinal)
	}
	if st := rt.state(id); st != runtime.StateStopped {
		t.Errorf("container after finish = %q, want it still there for clean up", st)
	}
}
