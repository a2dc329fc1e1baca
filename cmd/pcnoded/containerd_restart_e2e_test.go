package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage/pattern"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Shape of TestIntegrationContainerdRestart's workload: crRunning tasks run
// (resources.max_concurrent) and as many are queued when containerd goes
// away. The running ones wait for a file in their input channel "go": the
// first crExitEarly for crEarly, which the test writes once containerd is
// down, so they exit during the outage; the others for crLate, written once
// containerd is back. (Waiting for files rather than sleeping keeps the
// shape however slowly a loaded machine submits and starts them.) Task i
// exits with code i%7, prints known lines and writes crOutputBytes(i)
// pattern bytes into output channel "out".
const (
	crRunning    = 10
	crQueued     = 10
	crExitEarly  = 5
	crEarly      = "early"
	crLate       = "late"
	crWaitMax    = "5m"
	crQuickSleep = "1s" // tasks queued at the outage
	crOutage     = 10 * time.Second
)

func crOutputBytes(i int) int64 { return int64(1000*i + 17) }

// crWantStdout is task i's whole stdout.
func crWantStdout(i int) []byte {
	return append(append([]byte(fmt.Sprintf("task-%d begin\n", i)), pattern.Bytes(2048+int64(i))...), fmt.Sprintf("task-%d end\n", i)...)
}

// crSpec is task i: an inline template of the test program with output
// channel out bound to outDir.
func crSpec(img string, i int, outDir, goDir string) *pcnodev1.TaskSpec {
	wait := "sleep " + crQuickSleep
	switch {
	case i < crExitEarly:
		wait = "wait-file /data/go/" + crEarly + " " + crWaitMax
	case i < crRunning:
		wait = "wait-file /data/go/" + crLate + " " + crWaitMax
	}
	steps := fmt.Sprintf("echo task-%d begin -- write-file /data/out/result-%d.bin %d -- %s -- write-stdout %d -- echo task-%d end -- exit %d",
		i, i, crOutputBytes(i), wait, 2048+i, i, i%7)
	tmpl := &pcnodev1.TaskTemplate{
		Identifier: "containerd-restart",
		Command:    append([]string{"/pctest"}, strings.Fields(steps)...),
		Inputs:     []*pcnodev1.ChannelTemplate{{Name: "go", MountedPath: "/data/go"}},
		Outputs:    []*pcnodev1.ChannelTemplate{{Name: "out", MountedPath: "/data/out"}},
	}
	return &pcnodev1.TaskSpec{
		Name:     fmt.Sprintf("cr-%d", i),
		Image:    img,
		Template: &pcnodev1.TaskSpec_InlineTemplate{InlineTemplate: tmpl},
		Inputs:   []*pcnodev1.ChannelBinding{e2eBind("go", goDir)},
		Outputs:  []*pcnodev1.ChannelBinding{e2eBind("out", outDir)},
		Labels:   map[string]string{"test": "containerd-restart"},
	}
}

// crNodeWatch collects WatchNode messages until the test ends.
type crNodeWatch struct {
	mu   sync.Mutex
	msgs []*pcnodev1.WatchNodeResponse
}

func crWatchNode(t *testing.T, d *daemontest.Daemon) *crNodeWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := d.Client.Nodes.WatchNode(ctx, &pcnodev1.WatchNodeRequest{})
	if err != nil {
		cancel()
		t.Fatalf("WatchNode = %v", err)
	}
	// The first message (INITIAL) comes once the stream is subscribed to
	// changes.
	first, err := stream.Recv()
	if err != nil {
		cancel()
		t.Fatalf("WatchNode first message = %v", err)
	}
	w := &crNodeWatch{msgs: []*pcnodev1.WatchNodeResponse{first}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := stream.Recv()
			if err != nil {
				return
			}
			w.mu.Lock()
			w.msgs = append(w.msgs, m)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// sawContainerd reports whether a NODE_CHANGE_CONDITION message showed
// CONTAINERD_READY with ok.
func (w *crNodeWatch) sawContainerd(ok bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.msgs {
		if m.GetChange() != pcnodev1.NodeChange_NODE_CHANGE_CONDITION {
			continue
		}
		if c := crCondition(m.GetNode()); c != nil && c.GetOk() == ok {
			return true
		}
	}
	return false
}

// crCondition returns n's CONTAINERD_READY condition, failing nothing.
func crCondition(n *pcnodev1.Node) *pcnodev1.NodeCondition {
	for _, c := range n.GetConditions() {
		if c.GetType() == pcnodev1.NodeConditionType_NODE_CONDITION_TYPE_CONTAINERD_READY {
			return c
		}
	}
	return nil
}

// crWaitContainerdCondition polls GetNode until CONTAINERD_READY is ok (or
// not), and checks both condition types are there.
func crWaitContainerdCondition(t *testing.T, d *daemontest.Daemon, ok bool, within time.Duration) *pcnodev1.Node {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		resp, err := d.Client.Nodes.GetNode(ctx, &pcnodev1.GetNodeRequest{})
		cancel()
		if err != nil {
			t.Fatalf("GetNode = %v, want an answer also while containerd is down", err)
		}
		n := resp.GetNode()
		if len(n.GetConditions()) != 2 {
			t.Fatalf("GetNode conditions = %v, want CONTAINERD_READY and GPUS_KNOWN", n.GetConditions())
		}
		if c := crCondition(n); c != nil && c.GetOk() == ok {
			if !ok && c.GetMessage() == "" {
				t.Errorf("CONTAINERD_READY ok=false without a message")
			}
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("GetNode CONTAINERD_READY = %v after %v, want ok=%v", crCondition(n), within, ok)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// crWantUnavailable checks that calls needing containerd fail with
// UNAVAILABLE naming containerd and its address: a submit (its image must
// be looked up) and ListImages; and that those that do not still answer:
// task id's record and log.
func crWantUnavailable(t *testing.T, d *daemontest.Daemon, img, address, id string) {
	t.Helper()
	if got := d.GetTask(t, id); got.GetState() != pcnodev1.TaskState_TASK_STATE_RUNNING {
		t.Errorf("task %s is %v while containerd is down, want RUNNING as it was", id, got.GetState())
	}
	if out := daemontest.Output(d.TaskLogs(t, id), pcnodev1.LogStream_LOG_STREAM_STDOUT); !bytes.HasPrefix(out, []byte("task-")) {
		t.Errorf("task %s log while containerd is down = %q, want its first line", id, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := d.Client.Tasks.SubmitTask(ctx, &pcnodev1.SubmitTaskRequest{Spec: e2eSpec(img, "steps", "PCTEST_STEPS=echo never")})
	msg := e2eWantCode(t, "SubmitTask while containerd is down", err, codes.Unavailable)
	if !bytes.Contains([]byte(msg), []byte(address)) || !bytes.Contains([]byte(msg), []byte("containerd")) {
		t.Errorf("SubmitTask while containerd is down: message %q, want containerd and %s named", msg, address)
	}
	_, err = d.Client.Images.ListImages(ctx, &pcnodev1.ListImagesRequest{})
	e2eWantCode(t, "ListImages while containerd is down", err, codes.Unavailable)
}

// crWaitStates polls until n tasks are RUNNING and the rest QUEUED.
func crWaitStates(t *testing.T, d *daemontest.Daemon, ids []string, running int) map[string]*pcnodev1.Task {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		byID := map[string]*pcnodev1.Task{}
		nRun, nQueued := 0, 0
		for _, id := range ids {
			task := d.GetTask(t, id)
			byID[id] = task
			switch task.GetState() {
			case pcnodev1.TaskState_TASK_STATE_RUNNING:
				nRun++
			case pcnodev1.TaskState_TASK_STATE_QUEUED:
				nQueued++
			}
		}
		if nRun == running && nQueued == len(ids)-running {
			return byID
		}
		if time.Now().After(deadline) {
			var others []string
			for i, id := range ids {
				if st := byID[id].GetState(); st != pcnodev1.TaskState_TASK_STATE_RUNNING && st != pcnodev1.TaskState_TASK_STATE_QUEUED {
					others = append(others, fmt.Sprintf("task %d %v (%v) %q", i, st, byID[id].GetReason(), byID[id].GetMessage()))
				}
			}
			t.Fatalf("after 60s %d running and %d queued, want %d and %d; the others: %s", nRun, nQueued, running, len(ids)-running, strings.Join(others, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestIntegrationContainerdRestart keeps a node's work through containerd
// going away, with crRunning tasks running and crQueued queued: containerd
// stopped for crOutage and started again; containerd and pcnoded killed
// together and both started again; containerd stopped and pcnoded
// restarted while it is down. Every task finishes with its exact exit code,
// its whole log exactly once, and its output manifest; none is LOST, none
// started twice (the running ones keep their start_time); the node said
// containerd was down meanwhile. While containerd is down a submit is
// refused with UNAVAILABLE (its image cannot be looked up), not queued.
func TestIntegrationContainerdRestart(t *testing.T) {
	tests := []struct {
		name string
		// fault takes containerd (and maybe pcnoded) away and brings it
		// back, checking what the node says meanwhile.
		fault func(t *testing.T, d *daemontest.Daemon, c *daemontest.ContainerdProc, img, running string, release func(string))
	}{
		{name: "containerd stopped and started", fault: func(t *testing.T, d *daemontest.Daemon, c *daemontest.ContainerdProc, img, running string, release func(string)) {
			w := crWatchNode(t, d)
			begin := time.Now()
			c.Stop(t)
			crWaitContainerdCondition(t, d, false, 8*time.Second)
			release(crEarly)
			crWantUnavailable(t, d, img, c.Address, running)
			time.Sleep(crOutage - time.Since(begin))
			c.Start(t)
			crWaitContainerdCondition(t, d, true, 10*time.Second)
			deadline := time.Now().Add(5 * time.Second)
			for !(w.sawContainerd(false) && w.sawContainerd(true)) {
				if time.Now().After(deadline) {
					t.Fatalf("WatchNode: no NODE_CHANGE_CONDITION with CONTAINERD_READY false and then true")
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
		{name: "containerd and pcnoded killed", fault: func(t *testing.T, d *daemontest.Daemon, c *daemontest.ContainerdProc, img, running string, release func(string)) {
			d.Kill(t)
			c.Kill(t)
			release(crEarly)
			time.Sleep(crOutage)
			c.Start(t)
			d.Restart(t)
		}},
		{name: "pcnoded restarted while containerd is down", fault: func(t *testing.T, d *daemontest.Daemon, c *daemontest.ContainerdProc, img, running string, release func(string)) {
			begin := time.Now()
			c.Stop(t)
			crWaitContainerdCondition(t, d, false, 8*time.Second)
			release(crEarly)
			d.Restart(t)
			crWaitContainerdCondition(t, d, false, time.Second)
			crWantUnavailable(t, d, img, c.Address, running)
			w := crWatchNode(t, d)
			time.Sleep(crOutage - time.Since(begin))
			c.Start(t)
			crWaitContainerdCondition(t, d, true, 10*time.Second)
			deadline := time.Now().Add(5 * time.Second)
			for !w.sawContainerd(true) {
				if time.Now().After(deadline) {
					t.Fatalf("WatchNode: no NODE_CHANGE_CONDITION with CONTAINERD_READY true when containerd came back")
				}
				time.Sleep(50 * time.Millisecond)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := daemontest.StartContainerd(t)
			d := daemontest.Start(t, daemontest.Options{
				Containerd: c,
				Configure:  func(cfg *config.Config) { cfg.Resources.MaxConcurrent = crRunning },
			})
			img := e2eTestImage(t, d).GetName()
			ids := make([]string, crRunning+crQueued)
			outDirs := make([]string, len(ids))
			goDir := d.DataDir(t, "go")
			release := func(name string) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(goDir, name), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for i := range ids {
				outDirs[i] = d.DataDir(t, fmt.Sprintf("out-%d", i))
				ids[i] = d.Submit(t, crSpec(img, i, outDirs[i], goDir)).GetId()
			}
			before := crWaitStates(t, d, ids, crRunning)
			for i, id := range ids[:crRunning] { // admitted in submission order
				if st := before[id].GetState(); st != pcnodev1.TaskState_TASK_STATE_RUNNING {
					t.Fatalf("task %d is %v with %d running, want the first %d running", i, st, crRunning, crRunning)
				}
			}

			tt.fault(t, d, c, img, ids[crRunning-1], release) // sleeps through the outage; releases the early ones in it
			release(crLate)

			for i, id := range ids {
				final := d.WaitTask(t, id, 2*time.Minute)
				code := int32(i % 7)
				if code == 0 {
					e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
				} else {
					e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, code)
				}
				if b := before[id]; b.GetState() == pcnodev1.TaskState_TASK_STATE_RUNNING &&
					!final.GetStartTime().AsTime().Equal(b.GetStartTime().AsTime()) {
					t.Errorf("task %d start_time = %v, want the original %v: started twice?", i, final.GetStartTime().AsTime(), b.GetStartTime().AsTime())
				}

				entries := d.TaskLogs(t, id)
				lc := newE2ELogCheck()
				lc.feed(entries)
				if lc.err != nil {
					t.Errorf("task %d log: %v", i, lc.err)
				}
				if stdout := daemontest.Output(entries, pcnodev1.LogStream_LOG_STREAM_STDOUT); !bytes.Equal(stdout, crWantStdout(i)) {
					t.Errorf("task %d stdout = %d bytes (starts %q), want %d bytes: its lines and pattern exactly once", i, len(stdout), stdout[:min(len(stdout), 40)], len(crWantStdout(i)))
				}
				if len(lc.stderr) != 0 {
					t.Errorf("task %d stderr = %q, want none", i, lc.stderr)
				}

				want := &pcnodev1.OutputManifest{Name: "out", HostPath: outDirs[i], FileCount: 1, TotalBytes: crOutputBytes(i),
					Files: []*pcnodev1.OutputFile{{Path: fmt.Sprintf("result-%d.bin", i), SizeBytes: crOutputBytes(i), Sha256: pattern.SHA256(crOutputBytes(i))}}}
				if diff := cmp.Diff(want, e2eDiskManifest(t, "out", outDirs[i]), protocmp.Transform()); diff != "" {
					t.Errorf("task %d files on disk (-want +got):\n%s", i, diff)
				}
				outs, err := d.Client.Tasks.GetTaskOutputs(t.Context(), &pcnodev1.GetTaskOutputsRequest{TaskId: id})
				if err != nil {
					t.Fatalf("GetTaskOutputs(%s) = %v", id, client.FromError(err))
				}
				if len(outs.GetManifests()) != 1 {
					t.Errorf("task %d: %d manifests, want 1", i, len(outs.GetManifests()))
				} else if diff := cmp.Diff(want, outs.GetManifests()[0], protocmp.Transform(), protocmp.IgnoreFields(&pcnodev1.OutputManifest{}, "host_path")); diff != "" {
					t.Errorf("task %d manifest (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}
