package main

// End-to-end acceptance tests of issue 3: pcnoded run as a process
// (internal/daemontest) against the private containerd of `make test`,
// driven only through the v1 gRPC API. Each test starts its own daemon with
// its own state directory and containerd namespace. The test program in the
// images (internal/testimage/testprog) writes documented, deterministic
// bytes (internal/testimage/pattern), so every expectation below is computed
// without running anything.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	"github.com/pcnode/pcnode/internal/testimage/pattern"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// e2eSpec is a spec running template of image with env given as NAME=VALUE.
func e2eSpec(image, template string, env ...string) *pcnodev1.TaskSpec {
	s := &pcnodev1.TaskSpec{
		Name:     template,
		Image:    image,
		Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: template},
	}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		s.Env = append(s.Env, &pcnodev1.EnvVar{Name: k, Value: v})
	}
	return s
}

// e2eBind is a channel binding.
func e2eBind(name, hostPath string) *pcnodev1.ChannelBinding {
	return &pcnodev1.ChannelBinding{Name: name, HostPath: hostPath}
}

// e2eWantEnd fails t unless task ended in state with reason and exit code.
func e2eWantEnd(t *testing.T, task *pcnodev1.Task, state pcnodev1.TaskState, reason pcnodev1.TaskReason, exitCode int32) {
	t.Helper()
	if task.GetState() != state || task.GetReason() != reason || task.GetExitCode() != exitCode {
		t.Errorf("task %s (%s) ended %v/%v exit %d (%q), want %v/%v exit %d",
			task.GetId(), task.GetSpec().GetName(), task.GetState(), task.GetReason(), task.GetExitCode(), task.GetMessage(),
			state, reason, exitCode)
	}
	if task.GetFinishTime() == nil {
		t.Errorf("task %s: finish_time not set on a final task", task.GetId())
	}
}

// e2eTestImage imports the default test image and returns its name.
func e2eTestImage(t *testing.T, d *daemontest.Daemon) *pcnodev1.Image {
	t.Helper()
	return d.ImportImage(t, testimage.Image{})
}

// e2eDummyManifests are the manifests Kaapana's dummy upstream must yield,
// from the test program's documented output (pattern.DummyUpstream), by
// channel, files sorted by path.
func e2eDummyManifests() map[string]*pcnodev1.OutputManifest {
	m := map[string]*pcnodev1.OutputManifest{}
	for _, f := range pattern.DummyUpstream {
		om := m[f.Channel]
		if om == nil {
			om = &pcnodev1.OutputManifest{Name: f.Channel}
			m[f.Channel] = om
		}
		om.Files = append(om.Files, &pcnodev1.OutputFile{Path: f.Path, SizeBytes: f.Size, Sha256: pattern.SHA256(f.Size)})
		om.FileCount++
		om.TotalBytes += f.Size
	}
	for _, om := range m {
		slices.SortFunc(om.Files, func(a, b *pcnodev1.OutputFile) int { return strings.Compare(a.Path, b.Path) })
	}
	return m
}

// e2eDiskManifest lists the regular files under dir as a manifest, hashing
// them from disk.
func e2eDiskManifest(t *testing.T, name, dir string) *pcnodev1.OutputManifest {
	t.Helper()
	om := &pcnodev1.OutputManifest{Name: name, HostPath: dir}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		om.Files = append(om.Files, &pcnodev1.OutputFile{Path: filepath.ToSlash(rel), SizeBytes: int64(len(b)), Sha256: hex.EncodeToString(sum[:])})
		om.FileCount++
		om.TotalBytes += int64(len(b))
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	slices.SortFunc(om.Files, func(a, b *pcnodev1.OutputFile) int { return strings.Compare(a.Path, b.Path) })
	return om
}

// e2eStates lists the states of the state-change events, collapsing
// repeats of the same state.
func e2eStates(events []*pcnodev1.TaskEvent) []pcnodev1.TaskState {
	var out []pcnodev1.TaskState
	for _, ev := range events {
		if sc := ev.GetStateChange(); sc != nil && (len(out) == 0 || out[len(out)-1] != sc.GetState()) {
			out = append(out, sc.GetState())
		}
	}
	return out
}

// e2eWatch starts WatchTasks with labels; the function it returns waits
// (up to 30 s) until the watch has seen task id reach a final state and
// returns that task's events.
func e2eWatch(t *testing.T, d *daemontest.Daemon, labels map[string]string) func(id string) []*pcnodev1.TaskEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	stream, err := d.Client.Tasks.WatchTasks(ctx, &pcnodev1.WatchTasksRequest{Labels: labels})
	if err != nil {
		t.Fatalf("WatchTasks() = %v", client.FromError(err))
	}
	// The server subscribes when the request arrives; there is no message
	// to wait for, so give it a moment (the checks tolerate a late start).
	time.Sleep(200 * time.Millisecond)
	events := make(chan *pcnodev1.TaskEvent, 1024)
	go func() {
		defer close(events)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			events <- resp.GetEvent()
		}
	}()
	return func(id string) []*pcnodev1.TaskEvent {
		t.Helper()
		var got []*pcnodev1.TaskEvent
		timeout := time.After(30 * time.Second)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Errorf("WatchTasks ended before task %s finished", id)
					return got
				}
				if ev.GetTaskId() != id {
					continue
				}
				got = append(got, ev)
				if client.IsFinal(ev.GetStateChange().GetState()) {
					return got
				}
			case <-timeout:
				t.Errorf("WatchTasks: task %s not final after 30s; saw %v", id, e2eStates(got))
				return got
			}
		}
	}
}

func TestIntegrationKaapanaDummyFlow(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	img := d.ImportImage(t, testimage.Image{
		Name:                "pcnode.test/kaapana-dummy:1",
		ProcessingContainer: daemontest.KaapanaDummyProcessingContainer(),
	})
	ch1 := d.DataDir(t, "upstream", "channel1")
	ch2 := d.DataDir(t, "upstream", "channel2")
	// Kaapana requires outputs to start empty: a stale file must not survive
	// into the run or the manifest.
	if err := os.WriteFile(filepath.Join(ch1, "stale.txt"), []byte("from an earlier run\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	watch := e2eWatch(t, d, map[string]string{"flow": "dummy"})
	upSpec := e2eSpec(img.GetName(), "upstream", "TIME_SLEEP=0")
	upSpec.Labels = map[string]string{"flow": "dummy"}
	upSpec.Outputs = []*pcnodev1.ChannelBinding{e2eBind("channel1", ch1), e2eBind("channel2", ch2)}
	up, events := d.Run(t, upSpec)
	e2eWantEnd(t, up, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
	lifecycle := []pcnodev1.TaskState{
		pcnodev1.TaskState_TASK_STATE_QUEUED, pcnodev1.TaskState_TASK_STATE_PREPARING,
		pcnodev1.TaskState_TASK_STATE_RUNNING, pcnodev1.TaskState_TASK_STATE_SUCCEEDED,
	}
	if diff := cmp.Diff(lifecycle, e2eStates(events)); diff != "" {
		t.Errorf("RunTask(upstream) state changes (-want +got):\n%s", diff)
	}
	if last := events[len(events)-1].GetStateChange(); last.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
		t.Errorf("RunTask(upstream) last event = %v, want the final state change", events[len(events)-1])
	}
	// WatchTasks may have started late, but what it saw is the lifecycle's
	// end, in order, down to the final state.
	if got := e2eStates(watch(up.GetId())); len(got) < 2 || !slices.Equal(got, lifecycle[len(lifecycle)-len(got):]) {
		t.Errorf("WatchTasks state changes of upstream = %v, want the end of %v including RUNNING", got, lifecycle)
	}
	if up.GetImageDigest() != img.GetDigest() {
		t.Errorf("upstream image_digest = %q, want the imported image's %q", up.GetImageDigest(), img.GetDigest())
	}
	if up.GetStartTime() == nil || up.GetCreateTime() == nil {
		t.Errorf("upstream create_time %v, start_time %v: want both set", up.GetCreateTime(), up.GetStartTime())
	}

	want := e2eDummyManifests()
	want["channel1"].HostPath, want["channel2"].HostPath = ch1, ch2
	// What is on disk is exactly what the test program is documented to write.
	for ch, dir := range map[string]string{"channel1": ch1, "channel2": ch2} {
		if diff := cmp.Diff(want[ch], e2eDiskManifest(t, ch, dir), protocmp.Transform()); diff != "" {
			t.Errorf("files in %s after upstream (-documented +on disk):\n%s", ch, diff)
		}
	}

	// GetTaskOutputs lists exactly those files.
	outs, err := d.Client.Tasks.GetTaskOutputs(t.Context(), &pcnodev1.GetTaskOutputsRequest{TaskId: up.GetId()})
	if err != nil {
		t.Fatalf("GetTaskOutputs(%s) = %v", up.GetId(), err)
	}
	got := map[string]*pcnodev1.OutputManifest{}
	for _, m := range outs.GetManifests() {
		got[m.GetName()] = m
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("GetTaskOutputs(upstream) manifests (-want +got):\n%s", diff)
	}

	// The task carries per-channel totals.
	var wantSummaries []*pcnodev1.OutputSummary
	for _, ch := range pattern.DummyChannels {
		wantSummaries = append(wantSummaries, &pcnodev1.OutputSummary{Name: ch, FileCount: want[ch].FileCount, TotalBytes: want[ch].TotalBytes})
	}
	sortSummaries := protocmp.SortRepeated(func(a, b *pcnodev1.OutputSummary) bool { return a.GetName() < b.GetName() })
	if diff := cmp.Diff(wantSummaries, up.GetOutputs(), protocmp.Transform(), sortSummaries); diff != "" {
		t.Errorf("upstream task outputs (-want +got):\n%s", diff)
	}

	// RunTask streamed each channel's manifest as an event.
	evManifests := map[string]*pcnodev1.OutputManifest{}
	for _, ev := range events {
		if m := ev.GetOutputManifest(); m != nil {
			evManifests[m.GetName()] = m
		}
	}
	if diff := cmp.Diff(want, evManifests, protocmp.Transform()); diff != "" {
		t.Errorf("RunTask(upstream) output_manifest events (-want +got):\n%s", diff)
	}

	// The task's log says what it wrote.
	upLog := string(daemontest.Output(d.TaskLogs(t, up.GetId()), pcnodev1.LogStream_LOG_STREAM_STDOUT))
	for _, f := range pattern.DummyUpstream {
		line := fmt.Sprintf("upstream: wrote %s/%s (%d bytes)\n", f.Channel, f.Path, f.Size)
		if !strings.Contains(upLog, line) {
			t.Errorf("upstream stdout lacks %q; got:\n%s", line, upLog)
		}
	}

	// Downstream reads upstream's outputs as its inputs.
	downSpec := e2eSpec(img.GetName(), "downstream", "TIME_SLEEP=0")
	downSpec.Inputs = []*pcnodev1.ChannelBinding{e2eBind("channel1", ch1), e2eBind("channel2", ch2)}
	down, _ := d.Run(t, downSpec)
	e2eWantEnd(t, down, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
	downLog := string(daemontest.Output(d.TaskLogs(t, down.GetId()), pcnodev1.LogStream_LOG_STREAM_STDOUT))
	for _, ch := range pattern.DummyChannels {
		for _, f := range want[ch].Files {
			line := fmt.Sprintf("%s/%s size=%d sha256=%s\n", ch, f.Path, f.SizeBytes, f.Sha256)
			if !strings.Contains(downLog, line) {
				t.Errorf("downstream stdout lacks %q; got:\n%s", line, downLog)
			}
		}
		line := fmt.Sprintf("downstream: %s files=%d bytes=%d\n", ch, want[ch].FileCount, want[ch].TotalBytes)
		if !strings.Contains(downLog, line) {
			t.Errorf("downstream stdout lacks %q; got:\n%s", line, downLog)
		}
	}
	// Inputs are mounted read-only and left as they were.
	for ch, dir := range map[string]string{"channel1": ch1, "channel2": ch2} {
		if diff := cmp.Diff(want[ch], e2eDiskManifest(t, ch, dir), protocmp.Transform()); diff != "" {
			t.Errorf("files in %s after downstream (-want +got):\n%s", ch, diff)
		}
	}
}
