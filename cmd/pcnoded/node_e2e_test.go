package main

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationNodeWatchAndGPUAdmin follows WatchNode while a GPU task
// runs (the allocation and the holder appear, then go), checks heartbeats,
// drain/resume, and ClearGpuHealth's answers.
func TestIntegrationNodeWatchAndGPUAdmin(t *testing.T) {
	d, fakes, image := gpuStart(t, daemontest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	stream, err := d.Client.Nodes.WatchNode(ctx, &pcnodev1.WatchNodeRequest{HeartbeatInterval: durationpb.New(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.GetChange() != pcnodev1.NodeChange_NODE_CHANGE_INITIAL || len(first.GetNode().GetGpus()) != 2 {
		t.Fatalf("first WatchNode message = %v with %d GPUs, want INITIAL with 2", first.GetChange(), len(first.GetNode().GetGpus()))
	}

	task := d.Submit(t, gpuSpec(image, "watched", 1, "sleep 3s"))
	var sawHolder, sawHeartbeat, sawReleased bool
	for !(sawHolder && sawHeartbeat && sawReleased) {
		msg, err := stream.Recv()
		if err != nil {
			t.Fatalf("WatchNode: %v (holder %v, heartbeat %v, released %v)", err, sawHolder, sawHeartbeat, sawReleased)
		}
		n := msg.GetNode()
		holders := 0
		for _, g := range n.GetGpus() {
			if g.GetHolderTaskId() == task.GetId() {
				holders++
			}
		}
		switch {
		case msg.GetChange() == pcnodev1.NodeChange_NODE_CHANGE_HEARTBEAT:
			sawHeartbeat = true
		case holders == 1 && n.GetAllocated().GetGpus() == 1:
			sawHolder = true
		case sawHolder && holders == 0 && n.GetAllocated().GetGpus() == 0:
			sawReleased = true
		}
	}
	if got := d.WaitTask(t, task.GetId(), time.Minute); got.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
		t.Fatalf("task = %v %s, want SUCCEEDED", got.GetState(), got.GetMessage())
	}

	// Drain refuses new tasks; resume admits them again.
	if _, err := d.Client.Nodes.DrainNode(ctx, &pcnodev1.DrainNodeRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err = d.Client.Tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: gpuSpec(image, "drained", 0, "exit 0")})
	if got := client.Code(client.FromError(err)); got != codes.FailedPrecondition {
		t.Errorf("SubmitTask while draining = %v (%v), want FailedPrecondition", got, err)
	}
	if _, err := d.Client.Nodes.ResumeNode(ctx, &pcnodev1.ResumeNodeRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Client.Tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: gpuSpec(image, "resumed", 0, "exit 0")}); err != nil {
		t.Errorf("SubmitTask after resume = %v", err)
	}

	// ClearGpuHealth: a healthy GPU is returned as it is; bad and unknown
	// UUIDs are refused with the right codes.
	uuid := fakes.UUIDs()[0]
	resp, err := d.Client.Nodes.ClearGpuHealth(ctx, &pcnodev1.ClearGpuHealthRequest{Uuid: uuid})
	if err != nil {
		t.Fatalf("ClearGpuHealth(%q) = %v", uuid, err)
	}
	if resp.GetGpu().GetUuid() != uuid || resp.GetGpu().GetHealth() != pcnodev1.GpuHealth_GPU_HEALTH_HEALTHY {
		t.Errorf("ClearGpuHealth(%q) = %v %v, want the GPU, healthy", uuid, resp.GetGpu().GetUuid(), resp.GetGpu().GetHealth())
	}
	for _, tc := range []struct {
		uuid string
		want codes.Code
	}{
		{"not a uuid/../x", codes.InvalidArgument},
		{"GPU-99999999-9999-9999-9999-999999999999", codes.NotFound},
	} {
		_, err := d.Client.Nodes.ClearGpuHealth(ctx, &pcnodev1.ClearGpuHealthRequest{Uuid: tc.uuid})
		if got := client.Code(client.FromError(err)); got != tc.want {
			t.Errorf("ClearGpuHealth(%q) = %v (%v), want %v", tc.uuid, got, err, tc.want)
		}
	}
}
