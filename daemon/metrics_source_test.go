package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/metrics"
	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// metricsDaemon is a Daemon with a memory store, the broker and node watch
// that update needs, and its metrics.
func metricsDaemon(t *testing.T) *Daemon {
	t.Helper()
	d := &Daemon{cfg: config.DefaultConfig(), log: slog.New(slog.DiscardHandler), store: store.NewMemory(),
		events: newBroker(), node: newNodeWatch(), logDone: make(chan string, logDoneBuffer)}
	d.metrics = newMetrics(d)
	return d
}

// gathered returns the value of the sample of name whose labels are
// exactly labels (a histogram: its count).
func gathered(t *testing.T, d *Daemon, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := d.metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			return sampleValue(m)
		}
	}
	t.Fatalf("no sample %s%v", name, labels)
	return 0
}

func sampleValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return 0
}

// TestMetricsFollowTransitions: a task's way through update moves the
// gauges and ends the durations; its id goes to the log measuring loop.
func TestMetricsFollowTransitions(t *testing.T) {
	ctx := context.Background()
	d := metricsDaemon(t)
	old := timestamppb.New(time.Now().Add(-2 * time.Second))
	id := store.NewID(time.Now())
	task, _, err := d.store.CreateTask(ctx, &pcnodev1.Task{Id: id, State: pcnodev1.TaskState_TASK_STATE_QUEUED, CreateTime: old, UpdateTime: old}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.seedTaskMetrics(ctx); err != nil {
		t.Fatal(err)
	}
	if got := gathered(t, d, "pcnode_tasks", map[string]string{"state": "queued"}); got != 1 {
		t.Fatalf("queued after seeding = %v, want 1", got)
	}
	set := func(s pcnodev1.TaskState, fn func(*pcnodev1.Task)) {
		t.Helper()
		if _, err := d.update(ctx, task.GetId(), func(t *pcnodev1.Task) {
			t.State = s
			if fn != nil {
				fn(t)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	set(pcnodev1.TaskState_TASK_STATE_PREPARING, nil)
	set(pcnodev1.TaskState_TASK_STATE_RUNNING, func(t *pcnodev1.Task) { t.StartTime = timestamppb.Now() })
	if got := gathered(t, d, "pcnode_tasks", map[string]string{"state": "running"}); got != 1 {
		t.Errorf("running = %v, want 1", got)
	}
	set(pcnodev1.TaskState_TASK_STATE_FAILED, func(t *pcnodev1.Task) {
		t.Reason = pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT
		t.FinishTime = timestamppb.New(t.GetStartTime().AsTime().Add(5 * time.Second))
		t.Allocation = &pcnodev1.Allocation{Gpus: []*pcnodev1.GpuAssignment{{Uuid: "GPU-a"}}}
		t.Usage = &pcnodev1.Usage{PeakGpuMemoryBytes: 1 << 30}
	})
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pcnode_tasks", map[string]string{"state": "queued"}, 0},
		{"pcnode_tasks", map[string]string{"state": "preparing"}, 0},
		{"pcnode_tasks", map[string]string{"state": "running"}, 0},
		{"pcnode_tasks_finished_total", map[string]string{"state": "failed", "reason": "nonzero_exit"}, 1},
		{"pcnode_queue_wait_seconds", nil, 1},
		{"pcnode_container_start_seconds", nil, 1},
		{"pcnode_task_duration_seconds", map[string]string{"state": "failed"}, 1},
		{"pcnode_task_gpu_memory_peak_bytes", nil, 1},
	} {
		if got := gathered(t, d, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	select {
	case got := <-d.logDone:
		if got != task.GetId() {
			t.Errorf("log measured for %q, want %q", got, task.GetId())
		}
	default:
		t.Errorf("the finished task's log was not handed to the measuring loop")
	}
}

func TestNoteSubmit(t *testing.T) {
	var p problems
	p.add("spec.image", "must be set")
	for _, c := range []struct {
		name             string
		err              error
		draining, recov  bool
		code, wantReason string
	}{
		{"invalid", invalid(p), false, false, "InvalidArgument", "invalid"},
		{"never fits", WithCode(codes.ResourceExhausted, errors.New("needs 5 GPUs")), false, false, "ResourceExhausted", "never_fits"},
		{"draining", WithCode(codes.FailedPrecondition, errors.New("draining")), true, false, "FailedPrecondition", "draining"},
		{"cdi", WithCode(codes.FailedPrecondition, errors.New("no CDI")), false, false, "FailedPrecondition", "precondition"},
		{"containerd", fmt.Errorf("get image: %w", runtime.ErrUnavailable), false, false, "Unavailable", "containerd_unavailable"},
		{"recovering", WithCode(codes.Unavailable, errors.New("recovering")), false, true, "Unavailable", "recovering"},
		{"conflict", fmt.Errorf("key: %w", store.ErrKeyConflict), false, false, "AlreadyExists", "conflict"},
		{"internal", errors.New("disk full"), false, false, "Internal", "other"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := metricsDaemon(t)
			d.admin.draining.Store(c.draining)
			d.admin.setRecovering(c.recov)
			d.noteSubmit(false, c.err)
			if got := gathered(t, d, "pcnode_admission_refusals_total", map[string]string{"code": c.code, "reason": c.wantReason}); got != 1 {
				t.Errorf("noteSubmit(%v) counted %v under %s/%s, want 1", c.err, got, c.code, c.wantReason)
			}
		})
	}
	d := metricsDaemon(t)
	d.noteSubmit(false, nil)
	d.noteSubmit(true, nil) // an idempotent repeat: no new task
	if got := gathered(t, d, "pcnode_tasks", map[string]string{"state": "queued"}); got != 1 {
		t.Errorf("queued after one new and one repeated submit = %v, want 1", got)
	}
}

func TestReady(t *testing.T) {
	for _, c := range []struct {
		name      string
		up, recov bool
		ready     bool
		why       string
	}{
		{"serving", true, false, true, "serving"},
		{"containerd down", false, false, false, "waiting for containerd at /run/containerd/containerd.sock"},
		{"containerd down while recovering", false, true, false, "waiting for containerd at /run/containerd/containerd.sock"},
		{"recovering", true, true, false, "recovering the last run's tasks"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := metricsDaemon(t)
			d.readyCh = make(chan struct{}, 1)
			d.ctrd = newContainerdHealth(nil, d.cfg.Containerd.Address, d.log, c.up, nil, time.Now())
			d.admin.setRecovering(c.recov)
			if ready, why := d.Ready(); ready != c.ready || why != c.why {
				t.Errorf("Ready() = %v, %q; want %v, %q", ready, why, c.ready, c.why)
			}
		})
	}
	d := metricsDaemon(t)
	d.readyCh = make(chan struct{}, 1)
	d.ctrd = newContainerdHealth(nil, "x", d.log, true, nil, time.Now())
	d.ctrd.onChange = d.containerdChanged
	d.conds = newNodeConditions(time.Now())
	d.wake = make(chan struct{}, 1)
	d.ctrd.down(fmt.Errorf("ping: %w", runtime.ErrUnavailable))
	select {
	case <-d.ReadinessChanged():
	default:
		t.Errorf("containerd going down did not signal ReadinessChanged")
	}
}

// TestQueueWaitReasonsAgree checks that the metrics package labels every
// reason the scheduler reports, and no other.
func TestQueueWaitReasonsAgree(t *testing.T) {
	if !slices.Equal(metrics.QueueWaitReasons, sched.WaitReasons) {
		t.Errorf("metrics.QueueWaitReasons = %v, sched.WaitReasons = %v", metrics.QueueWaitReasons, sched.WaitReasons)
	}
}
