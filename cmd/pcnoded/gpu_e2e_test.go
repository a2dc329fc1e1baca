package main

// End-to-end acceptance tests of issue 4 (GPUs) that need no GPU: pcnoded
// with the "static" backend and two fake GPUs (internal/daemontest's
// FakeGPUs: device nodes made with mknod, a CDI spec written by gpu/cdi),
// running real containers. The image sets NVIDIA_VISIBLE_DEVICES=all, as
// CUDA base images do, so every test also checks that the daemon overrides
// it.

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// gpuImage is the test image with NVIDIA_VISIBLE_DEVICES=all in its config.
var gpuImage = testimage.Image{Name: "pcnode.test/gpu:1", Env: []string{"NVIDIA_VISIBLE_DEVICES=all"}}

// gpuSteps prints the environment and lists /dev.
const gpuSteps = "env -- ls /dev"

// gpuStart starts pcnoded with the static backend and two fake GPUs whose
// CDI specs are read from specDirs (none given: the fake GPUs' own spec),
// and imports gpuImage.
func gpuStart(t *testing.T, opts daemontest.Options, specDirs ...string) (*daemontest.Daemon, *daemontest.FakeGPUs, string) {
	t.Helper()
	fakes := daemontest.NewFakeGPUs(t, 2)
	configure := opts.Configure
	opts.Configure = func(c *config.Config) {
		fakes.Configure(c, specDirs...)
		if configure != nil {
			configure(c)
		}
	}
	d := daemontest.Start(t, opts)
	return d, fakes, d.ImportImage(t, gpuImage).GetName()
}

// gpuSpec is a "steps" task running steps with gpus requested (and no
// limit).
func gpuSpec(image, name string, gpus int32, steps string) *pcnodev1.TaskSpec {
	s := e2eSpec(image, "steps", "PCTEST_STEPS="+steps)
	s.Name = name
	if gpus > 0 {
		s.Resources = &pcnodev1.ResourceRequirements{Requests: &pcnodev1.ResourceList{Gpus: gpus}}
	}
	return s
}

// gpuSeen is what a task printed about GPUs: every NVIDIA_VISIBLE_DEVICES
// value of `env`, the /dev entries named nvidia* of `ls /dev`, and the
// whole stdout.
type gpuSeen struct {
	visible []string
	nodes   []string
	stdout  string
}

func gpuOutput(t *testing.T, d *daemontest.Daemon, id string) gpuSeen {
	t.Helper()
	out := string(daemontest.Output(d.TaskLogs(t, id), pcnodev1.LogStream_LOG_STREAM_STDOUT))
	s := gpuSeen{stdout: out}
	for line := range strings.Lines(out) {
		line = strings.TrimSuffix(line, "\n")
		if v, ok := strings.CutPrefix(line, "NVIDIA_VISIBLE_DEVICES="); ok {
			s.visible = append(s.visible, v)
			continue
		}
		// ls: "TYPE PERM SIZE SHA256 REL" (symbolic links add "-> TARGET").
		f := strings.Fields(line)
		if len(f) >= 5 && len(f[0]) == 1 && strings.HasPrefix(f[4], "nvidia") {
			s.nodes = append(s.nodes, f[0]+" "+f[4])
		}
	}
	if !strings.Contains(out, "total files=") {
		t.Errorf("task %s stdout lacks the end of `ls /dev`:\n%s", id, out)
	}
	return s
}

// gpuAssigned returns the task's GPU assignments.
func gpuAssigned(task *pcnodev1.Task) []*pcnodev1.GpuAssignment {
	return task.GetAllocation().GetGpus()
}

// gpuWantAllocation fails t unless task was given exactly want.
func gpuWantAllocation(t *testing.T, task *pcnodev1.Task, want ...*pcnodev1.GpuAssignment) {
	t.Helper()
	if diff := cmp.Diff(want, gpuAssigned(task), protocmp.Transform(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("task %s (%s) allocation.gpus (-want +got):\n%s", task.GetId(), task.GetSpec().GetName(), diff)
	}
}

// TestIntegrationGPUOwnDeviceOnly: a task given one of two GPUs sees that
// GPU's device node (and nvidiactl) and its UUID in NVIDIA_VISIBLE_DEVICES,
// overriding the image's "all", and nothing of the other GPU.
func TestIntegrationGPUOwnDeviceOnly(t *testing.T) {
	d, fakes, img := gpuStart(t, daemontest.Options{})
	// /dev/nvidiactl is /dev/null underneath: reading it checks that the
	// device cgroup lets the task open the injected nodes.
	task, _ := d.Run(t, gpuSpec(img, "one-gpu", 1, gpuSteps+" -- cat /dev/nvidiactl"))
	e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
	got := gpuAssigned(task)
	if len(got) != 1 {
		t.Fatalf("task %s allocation.gpus = %v, want one GPU", task.GetId(), got)
	}
	i := int(got[0].GetIndex())
	if i < 0 || i >= len(fakes.Static) {
		t.Fatalf("task %s allocation.gpus = %v, want index 0 or 1", task.GetId(), got)
	}
	mine, other := fakes.Static[i], fakes.Static[1-i]
	gpuWantAllocation(t, task, &pcnodev1.GpuAssignment{Index: int32(i), Uuid: mine.UUID})

	seen := gpuOutput(t, d, task.GetId())
	if diff := cmp.Diff([]string{mine.UUID}, seen.visible); diff != "" {
		t.Errorf("NVIDIA_VISIBLE_DEVICES in the container (-want +got):\n%s", diff)
	}
	wantNodes := []string{"o nvidia" + string(rune('0'+i)), "o nvidiactl"}
	if diff := cmp.Diff(wantNodes, seen.nodes); diff != "" {
		t.Errorf("nvidia* entries of `ls /dev` in the container (-want +got):\n%s\nstdout:\n%s", diff, seen.stdout)
	}
	if strings.Contains(seen.stdout, other.UUID) {
		t.Errorf("the container's output names the other GPU %s:\n%s", other.UUID, seen.stdout)
	}
}

// TestIntegrationGPUSideBySideAndQueue: two one-GPU tasks run at the same
// time on different GPUs while a third waits QUEUED; GetNode names the
// holders; the third starts on the GPU the first frees, before the second
// ends.
func TestIntegrationGPUSideBySideAndQueue(t *testing.T) {
	const (
		firstSleep  = 6 * time.Second
		secondSleep = 14 * time.Second
	)
	d, _, img := gpuStart(t, daemontest.Options{NoRace: true})
	a := d.Submit(t, gpuSpec(img, "first", 1, "sleep "+firstSleep.String()))
	b := d.Submit(t, gpuSpec(img, "second", 1, "sleep "+secondSleep.String()))
	c := d.Submit(t, gpuSpec(img, "third", 1, gpuSteps))

	a = d.WaitState(t, a.GetId(), pcnodev1.TaskState_TASK_STATE_RUNNING, 0)
	b = d.WaitState(t, b.GetId(), pcnodev1.TaskState_TASK_STATE_RUNNING, 0)
	// Both hold a GPU now; unless first has already ended (a very slow
	// start of second), the third must be waiting.
	cNow := d.GetTask(t, c.GetId())
	node, err := d.Client.Nodes.GetNode(t.Context(), &pcnodev1.GetNodeRequest{})
	if err != nil {
		t.Fatalf("GetNode() = %v", client.FromError(err))
	}
	aNow := d.GetTask(t, a.GetId())
	if aNow.GetState() != pcnodev1.TaskState_TASK_STATE_RUNNING {
		t.Fatalf("first task %s is %v by the time second runs; the machine is too slow for this test's %v sleep", a.GetId(), aNow.GetState(), firstSleep)
	}
	if cNow.GetState() != pcnodev1.TaskState_TASK_STATE_QUEUED {
		t.Errorf("third task while both GPUs are held = %v (%q), want QUEUED", cNow.GetState(), cNow.GetMessage())
	}
	if len(gpuAssigned(a)) != 1 || len(gpuAssigned(b)) != 1 || gpuAssigned(a)[0].GetUuid() == gpuAssigned(b)[0].GetUuid() {
		t.Fatalf("running tasks' allocation.gpus: first %v, second %v; want one GPU each, different", gpuAssigned(a), gpuAssigned(b))
	}
	holders := map[string]string{}
	for _, g := range node.GetNode().GetGpus() {
		holders[g.GetUuid()] = g.GetHolderTaskId()
	}
	wantHolders := map[string]string{gpuAssigned(a)[0].GetUuid(): a.GetId(), gpuAssigned(b)[0].GetUuid(): b.GetId()}
	if diff := cmp.Diff(wantHolders, holders); diff != "" {
		t.Errorf("GetNode GPU holders while first and second run (-want +got):\n%s", diff)
	}
	if n := node.GetNode(); n.GetRunningTasks() != 2 || n.GetQueuedTasks() != 1 || n.GetAllocated().GetGpus() != 2 {
		t.Errorf("GetNode while first and second run: running %d, queued %d, allocated.gpus %d; want 2, 1, 2",
			n.GetRunningTasks(), n.GetQueuedTasks(), n.GetAllocated().GetGpus())
	}

	a = d.WaitTask(t, a.GetId(), 0)
	c = d.WaitTask(t, c.GetId(), 0)
	b = d.WaitTask(t, b.GetId(), 0)
	for _, task := range []*pcnodev1.Task{a, b, c} {
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
	}
	aStart, aEnd := a.GetStartTime().AsTime(), a.GetFinishTime().AsTime()
	bStart, bEnd := b.GetStartTime().AsTime(), b.GetFinishTime().AsTime()
	cStart := c.GetStartTime().AsTime()
	if !aStart.Before(bEnd) || !bStart.Before(aEnd) {
		t.Errorf("first ran %v–%v, second %v–%v; want them to overlap", aStart, aEnd, bStart, bEnd)
	}
	if cStart.Before(aEnd) || !cStart.Before(bEnd) {
		t.Errorf("third started %v; want after first finished (%v) and before second finished (%v)", cStart, aEnd, bEnd)
	}
	gpuWantAllocation(t, c, gpuAssigned(a)...)
	if seen := gpuOutput(t, d, c.GetId()); !slices.Equal(seen.visible, []string{gpuAssigned(a)[0].GetUuid()}) {
		t.Errorf("third task's NVIDIA_VISIBLE_DEVICES = %q, want the first task's GPU %s", seen.visible, gpuAssigned(a)[0].GetUuid())
	}

	// Freed again.
	node, err = d.Client.Nodes.GetNode(t.Context(), &pcnodev1.GetNodeRequest{})
	if err != nil {
		t.Fatalf("GetNode() = %v", client.FromError(err))
	}
	for _, g := range node.GetNode().GetGpus() {
		if g.GetHolderTaskId() != "" {
			t.Errorf("GetNode after all tasks ended: GPU %s held by %s, want free", g.GetUuid(), g.GetHolderTaskId())
		}
	}
}

// TestIntegrationGPUTooMany: asking for 3 GPUs on a 2-GPU node, as a
// request or as a limit, is refused at submit with ResourceExhausted and a
// message with both numbers; no task is created.
func TestIntegrationGPUTooMany(t *testing.T) {
	d, _, img := gpuStart(t, daemontest.Options{})
	three := regexp.MustCompile(`\b3\b`)
	two := regexp.MustCompile(`\b2\b`)
	for _, tt := range []struct {
		name      string
		resources *pcnodev1.ResourceRequirements
	}{
		{"requests", &pcnodev1.ResourceRequirements{Requests: &pcnodev1.ResourceList{Gpus: 3}}},
		{"limits", &pcnodev1.ResourceRequirements{Limits: &pcnodev1.ResourceList{Gpus: 3}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := gpuSpec(img, "three-gpus-"+tt.name, 0, "env")
			spec.Resources = tt.resources
			resp, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec})
			msg := e2eWantCode(t, "SubmitTask("+tt.name+".gpus = 3)", err, codes.ResourceExhausted)
			if err == nil {
				t.Fatalf("SubmitTask(%s.gpus = 3) accepted task %s (%v)", tt.name, resp.GetTask().GetId(), resp.GetTask().GetState())
			}
			t.Logf("SubmitTask(%s.gpus = 3): %s", tt.name, msg)
			if !three.MatchString(msg) || !two.MatchString(msg) || !strings.Contains(strings.ToLower(msg), "gpu") {
				t.Errorf("SubmitTask(%s.gpus = 3) message = %q, want it to name GPUs, the 3 asked for and the 2 there are", tt.name, msg)
			}
		})
	}
	list, err := d.Client.Tasks.ListTasks(t.Context(), &pcnodev1.ListTasksRequest{})
	if err != nil {
		t.Fatalf("ListTasks() = %v", client.FromError(err))
	}
	if len(list.GetTasks()) != 0 {
		t.Errorf("ListTasks() after refused submits = %d tasks, want none", len(list.GetTasks()))
	}
}

// TestIntegrationGPUNoCDISpec: with CDI spec directories that describe none
// of the node's GPUs, a GPU task is refused at submit with
// FailedPrecondition naming the GPUs and the directory, while a CPU-only
// task still runs (seeing NVIDIA_VISIBLE_DEVICES=void).
func TestIntegrationGPUNoCDISpec(t *testing.T) {
	empty := t.TempDir()
	d, fakes, img := gpuStart(t, daemontest.Options{}, empty)
	_, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: gpuSpec(img, "blind", 1, "env")})
	msg := e2eWantCode(t, "SubmitTask(gpus 1, no CDI spec)", err, codes.FailedPrecondition)
	t.Logf("SubmitTask(gpus 1, no CDI spec): %s", msg)
	for _, want := range append(fakes.UUIDs(), empty) {
		if !strings.Contains(msg, want) {
			t.Errorf("SubmitTask(gpus 1, no CDI spec) message = %q, want it to name %s", msg, want)
		}
	}

	task, _ := d.Run(t, gpuSpec(img, "cpu-only", 0, gpuSteps))
	e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
	gpuWantAllocation(t, task)
	seen := gpuOutput(t, d, task.GetId())
	if diff := cmp.Diff([]string{"void"}, seen.visible); diff != "" {
		t.Errorf("CPU-only task's NVIDIA_VISIBLE_DEVICES (-want +got):\n%s", diff)
	}
	if len(seen.nodes) != 0 {
		t.Errorf("CPU-only task sees /dev entries %q, want no nvidia*", seen.nodes)
	}
}

// TestIntegrationGPUPartialCDISpec: the CDI spec describes only the second
// GPU. A one-GPU task must not be started blind on the first: it either
// runs on the second, or is refused at submit with FailedPrecondition.
func TestIntegrationGPUPartialCDISpec(t *testing.T) {
	fakes := daemontest.NewFakeGPUs(t, 2)
	second := fakes.SpecFor(t, 1)
	d := daemontest.Start(t, daemontest.Options{Configure: func(c *config.Config) { fakes.Configure(c, second) }})
	img := d.ImportImage(t, gpuImage).GetName()
	for i := range 2 { // twice, so that a scheduler preferring either GPU is caught
		resp, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: gpuSpec(img, "partial", 1, gpuSteps)})
		if err != nil {
			msg := e2eWantCode(t, "SubmitTask(gpus 1, spec for the second GPU only)", err, codes.FailedPrecondition)
			if !strings.Contains(msg, fakes.Static[0].UUID) {
				t.Errorf("SubmitTask(gpus 1, spec for the second GPU only) message = %q, want it to name %s", msg, fakes.Static[0].UUID)
			}
			continue
		}
		task := d.WaitTask(t, resp.GetTask().GetId(), 0)
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
		gpuWantAllocation(t, task, &pcnodev1.GpuAssignment{Index: 1, Uuid: fakes.Static[1].UUID})
		if t.Failed() {
			t.Logf("run %d: task %s ended %v: %s", i, task.GetId(), task.GetState(), task.GetMessage())
		}
	}
}

// TestIntegrationGPUNode: GetNode reports the static backend and both GPUs
// with their declared model, memory and NUMA node, healthy and free, and
// counts them in capacity; a CPU-only task gets NVIDIA_VISIBLE_DEVICES=void
// over the image's "all" and no GPU device node.
func TestIntegrationGPUNode(t *testing.T) {
	d, fakes, img := gpuStart(t, daemontest.Options{})
	want := &pcnodev1.Node{GpuBackend: "static", Capacity: &pcnodev1.ResourceList{Gpus: 2}}
	for _, g := range fakes.Static {
		want.Gpus = append(want.Gpus, &pcnodev1.Gpu{
			Index: int32(g.Index), Uuid: g.UUID, Model: daemontest.FakeGPUModel,
			MemoryTotalBytes: proto.Int64(16 << 30), NumaNode: proto.Int32(int32(g.NUMANode)),
			Health: pcnodev1.GpuHealth_GPU_HEALTH_HEALTHY,
		})
	}
	// Health turns HEALTHY once the monitor has started; give it a moment.
	var got *pcnodev1.Node
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := d.Client.Nodes.GetNode(t.Context(), &pcnodev1.GetNodeRequest{})
		if err != nil {
			t.Fatalf("GetNode() = %v", client.FromError(err))
		}
		got = resp.GetNode()
		healthy := len(got.GetGpus()) > 0
		for _, g := range got.GetGpus() {
			healthy = healthy && g.GetHealth() == pcnodev1.GpuHealth_GPU_HEALTH_HEALTHY
		}
		if healthy || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform(),
		protocmp.FilterField(&pcnodev1.Gpu{}, "health_message", cmp.Ignore()),
		protocmp.IgnoreFields(&pcnodev1.Node{}, "name", "labels", "version", "containerd_version", "allocatable",
			"allocated", "start_time", "draining", "queued_tasks", "running_tasks", "driver_version", "cuda_version", "conditions"),
		protocmp.IgnoreFields(&pcnodev1.ResourceList{}, "cpu_millis", "memory_bytes"),
	); diff != "" {
		t.Errorf("GetNode() (-want +got):\n%s", diff)
	}
	if got.GetAllocatable().GetGpus() != 2 {
		t.Errorf("GetNode().allocatable.gpus = %d, want 2", got.GetAllocatable().GetGpus())
	}

	task, _ := d.Run(t, gpuSpec(img, "cpu-only", 0, gpuSteps))
	e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
	gpuWantAllocation(t, task)
	seen := gpuOutput(t, d, task.GetId())
	if diff := cmp.Diff([]string{"void"}, seen.visible); diff != "" {
		t.Errorf("CPU-only task's NVIDIA_VISIBLE_DEVICES (-want +got):\n%s", diff)
	}
	if len(seen.nodes) != 0 {
		t.Errorf("CPU-only task sees /dev entries %q, want no nvidia*", seen.nodes)
	}
	for _, u := range fakes.UUIDs() {
		if strings.Contains(seen.stdout, u) {
			t.Errorf("CPU-only task's output names GPU %s:\n%s", u, seen.stdout)
		}
	}
}
