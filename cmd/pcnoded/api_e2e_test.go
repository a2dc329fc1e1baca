package main

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// e2eWantCode fails t unless err has code, and returns its message.
func e2eWantCode(t *testing.T, what string, err error, code codes.Code) string {
	t.Helper()
	err = client.FromError(err)
	if got := client.Code(err); got != code {
		t.Errorf("%s = %v (code %v), want %v", what, err, got, code)
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestIntegrationIdempotencyKey: the same key with the same spec is the
// same task on every submit path; with a different spec, AlreadyExists.
func TestIntegrationIdempotencyKey(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	img := e2eTestImage(t, d).GetName()
	labels := map[string]string{"e2e": "idempotency"}
	spec := func(duration string) *pcnodev1.TaskSpec {
		s := e2eSpec(img, "sleep", "DURATION="+duration)
		s.Labels = labels
		return s
	}
	const key = "airflow:dag-1/run-7/task-3"

	first, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec("1s"), IdempotencyKey: key})
	if err != nil {
		t.Fatalf("SubmitTask(key %q) = %v", key, client.FromError(err))
	}
	if first.GetExisting() || first.GetTask().GetIdempotencyKey() != key {
		t.Errorf("first SubmitTask(key) existing = %v, idempotency_key %q; want false, %q", first.GetExisting(), first.GetTask().GetIdempotencyKey(), key)
	}
	id := first.GetTask().GetId()

	again, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec("1s"), IdempotencyKey: key})
	if err != nil {
		t.Fatalf("SubmitTask(same key, same spec) = %v", client.FromError(err))
	}
	if !again.GetExisting() || again.GetTask().GetId() != id {
		t.Errorf("SubmitTask(same key, same spec) = task %s existing %v, want task %s existing true", again.GetTask().GetId(), again.GetExisting(), id)
	}

	_, err = d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec("2s"), IdempotencyKey: key})
	e2eWantCode(t, "SubmitTask(same key, different spec)", err, codes.AlreadyExists)

	// SubmitTasks matches the key too.
	stream, err := d.Client.Tasks.SubmitTasks(t.Context())
	if err != nil {
		t.Fatalf("SubmitTasks() = %v", err)
	}
	for _, s := range []*pcnodev1.TaskSpec{spec("1s"), spec("3s")} {
		if err := stream.Send(&pcnodev1.SubmitTasksRequest{Submit: &pcnodev1.SubmitTaskRequest{Spec: s, IdempotencyKey: key}}); err != nil {
			t.Fatalf("SubmitTasks Send = %v", err)
		}
	}
	_ = stream.CloseSend()
	r0, err := stream.Recv()
	if err != nil {
		t.Fatalf("SubmitTasks Recv = %v", client.FromError(err))
	}
	if r0.GetTask().GetId() != id {
		t.Errorf("SubmitTasks(same key, same spec) = %v, want task %s", r0, id)
	}
	r1, err := stream.Recv()
	if err != nil {
		t.Fatalf("SubmitTasks Recv = %v", client.FromError(err))
	}
	if r1.GetError().GetCode() != int32(codes.AlreadyExists) {
		t.Errorf("SubmitTasks(same key, different spec) = %v, want error code %d", r1, codes.AlreadyExists)
	}

	// RunTask with the key attaches to the same task and follows it.
	final, err := d.Client.Run(t.Context(), &pcnodev1.RunTaskRequest{Target: &pcnodev1.RunTaskRequest_Submit{
		Submit: &pcnodev1.SubmitTaskRequest{Spec: spec("1s"), IdempotencyKey: key},
	}}, nil)
	if err != nil {
		t.Fatalf("RunTask(same key) = %v", err)
	}
	if final.GetId() != id {
		t.Errorf("RunTask(same key) followed task %s, want %s", final.GetId(), id)
	}
	e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)

	list, err := d.Client.Tasks.ListTasks(t.Context(), &pcnodev1.ListTasksRequest{Labels: labels})
	if err != nil {
		t.Fatalf("ListTasks() = %v", client.FromError(err))
	}
	if n := len(list.GetTasks()); n != 1 {
		t.Errorf("ListTasks(labels) = %d tasks, want 1", n)
	}
	// A finished task still answers its key.
	late, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec("1s"), IdempotencyKey: key})
	if err != nil || late.GetTask().GetId() != id || late.GetTask().GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
		t.Errorf("SubmitTask(same key) after the end = %v, %v; want the finished task %s", late.GetTask().GetId(), client.FromError(err), id)
	}
	idempotencyWhileDrained(t, d, spec, key, id)
}

// idempotencyWhileDrained: the key is looked up before the node's state
// is: a draining node, which admits nothing, still returns the task a
// repeated key names (a retried Airflow task re-attaches), refuses the same
// key with another spec as before (AlreadyExists), and refuses a new key.
func idempotencyWhileDrained(t *testing.T, d *daemontest.Daemon, spec func(string) *pcnodev1.TaskSpec, key, id string) {
	t.Helper()
	if _, err := d.Client.Nodes.DrainNode(t.Context(), &pcnodev1.DrainNodeRequest{}); err != nil {
		t.Fatalf("DrainNode() = %v", client.FromError(err))
	}
	drained, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec("1s"), IdempotencyKey: key})
	if err != nil || !drained.GetExisting() || drained.GetTask().GetId() != id {
		t.Errorf("SubmitTask(same key) on a draining node = task %s existing %v, %v; want task %s existing true",
			drained.GetTask().GetId(), drained.GetExisting(), client.FromError(err), id)
	}
	_, err = d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec("2s"), IdempotencyKey: key})
	if msg := e2eWantCode(t, "SubmitTask(same key, different spec) on a draining node", err, codes.AlreadyExists); !strings.Contains(msg, id) {
		t.Errorf("SubmitTask(same key, different spec) = %q, want it to name task %s", msg, id)
	}
	_, err = d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec("1s"), IdempotencyKey: key + "-new"})
	e2eWantCode(t, "SubmitTask(new key) on a draining node", err, codes.FailedPrecondition)
	if _, err := d.Client.Nodes.ResumeNode(t.Context(), &pcnodev1.ResumeNodeRequest{}); err != nil {
		t.Fatalf("ResumeNode() = %v", client.FromError(err))
	}
}

// TestIntegrationNeverFits: a task that can never fit the node is refused
// at submit with ResourceExhausted and the numbers, and leaves no task.
func TestIntegrationNeverFits(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	img := e2eTestImage(t, d).GetName()
	digits := regexp.MustCompile(`[0-9]`)
	tests := []struct {
		name     string
		requests *pcnodev1.ResourceList
		word     string // the resource the message must name
	}{
		{"memory", &pcnodev1.ResourceList{MemoryBytes: 1 << 50}, "memory"},
		{"cpu", &pcnodev1.ResourceList{CpuMillis: 10_000_000}, "cpu"},
		{"gpu on a node without GPUs", &pcnodev1.ResourceList{Gpus: 1}, "gpu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := e2eSpec(img, "exit", "CODE=0")
			spec.Resources = &pcnodev1.ResourceRequirements{Requests: tt.requests}
			_, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec})
			msg := e2eWantCode(t, "SubmitTask(requests "+tt.requests.String()+")", err, codes.ResourceExhausted)
			if !strings.Contains(strings.ToLower(msg), tt.word) || !digits.MatchString(msg) {
				t.Errorf("SubmitTask(%s) message = %q, want the %s numbers", tt.name, msg, tt.word)
			}
			res, err := d.Client.Tasks.ResolveTask(t.Context(), &pcnodev1.ResolveTaskRequest{Spec: spec})
			if err != nil {
				t.Errorf("ResolveTask(%s) = %v", tt.name, client.FromError(err))
			} else if res.GetFitsNode() || res.GetFitsNow() {
				t.Errorf("ResolveTask(%s) fits_node %v fits_now %v, want both false", tt.name, res.GetFitsNode(), res.GetFitsNow())
			}
		})
	}
	// A task that fits resolves as fitting.
	res, err := d.Client.Tasks.ResolveTask(t.Context(), &pcnodev1.ResolveTaskRequest{Spec: e2eSpec(img, "exit", "CODE=0")})
	if err != nil || !res.GetFitsNode() || !res.GetFitsNow() || len(res.GetProblems()) != 0 {
		t.Errorf("ResolveTask(exit) = %v, %v; want it to fit without problems", res, client.FromError(err))
	}
	list, err := d.Client.Tasks.ListTasks(t.Context(), &pcnodev1.ListTasksRequest{})
	if err != nil {
		t.Fatalf("ListTasks() = %v", client.FromError(err))
	}
	if n := len(list.GetTasks()); n != 0 {
		t.Errorf("ListTasks() = %d tasks after refusals and dry runs, want none", n)
	}
}

// TestIntegrationRemoveImageInUse: RemoveImage is refused while an
// unfinished task uses the image and works once it has finished.
func TestIntegrationRemoveImageInUse(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	img := d.ImportImage(t, testimage.Image{Name: "pcnode.test/remove-me:1"})
	task := d.Submit(t, e2eSpec(img.GetName(), "sleep", "DURATION=60s"))
	d.WaitState(t, task.GetId(), pcnodev1.TaskState_TASK_STATE_RUNNING, 0)

	_, err := d.Client.Images.RemoveImage(t.Context(), &pcnodev1.RemoveImageRequest{Reference: img.GetName()})
	msg := e2eWantCode(t, "RemoveImage(in use)", err, codes.FailedPrecondition)
	if !strings.Contains(msg, task.GetId()) {
		t.Logf("RemoveImage(in use) message %q does not name task %s", msg, task.GetId())
	}
	list, err := d.Client.Images.ListImages(t.Context(), &pcnodev1.ListImagesRequest{})
	if err != nil {
		t.Fatalf("ListImages() = %v", client.FromError(err))
	}
	var usedBy []string
	for _, i := range list.GetImages() {
		if i.GetName() == img.GetName() {
			usedBy = i.GetUsedByTaskIds()
		}
	}
	if !slices.Contains(usedBy, task.GetId()) {
		t.Errorf("ListImages() %s used_by_task_ids = %v, want %s", img.GetName(), usedBy, task.GetId())
	}
	if got := d.GetTask(t, task.GetId()).GetState(); got != pcnodev1.TaskState_TASK_STATE_RUNNING {
		t.Errorf("task state after refused RemoveImage = %v, want RUNNING", got)
	}

	e2eCancel(t, d, task.GetId(), time.Second)
	if _, err := d.Client.Images.RemoveImage(t.Context(), &pcnodev1.RemoveImageRequest{Reference: img.GetName()}); err != nil {
		t.Fatalf("RemoveImage(after the task ended) = %v", client.FromError(err))
	}
	list, err = d.Client.Images.ListImages(t.Context(), &pcnodev1.ListImagesRequest{})
	if err != nil {
		t.Fatalf("ListImages() = %v", client.FromError(err))
	}
	for _, i := range list.GetImages() {
		if i.GetName() == img.GetName() {
			t.Errorf("ListImages() after RemoveImage still has %s", img.GetName())
		}
	}
	_, err = d.Client.Images.GetProcessingContainer(t.Context(), &pcnodev1.GetProcessingContainerRequest{Reference: img.GetName()})
	e2eWantCode(t, "GetProcessingContainer(removed image)", err, codes.NotFound)
}

// TestIntegrationGetProcessingContainer reads /processing-container.json
// out of images: Kaapana's dummy, an image without one (NotFound), an
// invalid one (InvalidArgument), an image not on the node (NotFound).
func TestIntegrationGetProcessingContainer(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	dummy := d.ImportImage(t, testimage.Image{Name: "pcnode.test/kaapana-dummy:1", ProcessingContainer: daemontest.KaapanaDummyProcessingContainer()})
	bare := d.ImportImage(t, testimage.Image{Name: "pcnode.test/no-pc:1", OmitProcessingContainer: true})
	broken := d.ImportImage(t, testimage.Image{Name: "pcnode.test/broken-pc:1", ProcessingContainer: []byte(`{"name": "broken", "templates": [`)})

	t.Run("Kaapana dummy", func(t *testing.T) {
		resp, err := d.Client.Images.GetProcessingContainer(t.Context(), &pcnodev1.GetProcessingContainerRequest{Reference: dummy.GetName()})
		if err != nil {
			t.Fatalf("GetProcessingContainer(%s) = %v", dummy.GetName(), client.FromError(err))
		}
		if resp.GetDigest() != dummy.GetDigest() {
			t.Errorf("GetProcessingContainer digest = %q, want %q", resp.GetDigest(), dummy.GetDigest())
		}
		pc := resp.GetProcessingContainer()
		var got [][]string
		for _, tpl := range pc.GetTemplates() {
			row := []string{tpl.GetIdentifier()}
			for _, c := range append(tpl.GetInputs(), tpl.GetOutputs()...) {
				row = append(row, c.GetName()+"="+c.GetMountedPath())
			}
			got = append(got, append(row, tpl.GetCommand()...))
		}
		want := [][]string{
			{"upstream", "channel1=/home/upstream/channel1", "channel2=/home/upstream/channel2", "python3", "-u", "upstream.py"},
			{"downstream", "channel1=/home/downstream/channel1", "channel2=/home/downstream/channel2", "python3", "-u", "downstream.py"},
		}
		if pc.GetName() != "Dummy-processing-container" {
			t.Errorf("processing_container.name = %q, want %q", pc.GetName(), "Dummy-processing-container")
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GetProcessingContainer(dummy) templates (-want +got):\n%s", diff)
		}
		wantEnv := &pcnodev1.EnvVarTemplate{Name: "TIME_SLEEP", Value: "5", Description: "Number of iterations to sleep before finishing."}
		if env := pc.GetTemplates()[0].GetEnv(); len(env) != 1 || !cmp.Equal(wantEnv, env[0], protocmp.Transform(), protocmp.IgnoreFields(&pcnodev1.EnvVarTemplate{}, "type", "adjustable")) {
			t.Errorf("upstream env = %v, want [%v]", env, wantEnv)
		}
	})

	t.Run("image without the file", func(t *testing.T) {
		_, err := d.Client.Images.GetProcessingContainer(t.Context(), &pcnodev1.GetProcessingContainerRequest{Reference: bare.GetName()})
		msg := e2eWantCode(t, "GetProcessingContainer(no file)", err, codes.NotFound)
		if !strings.Contains(msg, "processing-container.json") {
			t.Errorf("GetProcessingContainer(no file) = %q, want it to name /processing-container.json", msg)
		}
		// A task from that image's templates is refused, not started.
		_, err = d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: e2eSpec(bare.GetName(), "upstream")})
		if c := client.Code(err); c == codes.OK {
			t.Errorf("SubmitTask(template of an image without processing-container.json) = OK, want an error")
		}
	})

	t.Run("invalid file", func(t *testing.T) {
		_, err := d.Client.Images.GetProcessingContainer(t.Context(), &pcnodev1.GetProcessingContainerRequest{Reference: broken.GetName()})
		e2eWantCode(t, "GetProcessingContainer(invalid file)", err, codes.InvalidArgument)
		var e *client.Error
		if errors.As(client.FromError(err), &e) && len(e.Violations) == 0 {
			t.Errorf("GetProcessingContainer(invalid file) = %v, want field violations", e)
		}
	})

	t.Run("image not on the node", func(t *testing.T) {
		_, err := d.Client.Images.GetProcessingContainer(t.Context(), &pcnodev1.GetProcessingContainerRequest{Reference: "pcnode.test/not-here:1"})
		msg := e2eWantCode(t, "GetProcessingContainer(not on the node)", err, codes.NotFound)
		if !strings.Contains(msg, "pcnode.test/not-here") {
			t.Errorf("GetProcessingContainer(not on the node) = %q, want it to name the image", msg)
		}
	})
}
