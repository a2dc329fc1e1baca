package daemontest

import (
	"io/fs"
	"os"
	"strings"
	"testing"

	containerd "github.com/containerd/containerd/v2/client"

	"github.com/pcnode/pcnode/internal/testenv"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationHarness checks the harness itself: the daemon serves on a
// private 0660 socket, imports and runs, survives Restart with its state,
// stops cleanly, and its namespace is gone after the test.
func TestIntegrationHarness(t *testing.T) {
	testenv.ContainerdAddress(t) // skip here, not only in the subtest
	var ns, addr string
	t.Run("run", func(t *testing.T) {
		d := Start(t, Options{NoRace: true})
		ns, addr = d.Namespace, d.ContainerdAddress
		fi, err := os.Stat(d.Socket)
		if err != nil {
			t.Fatalf("stat socket: %v", err)
		}
		if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
			t.Errorf("socket %s mode = %v, want a 0660 socket", d.Socket, fi.Mode())
		}
		img := d.ImportImage(t, testimage.Image{Name: "pcnode.test/harness:1"})
		if !strings.HasPrefix(img.GetDigest(), "sha256:") {
			t.Errorf("ImportImage digest = %q, want sha256:…", img.GetDigest())
		}
		task, _ := d.Run(t, &pcnodev1.TaskSpec{
			Image:    img.GetName(),
			Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "steps"},
			Env:      []*pcnodev1.EnvVar{{Name: "PCTEST_STEPS", Value: "echo hello"}},
		})
		if task.GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
			t.Fatalf("task %s = %v (%q), want SUCCEEDED", task.GetId(), task.GetState(), task.GetMessage())
		}
		if got := string(Output(d.TaskLogs(t, task.GetId()), pcnodev1.LogStream_LOG_STREAM_STDOUT)); got != "hello\n" {
			t.Errorf("task stdout = %q, want %q", got, "hello\n")
		}
		pid := d.PID()
		d.Restart(t)
		if d.PID() == pid || !d.Running() {
			t.Errorf("after Restart pid %d (was %d), running %v; want a new running process", d.PID(), pid, d.Running())
		}
		if got := d.GetTask(t, task.GetId()).GetState(); got != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
			t.Errorf("task after Restart = %v, want SUCCEEDED from the same state", got)
		}
		d.Stop(t)
		if d.Running() {
			t.Errorf("Running() after Stop = true")
		}
		if !strings.Contains(d.Logs(), "pcnoded serving") {
			t.Errorf("Logs() lacks the daemon's start line; got:\n%s", tail(d.Logs(), 2048))
		}
	})
	if ns == "" {
		return
	}
	c, err := containerd.New(addr)
	if err != nil {
		t.Fatalf("containerd client: %v", err)
	}
	defer c.Close()
	names, err := c.NamespaceService().List(t.Context())
	if err != nil {
		t.Fatalf("list namespaces: %v", err)
	}
	for _, n := range names {
		if n == ns {
			t.Errorf("namespace %s still exists after the test", ns)
		}
	}
}

func TestNamespaceFor(t *testing.T) {
	a, b := namespaceFor(t), namespaceFor(t)
	if a == b {
		t.Errorf("namespaceFor twice = %q, %q; want different", a, b)
	}
	if !strings.HasPrefix(a, "e2e-namespacefor-") || len(a) > 76 {
		t.Errorf("namespaceFor = %q, want e2e-namespacefor-<random>, at most 76 bytes", a)
	}
}
