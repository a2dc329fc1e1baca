package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// fakeNode is a hand-written in-process pcnoded: WatchNode reports a fixed
// node every 100ms; SubmitTask keeps tasks by idempotency key, and hangs
// (until the caller gives up) for its first hang calls.
type fakeNode struct {
	pcnodev1.UnimplementedTaskServiceServer
	pcnodev1.UnimplementedNodeServiceServer

	node *pcnodev1.Node

	mu      sync.Mutex
	hang    int
	submits []string // idempotency keys, in order
	looks   int      // GetTask calls
	tasks   map[string]*pcnodev1.Task

	srv    *grpc.Server
	socket string
}

func startFake(t *testing.T, name string, cpu int64, hang int) *fakeNode {
	t.Helper()
	dir, err := os.MkdirTemp("", "pool-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeNode{
		node: &pcnodev1.Node{
			Name:        name,
			Allocatable: &pcnodev1.ResourceList{CpuMillis: cpu, MemoryBytes: 1 << 30},
			Allocated:   &pcnodev1.ResourceList{},
		},
		hang:   hang,
		tasks:  map[string]*pcnodev1.Task{},
		srv:    grpc.NewServer(),
		socket: filepath.Join(dir, "s"),
	}
	pcnodev1.RegisterTaskServiceServer(f.srv, f)
	pcnodev1.RegisterNodeServiceServer(f.srv, f)
	l, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	go f.srv.Serve(l)
	t.Cleanup(f.srv.Stop)
	return f
}

func (f *fakeNode) WatchNode(_ *pcnodev1.WatchNodeRequest, s grpc.ServerStreamingServer[pcnodev1.WatchNodeResponse]) error {
	for {
		if err := s.Send(&pcnodev1.WatchNodeResponse{Node: f.node, Time: timestamppb.Now()}); err != nil {
			return err
		}
		select {
		case <-s.Context().Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (f *fakeNode) SubmitTask(ctx context.Context, req *pcnodev1.SubmitTaskRequest) (*pcnodev1.SubmitTaskResponse, error) {
	f.mu.Lock()
	f.submits = append(f.submits, req.GetIdempotencyKey())
	hang := f.hang > 0
	if hang {
		f.hang--
	}
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if task := f.tasks[req.GetIdempotencyKey()]; task != nil {
		return &pcnodev1.SubmitTaskResponse{Task: task, Existing: true}, nil
	}
	task := &pcnodev1.Task{
		Id:             fmt.Sprintf("%s-%d", f.node.GetName(), len(f.tasks)),
		IdempotencyKey: req.GetIdempotencyKey(),
		State:          pcnodev1.TaskState_TASK_STATE_QUEUED,
		CreateTime:     timestamppb.Now(),
	}
	f.tasks[req.GetIdempotencyKey()] = task
	return &pcnodev1.SubmitTaskResponse{Task: task}, nil
}

// RunTask is always over the stream cap.
func (f *fakeNode) RunTask(*pcnodev1.RunTaskRequest, grpc.ServerStreamingServer[pcnodev1.RunTaskResponse]) error {
	return status.Error(codes.ResourceExhausted, "streams: 128 of this client open ([streams] max_per_client)")
}

// GetTask returns the task, finished after its second look.
func (f *fakeNode) GetTask(_ context.Context, req *pcnodev1.GetTaskRequest) (*pcnodev1.GetTaskResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, task := range f.tasks {
		if task.GetId() == req.GetTaskId() {
			f.looks++
			if f.looks >= 2 {
				task.State = pcnodev1.TaskState_TASK_STATE_SUCCEEDED
			}
			return &pcnodev1.GetTaskResponse{Task: task}, nil
		}
	}
	return nil, status.Error(codes.NotFound, "no such task")
}

func (f *fakeNode) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.submits...)
}

func fakePool(t *testing.T, opts []PoolOption, nodes ...*fakeNode) *Pool {
	t.Helper()
	var cfgs []NodeConfig
	for _, n := range nodes {
		cfgs = append(cfgs, NodeConfig{Name: n.node.GetName(), Address: n.socket})
	}
	opts = append([]PoolOption{WithAttemptTimeout(200 * time.Millisecond), WithBackoff(10*time.Millisecond, 50*time.Millisecond)}, opts...)
	p, err := NewPool(t.Context(), cfgs, opts...)
	if err != nil {
		t.Fatalf("NewPool() = %v", err)
	}
	t.Cleanup(func() { p.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := p.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady() = %v", err)
	}
	return p
}

var fakeSpec = &pcnodev1.TaskSpec{Image: "x", Resources: &pcnodev1.ResourceRequirements{Requests: &pcnodev1.ResourceList{CpuMillis: 100}}}

// TestPoolOutcomeUnknownStaysOnNode: a submission that reached a node and
// got no answer is retried on that node with the same key, never placed on
// another, and the key stays bound to it.
func TestPoolOutcomeUnknownStaysOnNode(t *testing.T) {
	a := startFake(t, "a", 10000, 2) // preferred (bigger), hangs twice
	b := startFake(t, "b", 1000, 0)
	p := fakePool(t, nil, a, b)

	pl, err := p.Submit(t.Context(), fakeSpec, "k1")
	if err != nil {
		t.Fatalf("Submit() = %v", err)
	}
	if pl.Node != "a" {
		t.Errorf("Submit() placed on %s, want a (the retried node)", pl.Node)
	}
	if got := a.keys(); len(got) != 3 {
		t.Errorf("a got submissions %v, want 3 of k1 (2 unanswered, 1 answered)", got)
	}
	if got := b.keys(); len(got) != 0 {
		t.Errorf("b got submissions %v, want none: the outcome on a was unknown", got)
	}
	again, err := p.Submit(t.Context(), fakeSpec, "k1")
	if err != nil || again.Node != "a" || !again.Existing || again.Task.GetId() != pl.Task.GetId() {
		t.Errorf("Submit(k1) again = %+v, %v; want the existing task on a", again, err)
	}
}

// TestPoolOutcomeUnknownCtxEnds: when the caller gives up before the bound
// node answers, the error says the outcome is unknown, and the key is still
// bound to that node.
func TestPoolOutcomeUnknownCtxEnds(t *testing.T) {
	a := startFake(t, "a", 10000, 1000)
	b := startFake(t, "b", 1000, 0)
	p := fakePool(t, nil, a, b)
	ctx, cancel := context.WithTimeout(t.Context(), 700*time.Millisecond)
	defer cancel()
	_, err := p.Submit(ctx, fakeSpec, "k2")
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Submit() = %v, want ErrOutcomeUnknown", err)
	}
	if node, _, ok := p.Placed("k2"); !ok || node != "a" {
		t.Errorf("Placed(k2) = %q, %v; want bound to a", node, ok)
	}
	if got := b.keys(); len(got) != 0 {
		t.Errorf("b got submissions %v, want none", got)
	}
}

// TestPoolFailover: a node that is down gets no task. Once the pool has
// seen it go, it is left out; while the pool still counts it reachable
// (its view is stale), the call fails before anything is sent and the next
// node takes the task.
func TestPoolFailover(t *testing.T) {
	a := startFake(t, "a", 10000, 0)
	b := startFake(t, "b", 1000, 0)
	// Long backoff: after the watch sees a go, it waits 10s before trying again.
	p := fakePool(t, []PoolOption{WithBackoff(10*time.Second, 10*time.Second)}, a, b)
	a.srv.Stop()
	waitFor(t, func() bool { return !p.nodes["a"].view().Reachable })

	pl, err := p.Submit(t.Context(), fakeSpec, "k3")
	if err != nil || pl.Node != "b" {
		t.Fatalf("Submit() with a seen down = %+v, %v; want placed on b", pl, err)
	}

	// The stale view: a looks reachable, idle and bigger, so it is tried first.
	p.nodes["a"].report(a.node, time.Now(), 0)
	pl, err = p.Submit(t.Context(), fakeSpec, "k5")
	if err != nil || pl.Node != "b" {
		t.Fatalf("Submit() with a stale view of a = %+v, %v; want placed on b", pl, err)
	}
	if got := a.keys(); len(got) != 0 {
		t.Errorf("a got submissions %v after it stopped", got)
	}
	if got := b.keys(); len(got) != 2 {
		t.Errorf("b got submissions %v, want k3 and k5", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPoolWaitOverStreamCap: a node that refuses the follow stream (its
// stream cap) is looked at with GetTask until the task has finished.
func TestPoolWaitOverStreamCap(t *testing.T) {
	a := startFake(t, "a", 1000, 0)
	p := fakePool(t, nil, a)
	pl, err := p.Submit(t.Context(), fakeSpec, "k6")
	if err != nil {
		t.Fatalf("Submit() = %v", err)
	}
	task, err := p.Wait(t.Context(), pl.Key)
	if err != nil || task.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
		t.Fatalf("Wait() = %v, %v; want the task SUCCEEDED", task.GetState(), err)
	}
}

// TestPoolNoNodeFits: every node's reason is in the error.
func TestPoolNoNodeFits(t *testing.T) {
	a := startFake(t, "a", 1000, 0)
	b := startFake(t, "b", 500, 0)
	p := fakePool(t, nil, a, b)
	big := &pcnodev1.TaskSpec{Image: "x", Resources: &pcnodev1.ResourceRequirements{Requests: &pcnodev1.ResourceList{CpuMillis: 2000}}}
	_, err := p.Submit(t.Context(), big, "k4")
	var nf *NoFitError
	if !errors.As(err, &nf) || !errors.Is(err, ErrNoNodeFits) {
		t.Fatalf("Submit() = %v, want a *NoFitError", err)
	}
	want := []NodeReason{{"a", "cpu: needs 2000m, allocatable 1000m"}, {"b", "cpu: needs 2000m, allocatable 500m"}}
	if fmt.Sprint(nf.Reasons) != fmt.Sprint(want) {
		t.Errorf("reasons = %v, want %v", nf.Reasons, want)
	}
	if _, _, ok := p.Placed("k4"); ok {
		t.Error("Placed(k4) = bound, want unbound")
	}
	if _, err := p.Wait(t.Context(), "k4"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Wait(k4) = %v, want ErrUnknownKey", err)
	}
}

// TestPoolBindings: a key restored with WithBindings goes to its node
// only, even when another node is preferred.
func TestPoolBindings(t *testing.T) {
	a := startFake(t, "a", 10000, 0)
	b := startFake(t, "b", 1000, 0)
	p := fakePool(t, []PoolOption{WithBindings(map[string]string{"k7": "b"})}, a, b)
	if _, err := p.Wait(t.Context(), "k7"); err == nil || !strings.Contains(err.Error(), "Submit it again") {
		t.Errorf("Wait(k7) before Submit = %v, want an error saying to submit it again", err)
	}
	pl, err := p.Submit(t.Context(), fakeSpec, "k7")
	if err != nil || pl.Node != "b" {
		t.Fatalf("Submit(k7) = %+v, %v; want it on b, its bound node", pl, err)
	}
	if got := a.keys(); len(got) != 0 {
		t.Errorf("a got submissions %v, want none", got)
	}
	if _, err := NewPool(t.Context(), []NodeConfig{{Name: "a", Address: a.socket}}, WithBindings(map[string]string{"k": "zz"})); err == nil {
		t.Error("NewPool(binding to an unknown node) = nil error, want one")
	}
}

func TestNewPoolRefuses(t *testing.T) {
	for _, nodes := range [][]NodeConfig{
		{{Name: "", Address: "/x"}},
		{{Name: "a", Address: "/x"}, {Name: "a", Address: "/y"}},
		{{Name: " a", Address: "/x"}},
	} {
		if p, err := NewPool(t.Context(), nodes); err == nil {
			p.Close()
			t.Errorf("NewPool(%v) = nil error, want one", nodes)
		}
	}
}
