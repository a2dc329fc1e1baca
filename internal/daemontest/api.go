package daemontest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// importChunk is the size of one ImportImage chunk (the API allows 4 MiB).
const importChunk = 1 << 20

// WaitTimeout is how long the wait helpers wait unless told otherwise.
const WaitTimeout = 2 * time.Minute

// BuildImage builds img with testimage, failing t on error.
func BuildImage(t testing.TB, img testimage.Image) *testimage.Built {
	t.Helper()
	b, err := testimage.Build(t.Context(), img)
	if err != nil {
		t.Fatalf("testimage.Build(%q) = %v", img.Name, err)
	}
	return b
}

// ImportImage builds img and imports it through ImageService.ImportImage as
// an OCI archive; it returns the imported image named like img.
func (d *Daemon) ImportImage(t testing.TB, img testimage.Image) *pcnodev1.Image {
	t.Helper()
	return d.ImportBuilt(t, BuildImage(t, img), testimage.FormatOCI)
}

// ImportBuilt imports b in format f through ImageService.ImportImage,
// streamed in 1 MiB chunks, and returns the image named b.Name.
func (d *Daemon) ImportBuilt(t testing.TB, b *testimage.Built, f testimage.Format) *pcnodev1.Image {
	t.Helper()
	var archive bytes.Buffer
	if err := b.Write(&archive, f); err != nil {
		t.Fatalf("write %s archive of %s: %v", f, b.Name, err)
	}
	resp, err := d.ImportArchive(t.Context(), archive.Bytes(), f)
	if err != nil {
		t.Fatalf("ImportImage(%s, %s) = %v", b.Name, f, err)
	}
	for _, img := range resp.GetImages() {
		if img.GetName() == b.Name {
			return img
		}
	}
	t.Fatalf("ImportImage(%s, %s) = %v, want an image named %s", b.Name, f, resp.GetImages(), b.Name)
	return nil
}

// ImportArchive streams archive through ImageService.ImportImage.
func (d *Daemon) ImportArchive(ctx context.Context, archive []byte, f testimage.Format) (*pcnodev1.ImportImageResponse, error) {
	format := pcnodev1.ArchiveFormat_ARCHIVE_FORMAT_OCI
	if f == testimage.FormatDockerArchive {
		format = pcnodev1.ArchiveFormat_ARCHIVE_FORMAT_DOCKER
	}
	stream, err := d.Client.Images.ImportImage(ctx)
	if err != nil {
		return nil, client.FromError(err)
	}
	if err := stream.Send(&pcnodev1.ImportImageRequest{Part: &pcnodev1.ImportImageRequest_Metadata{
		Metadata: &pcnodev1.ImportImageMetadata{Format: format, SizeBytes: int64(len(archive))},
	}}); err != nil {
		return nil, client.FromError(err)
	}
	for off := 0; off < len(archive); off += importChunk {
		chunk := archive[off:min(off+importChunk, len(archive))]
		if err := stream.Send(&pcnodev1.ImportImageRequest{Part: &pcnodev1.ImportImageRequest_Chunk{Chunk: chunk}}); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the stream; CloseAndRecv has its status
			}
			return nil, client.FromError(err)
		}
	}
	resp, err := stream.CloseAndRecv()
	return resp, client.FromError(err)
}

// DataDir returns the directory rel under the first data root, created.
func (d *Daemon) DataDir(t testing.TB, rel ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{d.DataRoots[0]}, rel...)...)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatalf("daemontest: %v", err)
	}
	return p
}

// DataPath returns the path rel under the first data root, not created.
func (d *Daemon) DataPath(rel ...string) string {
	return filepath.Join(append([]string{d.DataRoots[0]}, rel...)...)
}

// Submit submits spec through SubmitTask and returns the task.
func (d *Daemon) Submit(t testing.TB, spec *pcnodev1.TaskSpec) *pcnodev1.Task {
	t.Helper()
	resp, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: spec})
	if err != nil {
		t.Fatalf("SubmitTask(%q) = %v", spec.GetName(), client.FromError(err))
	}
	return resp.GetTask()
}

// Run submits spec through RunTask, follows it to the end and returns the
// final task with every event received. It fails t when the stream fails
// or the task does not finish within WaitTimeout.
func (d *Daemon) Run(t testing.TB, spec *pcnodev1.TaskSpec) (*pcnodev1.Task, []*pcnodev1.TaskEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), WaitTimeout)
	defer cancel()
	var events []*pcnodev1.TaskEvent
	task, err := d.Client.Run(ctx, &pcnodev1.RunTaskRequest{
		Target: &pcnodev1.RunTaskRequest_Submit{Submit: &pcnodev1.SubmitTaskRequest{Spec: spec}},
	}, func(ev *pcnodev1.TaskEvent) error {
		events = append(events, ev)
		return nil
	})
	if err != nil {
		t.Fatalf("RunTask(%q) = %v (last task state %v)", spec.GetName(), err, task.GetState())
	}
	if !client.IsFinal(task.GetState()) {
		t.Fatalf("RunTask(%q) ended with task in %v, want a final state", spec.GetName(), task.GetState())
	}
	return task, events
}

// GetTask returns the task with id.
func (d *Daemon) GetTask(t testing.TB, id string) *pcnodev1.Task {
	t.Helper()
	resp, err := d.Client.Tasks.GetTask(t.Context(), &pcnodev1.GetTaskRequest{TaskId: id})
	if err != nil {
		t.Fatalf("GetTask(%q) = %v", id, client.FromError(err))
	}
	return resp.GetTask()
}

// WaitTask polls GetTask until the task is final and returns it; it fails t
// after timeout (0: WaitTimeout).
func (d *Daemon) WaitTask(t testing.TB, id string, timeout time.Duration) *pcnodev1.Task {
	t.Helper()
	return d.waitFor(t, id, timeout, "a final state", func(task *pcnodev1.Task) bool {
		return client.IsFinal(task.GetState())
	})
}

// WaitState polls GetTask until the task is in state and returns it; it
// fails t when the task is final in another state or after timeout (0:
// WaitTimeout).
func (d *Daemon) WaitState(t testing.TB, id string, state pcnodev1.TaskState, timeout time.Duration) *pcnodev1.Task {
	t.Helper()
	task := d.waitFor(t, id, timeout, state.String(), func(task *pcnodev1.Task) bool {
		return task.GetState() == state || client.IsFinal(task.GetState())
	})
	if task.GetState() != state {
		t.Fatalf("task %s: state %v (reason %v, %q), want %v", id, task.GetState(), task.GetReason(), task.GetMessage(), state)
	}
	return task
}

func (d *Daemon) waitFor(t testing.TB, id string, timeout time.Duration, what string, done func(*pcnodev1.Task) bool) *pcnodev1.Task {
	t.Helper()
	if timeout <= 0 {
		timeout = WaitTimeout
	}
	deadline := time.Now().Add(timeout)
	for {
		task := d.GetTask(t, id)
		if done(task) {
			return task
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: still %v after %v, want %s", id, task.GetState(), timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TaskLogs returns every log entry of the task (StreamLogs without follow).
func (d *Daemon) TaskLogs(t testing.TB, id string) []*pcnodev1.LogEntry {
	t.Helper()
	entries, err := d.StreamLogs(t.Context(), &pcnodev1.StreamLogsRequest{TaskId: id}, nil)
	if err != nil {
		t.Fatalf("StreamLogs(%q) = %v", id, err)
	}
	return entries
}

// StreamLogs runs StreamLogs with req and collects its entries until the
// stream ends; fn, when set, sees each batch and may stop early by returning
// false (the stream is then cancelled and the entries so far returned).
func (d *Daemon) StreamLogs(ctx context.Context, req *pcnodev1.StreamLogsRequest, fn func([]*pcnodev1.LogEntry) bool) ([]*pcnodev1.LogEntry, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := d.Client.Tasks.StreamLogs(ctx, req)
	if err != nil {
		return nil, client.FromError(err)
	}
	var all []*pcnodev1.LogEntry
	for {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return all, nil
		}
		if err != nil {
			return all, client.FromError(err)
		}
		all = append(all, resp.GetEntries()...)
		if fn != nil && !fn(resp.GetEntries()) {
			return all, nil
		}
	}
}

// Output concatenates the data of entries from stream (UNSPECIFIED: all).
func Output(entries []*pcnodev1.LogEntry, stream pcnodev1.LogStream) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		if stream == pcnodev1.LogStream_LOG_STREAM_UNSPECIFIED || e.GetStream() == stream {
			b.Write(e.GetData())
		}
	}
	return b.Bytes()
}

// WaitLog follows the task's log until it contains want; it fails t when
// the stream ends first or after timeout (0: WaitTimeout).
func (d *Daemon) WaitLog(t testing.TB, id, want string, timeout time.Duration) {
	t.Helper()
	if timeout <= 0 {
		timeout = WaitTimeout
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var seen bytes.Buffer
	found := false
	_, err := d.StreamLogs(ctx, &pcnodev1.StreamLogsRequest{TaskId: id, Follow: true}, func(es []*pcnodev1.LogEntry) bool {
		for _, e := range es {
			seen.Write(e.GetData())
		}
		found = strings.Contains(seen.String(), want)
		return !found
	})
	if !found {
		t.Fatalf("task %s: log never contained %q (stream error %v); log so far:\n%s", id, want, err, tail(seen.String(), 4096))
	}
}
