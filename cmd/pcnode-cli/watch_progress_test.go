package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// lineWriter is a concurrency-safe buffer that closes enough once it holds
// n lines.
type lineWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	n      int
	enough chan struct{}
	once   sync.Once
}

func newLineWriter(n int) *lineWriter { return &lineWriter{n: n, enough: make(chan struct{})} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Count(w.buf.Bytes(), []byte("\n")) >= w.n {
		w.once.Do(func() { close(w.enough) })
	}
	return len(p), nil
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// watchCLI runs pcnode-cli watch until its stdout holds lines lines, then
// interrupts it as Ctrl-C would, and returns its output and exit status.
func watchCLI(t *testing.T, lines int, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := newLineWriter(lines), newLineWriter(1<<30)
	done := make(chan int, 1)
	go func() { done <- execute(ctx, args, out, errb) }()
	select {
	case <-out.enough:
		cancel()
	case code := <-done:
		return out.String(), errb.String(), code
	case <-time.After(10 * time.Second):
		t.Fatalf("watch printed %q in 10s, want %d lines", out.String(), lines)
	}
	return out.String(), errb.String(), <-done
}

// TestWatchOverTLS checks watch's three outputs against the fake node:
// one JSON object per line (stable, parsed back), one line per change,
// and the live table on a terminal; Ctrl-C ends each with exit status 0.
func TestWatchOverTLS(t *testing.T) {
	fixClock(t)
	fx := startTLSNode(t)
	tasks := fixtureTasks()

	out, errOut, code := watchCLI(t, len(tasks), append(fx.flags(), "watch", "-o", "json")...)
	if code != exitOK {
		t.Fatalf("watch -o json = exit %d, stderr %q, want 0 after Ctrl-C", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(tasks) {
		t.Fatalf("watch -o json printed %d lines, want %d:\n%s", len(lines), len(tasks), out)
	}
	for i, l := range lines {
		var resp pcnodev1.WatchTasksResponse
		if err := protojson.Unmarshal([]byte(l), &resp); err != nil || resp.GetEvent().GetStateChange().GetId() != tasks[i].GetId() || resp.GetEvent().GetRevision() != uint64(i+1) {
			t.Errorf("watch -o json line %d = %s (%v), want task %s at revision %d", i, l, err, tasks[i].GetId(), i+1)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(l)); err != nil || compact.String() != l {
			t.Errorf("watch -o json line %d is not compact stable JSON: %s", i, l)
		}
	}
	if again, _, _ := watchCLI(t, len(tasks), append(fx.flags(), "watch", "-o", "json")...); again != out {
		t.Errorf("watch -o json differs between runs:\n%s\n---\n%s", out, again)
	}

	out, _, code = watchCLI(t, len(tasks), append(fx.flags(), "watch")...)
	var want strings.Builder
	for i, tk := range tasks {
		want.WriteString(watchLine(&pcnodev1.TaskEvent{TaskId: tk.GetId(), Time: ts(0), Revision: uint64(i + 1), Event: &pcnodev1.TaskEvent_StateChange{StateChange: tk}}))
	}
	if code != exitOK || out != want.String() {
		t.Errorf("watch (not a terminal) = exit %d:\n%s\nwant:\n%s", code, out, want.String())
	}

	// On a terminal: the table, redrawn; the last frame holds every task.
	old := isTerminal
	isTerminal = func(_ any) bool { return true }
	defer func() { isTerminal = old }()
	out, _, code = watchCLI(t, 2+1+len(tasks)+1, append(fx.flags(), "watch")...) // an empty frame, then the full one
	frames := strings.Split(out, "\x1b[H\x1b[2J")
	last := frames[len(frames)-1]
	var table bytes.Buffer
	m := map[string]*pcnodev1.Task{}
	for _, tk := range tasks {
		m[tk.GetId()] = tk
	}
	renderWatchTable(&table, m, watchMaxRows)
	if code != exitOK || len(frames) < 3 || last != table.String() {
		t.Errorf("watch on a terminal = exit %d, %d frames, last:\n%s\nwant:\n%s", code, len(frames)-1, last, table.String())
	}
}

// TestPullProgress checks image pull's progress: aggregated over the whole
// image, as plain lines on stderr when stdout is not a terminal and as a
// progress bar on a terminal; stdout ends with the image either way.
func TestPullProgress(t *testing.T) {
	fx := startTLSNode(t)
	out, errOut, code := runCLI(t, append(fx.flags(), "image", "pull", "pcnode.test/cli:1")...)
	img := fixtureImages()[1]
	if code != exitOK || out != img.GetName()+" "+img.GetDigest()+"\n" {
		t.Fatalf("image pull = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// 4 MiB + 1 KiB over three blobs, counted as one image: a line at
	// each change of status and each quarter.
	want := "pull pcnode.test/cli:1: waiting 0 B of 1 KiB (0%)\n" +
		"pull pcnode.test/cli:1: downloading 1 MiB of 4 MiB (24%)\n" +
		"pull pcnode.test/cli:1: downloading 1.5 MiB of 4 MiB (37%)\n" +
		"pull pcnode.test/cli:1: downloading 2.5 MiB of 4 MiB (62%)\n" +
		"pull pcnode.test/cli:1: done 3 MiB of 4 MiB (75%)\n" +
		"pull pcnode.test/cli:1: done 4 MiB of 4 MiB (100%)\n"
	if errOut != want {
		t.Errorf("image pull progress lines:\n%s\nwant:\n%s", errOut, want)
	}
	if out, errOut, _ := runCLI(t, append(fx.flags(), "-o", "json", "image", "pull", "pcnode.test/cli:1")...); errOut != "" || !strings.Contains(out, `"digest"`) {
		t.Errorf("image pull -o json = stdout %q, stderr %q; want JSON and no progress", out, errOut)
	}

	old := isTerminal
	isTerminal = func(_ any) bool { return true }
	defer func() { isTerminal = old }()
	out, errOut, code = runCLI(t, append(fx.flags(), "image", "pull", "pcnode.test/cli:1")...)
	if code != exitOK || errOut != "" || !strings.Contains(out, "pull pcnode.test/cli:1 done 4 MiB / 4 M") ||
		!strings.HasSuffix(out, img.GetName()+" "+img.GetDigest()+"\n") {
		t.Errorf("image pull on a terminal = exit %d, stdout %q, stderr %q; want a bar ending at done 4 MiB / 4 MiB, then the image", code, out, errOut)
	}
}
