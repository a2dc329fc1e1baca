package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/errdefs"
	"github.com/containerd/typeurl/v2"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/pcnode/pcnode/daemon"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	"github.com/pcnode/pcnode/internal/testimage/pattern"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// crashPC is the processing-container of the crash-point test's image: one
// template that prints two known stdout lines and known stderr bytes,
// writes a known output file and exits 3.
const crashPC = `{
  "name": "pcnode-crash-test",
  "api_version": 1,
  "description": "crash-point test",
  "templates": [
    {
      "identifier": "crash",
      "description": "known logs, one output file, exit 3",
      "env": [
        {"name": "PCTEST_STEPS", "value": "echo crash stdout one -- echo crash stdout two -- write-stderr 300 -- write-file /data/out/result.bin 4096 -- exit 3", "type": "string", "adjustable": false, "description": "fixed"}
      ],
      "inputs": [],
      "outputs": [{"name": "out", "mounted_path": "/data/out", "description": "one pattern file"}],
      "command": ["/pctest"]
    }
  ]
}`

// containerEvents counts, per container id, what containerd reports of it.
type containerEvents struct {
	mu                       sync.Mutex
	created, started, delete map[string]int
}

func (e *containerEvents) counts(id string) (created, started, deleted int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.created[id], e.started[id], e.delete[id]
}

// watchContainerEvents subscribes to containerd's events in d's namespace
// until t ends.
func watchContainerEvents(t *testing.T, d *daemontest.Daemon) *containerEvents {
	ctx, c := d.Containerd(t)
	ctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	evs := &containerEvents{created: map[string]int{}, started: map[string]int{}, delete: map[string]int{}}
	ch, errc := c.Subscribe(ctx, `namespace==`+d.Namespace)
	ready := make(chan struct{})
	go func() {
		close(ready)
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-errc:
				if err != nil && ctx.Err() == nil {
					t.Errorf("containerd events: %v", err)
				}
				return
			case env := <-ch:
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				evs.mu.Lock()
				switch e := v.(type) {
				case *apievents.ContainerCreate:
					evs.created[e.ID]++
				case *apievents.TaskStart:
					evs.started[e.ContainerID]++
				case *apievents.ContainerDelete:
					evs.delete[e.ID]++
				}
				evs.mu.Unlock()
			}
		}
	}()
	<-ready
	return evs
}

// TestIntegrationCrashPoints kills pcnoded (a build with the crashpoints
// tag) at every crash point of the task lifecycle, starts it again without
// the crash and checks that the task ends exactly as it does without one:
// FAILED/NONZERO_EXIT with exit code 3, byte-exact logs, the right output
// manifest, its process started exactly once (containerd's /tasks/start
// events) and no container left behind.
func TestIntegrationCrashPoints(t *testing.T) {
	points := daemon.CrashPoints()
	if len(points) < 10 {
		t.Fatalf("daemon.CrashPoints() = %q: want the lifecycle's points", points)
	}
	d := daemontest.Start(t, daemontest.Options{CrashPoints: true, NoRace: true})
	img := d.ImportImage(t, testimage.Image{Name: "pcnode.test/crash:1", ProcessingContainer: []byte(crashPC)})
	evs := watchContainerEvents(t, d)
	wantStdout := "crash stdout one\ncrash stdout two\n"
	wantStderr := pattern.Bytes(300)
	wantFile := pattern.Bytes(4096)

	// "" is the run without a crash that every crash must match.
	for _, point := range append([]string{""}, points...) {
		name := point
		if name == "" {
			name = "no-crash"
		}
		t.Run(name, func(t *testing.T) {
			out := d.DataDir(t, "crash", name)
			if err := os.WriteFile(filepath.Join(out, "stale.txt"), []byte("from an earlier run\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			spec := e2eSpec(img.GetName(), "crash")
			spec.Outputs = []*pcnodev1.ChannelBinding{e2eBind("out", out)}
			var task *pcnodev1.Task
			if point != "" {
				marker := "crash point " + point + " reached"
				before := strings.Count(d.Logs(), marker)
				d.Env = []string{daemon.EnvCrashAt + "=" + point}
				d.Restart(t)
				// The task's steps run as soon as it is stored, and an early
				// point may kill pcnoded before its answer to SubmitTask has
				// left: the client then sees the connection end, as a real
				// one would, and finds the task by submitting again with the
				// same idempotency key once pcnoded is back.
				req := &pcnodev1.SubmitTaskRequest{Spec: spec, IdempotencyKey: "crash-" + name}
				resp, serr := d.Client.Tasks.SubmitTask(t.Context(), req)
				err := d.WaitExit(t, time.Minute)
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("pcnoded with %s=%s ended with %v, want killed by SIGKILL at the point", daemon.EnvCrashAt, point, err)
				}
				if got := strings.Count(d.Logs(), marker); got != before+1 {
					t.Fatalf("log says %q %d times, want once: the point was never reached", marker, got-before)
				}
				d.Env = nil
				d.Restart(t)
				if serr != nil {
					if resp, serr = d.Client.Tasks.SubmitTask(t.Context(), req); serr != nil || !resp.GetExisting() {
						t.Fatalf("SubmitTask again with the key after the crash = %v (existing %v), want the stored task", serr, resp.GetExisting())
					}
				}
				task = resp.GetTask()
			} else {
				task = d.Submit(t, spec)
			}
			id := task.GetId()
			final := d.WaitTask(t, id, time.Minute)
			e2eWantEnd(t, final, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskReason_TASK_REASON_NONZERO_EXIT, 3)
			if final.GetMessage() != "exited 3" {
				t.Errorf("task message = %q, want %q as without a crash", final.GetMessage(), "exited 3")
			}
			if final.GetStartTime() == nil || final.GetFinishTime().AsTime().Before(final.GetStartTime().AsTime()) {
				t.Errorf("start_time %v, finish_time %v: want both, in order", final.GetStartTime(), final.GetFinishTime())
			}

			var stdout, stderr bytes.Buffer
			for _, e := range d.TaskLogs(t, id) {
				switch e.GetStream() {
				case pcnodev1.LogStream_LOG_STREAM_STDOUT:
					stdout.Write(e.GetData())
				case pcnodev1.LogStream_LOG_STREAM_STDERR:
					stderr.Write(e.GetData())
				}
			}
			if stdout.String() != wantStdout {
				t.Errorf("stdout = %q, want %q", stdout.String(), wantStdout)
			}
			if !bytes.Equal(stderr.Bytes(), wantStderr) {
				t.Errorf("stderr = %d bytes %q, want the %d pattern bytes", stderr.Len(), stderr.Bytes(), len(wantStderr))
			}

			if got, err := os.ReadFile(filepath.Join(out, "result.bin")); err != nil || !bytes.Equal(got, wantFile) {
				t.Errorf("output result.bin = %d bytes, %v; want the 4096 pattern bytes", len(got), err)
			}
			if _, err := os.Stat(filepath.Join(out, "stale.txt")); !os.IsNotExist(err) {
				t.Errorf("stale.txt in the output after the task: %v, want it emptied", err)
			}
			outs, err := d.Client.Tasks.GetTaskOutputs(t.Context(), &pcnodev1.GetTaskOutputsRequest{TaskId: id})
			if err != nil {
				t.Fatalf("GetTaskOutputs(%s) = %v", id, err)
			}
			want := []*pcnodev1.OutputManifest{e2eDiskManifest(t, "out", out)}
			if diff := cmp.Diff(want, outs.GetManifests(), protocmp.Transform()); diff != "" {
				t.Errorf("GetTaskOutputs manifests (-on disk +got):\n%s", diff)
			}
			wantSum := []*pcnodev1.OutputSummary{{Name: "out", FileCount: 1, TotalBytes: 4096}}
			if diff := cmp.Diff(wantSum, final.GetOutputs(), protocmp.Transform()); diff != "" {
				t.Errorf("task outputs (-want +got):\n%s", diff)
			}

			// containerd's side: started once, and nothing left. A container
			// only created (crash inside the start) is deleted and created
			// again; its process never ran.
			wantCreated := 1
			if point == "after-container-created" {
				wantCreated = 2
			}
			ctx, c := d.Containerd(t)
			deadline := time.Now().Add(10 * time.Second)
			for {
				created, started, deleted := evs.counts(id)
				_, lerr := c.LoadContainer(ctx, id)
				gone := errdefs.IsNotFound(lerr)
				if created == wantCreated && started == 1 && deleted == created && gone {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("containerd events for %s: created %d, started %d, deleted %d, container gone %v (%v); want created %d, started 1, all deleted",
						id, created, started, deleted, gone, lerr, wantCreated)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
