package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationCLI drives a real pcnoded (and containerd) through
// pcnode-cli's commands the way an admin would: import an image, read its
// processing-container, run Kaapana task.json files with {{ env.NAME }}
// substituted (the exit status is the task's), read logs, list, get with
// outputs, cancel, and show the node.
func TestIntegrationCLI(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoRace: true, LogLevel: "info"})
	cli := func(args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, append([]string{"--address", d.Socket}, args...)...)
	}
	archive := testimage.Archive(t, testimage.Image{Name: "pcnode.test/cli:1"}, testimage.FormatDockerArchive)

	out, errOut, code := cli("image", "import", archive)
	if code != exitOK || !strings.Contains(out, "pcnode.test/cli:1") {
		t.Fatalf("image import = %d %q %q", code, out, errOut)
	}
	if out, _, code := cli("image", "ls"); code != exitOK || !strings.Contains(out, "pcnode.test/cli:1") {
		t.Errorf("image ls = %d %q, want the image", code, out)
	}
	if out, _, code := cli("pc", "pcnode.test/cli:1"); code != exitOK || !strings.Contains(out, "template exit") {
		t.Errorf("pc = %d %q, want its templates", code, out)
	}

	dir := t.TempDir()
	task := func(name, template string, env map[string]string) string {
		var envs []string
		for k, v := range env {
			envs = append(envs, fmt.Sprintf(`{"name": %q, "value": %q}`, k, v))
		}
		p := filepath.Join(dir, name+".json")
		body := fmt.Sprintf(`{"name": %q, "image": "{{ env.CLI_IMAGE }}", "taskTemplate": %q, "inputs": [], "outputs": [], "env": [%s]}`,
			name, template, strings.Join(envs, ","))
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("CLI_IMAGE", "pcnode.test/cli:1")

	// run: logs on stdout, exit status = the task's exit code.
	out, errOut, code = cli("run", task("three", "steps", map[string]string{"PCTEST_STEPS": "echo hello from the task -- exit 3"}))
	if code != 3 || !strings.Contains(out, "hello from the task") {
		t.Errorf("run (exit 3) = exit %d, stdout %q, stderr %q; want exit 3 and the task's output", code, out, errOut)
	}
	if out, _, code := cli("run", "-q", task("ok", "exit", map[string]string{"CODE": "0"})); code != exitOK {
		t.Errorf("run (exit 0) = exit %d %q, want 0", code, out)
	}

	// submit + list + get + logs.
	out, errOut, code = cli("submit", task("sub", "steps", map[string]string{"PCTEST_STEPS": "echo submitted"}))
	id := strings.TrimSpace(out)
	if code != exitOK || len(id) != 26 {
		t.Fatalf("submit = %d %q %q, want a task id", code, out, errOut)
	}
	if _, _, code := cli("run", "--attach", id); code != exitOK {
		t.Errorf("run --attach %s = exit %d, want 0", id, code)
	}
	if out, _, code := cli("logs", id); code != exitOK || out != "submitted\n" {
		t.Errorf("logs %s = %d %q, want %q", id, code, out, "submitted\n")
	}
	out, _, code = cli("list", "-o", "json", "--state", "failed")
	var listed struct {
		Tasks []struct {
			Spec struct{ Name string } `json:"spec"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(out), &listed); code != exitOK || err != nil || len(listed.Tasks) != 1 || listed.Tasks[0].Spec.Name != "three" {
		t.Errorf("list --state failed = %d %q (%v), want just the task named three", code, out, err)
	}
	if out, _, code := cli("get", id); code != exitOK || !strings.Contains(out, "succeeded") {
		t.Errorf("get %s = %d %q", id, code, out)
	}

	// cancel a long task.
	out, _, _ = cli("submit", task("long", "steps", map[string]string{"PCTEST_STEPS": "sleep 60s"}))
	long := strings.TrimSpace(out)
	d.WaitState(t, long, pcnodev1.TaskState_TASK_STATE_RUNNING, 0)
	if _, errOut, code := cli("cancel", "--grace", "1s", long); code != exitOK {
		t.Errorf("cancel = %d %q", code, errOut)
	}
	if got := d.WaitTask(t, long, 0).GetState().String(); got != "TASK_STATE_CANCELLED" {
		t.Errorf("after cancel, task is %s, want CANCELLED", got)
	}

	// Errors are clear and exit 1: an unknown task, a bad spec.
	if _, errOut, code := cli("get", "01M89HD3WXN8V5B8AE3ZVY9HSG"); code != exitInvalid || !strings.Contains(errOut, "not found") {
		t.Errorf("get unknown = %d %q, want exit 1 and not found", code, errOut)
	}
	if _, errOut, code := cli("run", task("bad", "no-such-template", nil)); code != exitInvalid || !strings.Contains(errOut, "template") {
		t.Errorf("run with an unknown template = %d %q, want exit 1 naming the template", code, errOut)
	}

	if out, _, code := cli("node"); code != exitOK || !strings.Contains(out, "allocatable:") {
		t.Errorf("node = %d %q", code, out)
	}
}
