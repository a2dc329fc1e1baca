package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationCLIWatchDrain drives a real pcnoded over its unix socket
// through the commands issue 8 adds: image import with plain progress
// lines, watch -o json following a task run with pcnode-cli run from
// queued to succeeded (every line stable JSON, states in order), node
// drain refusing a run with a message saying how to resume, and node
// resume admitting it again.
func TestIntegrationCLIWatchDrain(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoRace: true, LogLevel: "info"})
	cli := func(args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, append([]string{"--address", d.Socket}, args...)...)
	}
	archive := testimage.Archive(t, testimage.Image{Name: "pcnode.test/watch:1"}, testimage.FormatDockerArchive)
	out, errOut, code := cli("image", "import", archive)
	if code != exitOK || !strings.Contains(out, "pcnode.test/watch:1") ||
		!strings.Contains(errOut, "import "+archive+": sending") || !strings.Contains(errOut, "(100%)") {
		t.Fatalf("image import = exit %d, stdout %q, stderr %q; want the image and progress lines up to 100%%", code, out, errOut)
	}

	taskFile := filepath.Join(t.TempDir(), "task.json")
	if err := os.WriteFile(taskFile, []byte(`{"name": "watched", "image": "pcnode.test/watch:1", "taskTemplate": "steps",
		"inputs": [], "outputs": [], "env": [{"name": "PCTEST_STEPS", "value": "echo watched -- sleep 200ms"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}

	// watch -o json in the background, until it has seen the task finish.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wout, werr := newLineWriter(1<<30), newLineWriter(1<<30)
	watchDone := make(chan int, 1)
	go func() {
		watchDone <- execute(ctx, []string{"--address", d.Socket, "-o", "json", "watch"}, wout, werr)
	}()
	time.Sleep(300 * time.Millisecond) // the watch is subscribed before the task is submitted
	out, errOut, code = cli("run", taskFile)
	if code != exitOK || out != "watched\n" {
		t.Fatalf("run = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	id := ""
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(wout.String(), `"state":"TASK_STATE_SUCCEEDED"`) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-watchDone; code != exitOK {
		t.Errorf("watch after Ctrl-C = exit %d, stderr %q; want 0", code, werr.String())
	}
	var states []string
	for _, line := range strings.Split(strings.TrimSuffix(wout.String(), "\n"), "\n") {
		var resp pcnodev1.WatchTasksResponse
		if err := protojson.Unmarshal([]byte(line), &resp); err != nil {
			t.Fatalf("watch -o json line %q: %v", line, err)
		}
		if again, err := stableJSON(&resp, false); err != nil || strings.TrimSuffix(string(again), "\n") != line {
			t.Errorf("watch -o json line is not the stable encoding of itself:\n%s\n%s", line, again)
		}
		tk := resp.GetEvent().GetStateChange()
		if tk.GetSpec().GetName() != "watched" {
			continue
		}
		if id == "" {
			id = tk.GetId()
		}
		states = append(states, stateName(tk.GetState()))
	}
	if len(states) < 2 || states[0] != "queued" || states[len(states)-1] != "succeeded" || !strings.Contains(strings.Join(states, " "), "running") {
		t.Errorf("watch saw the task go %q, want queued … running … succeeded", states)
	}
	rank := map[string]int{"queued": 0, "preparing": 1, "running": 2, "succeeded": 3}
	for i := 1; i < len(states); i++ {
		if rank[states[i]] < rank[states[i-1]] {
			t.Errorf("watch saw the task go back from %s to %s (%q)", states[i-1], states[i], states)
		}
	}
	if out, _, code := cli("get", id); code != exitOK || !strings.Contains(out, "ran for:") {
		t.Errorf("get %s = exit %d, %q; want a human duration row", id, code, out)
	}

	// Drain: the node says it admits nothing, run is refused with advice.
	out, errOut, code = cli("node", "drain")
	if code != exitOK || !strings.Contains(out, "is draining: it admits no new tasks") {
		t.Fatalf("node drain = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = cli("-o", "json", "node")
	var n pcnodev1.Node
	if err := protojson.Unmarshal([]byte(out), &n); code != exitOK || err != nil || !n.GetDraining() {
		t.Errorf("node -o json after drain = exit %d, %v, draining %v; want draining", code, err, n.GetDraining())
	}
	if again, _, _ := cli("-o", "json", "node"); again != out {
		t.Errorf("node -o json differs between two calls:\n%s\n---\n%s", out, again)
	}
	_, errOut, code = cli("run", taskFile)
	if code != exitInvalid || !strings.Contains(errOut, "draining") || !strings.Contains(errOut, "pcnode-cli node resume") {
		t.Errorf("run on a draining node = exit %d, stderr %q; want exit 1 saying to run node resume", code, errOut)
	}
	out, errOut, code = cli("node", "resume")
	if code != exitOK || !strings.Contains(out, "admits tasks") {
		t.Fatalf("node resume = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out, errOut, code := cli("run", taskFile); code != exitOK || out != "watched\n" {
		t.Errorf("run after resume = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, _ = cli("node")
	for _, unit := range []string{"memory", "B,"} {
		if !strings.Contains(out, unit) {
			t.Errorf("node table %q lacks %q", out, unit)
		}
	}
	if strings.Contains(out, "Ki,") || strings.Contains(out, "Mi,") || strings.Contains(out, "Gi,") {
		t.Errorf("node table shows Kubernetes quantities, want human sizes:\n%s", out)
	}
}
