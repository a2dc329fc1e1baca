package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIntegrationCLIOverMTLS runs the built pcnode-cli binary, as a
// process, against a real pcnoded's TCP listener with mutual TLS: a
// submitter imports an image and runs tasks (the exit status is the
// task's), list and get print tables (compared with golden files once the
// parts that change every run are masked) and JSON that parses back into
// the API's messages, PCNODE_* variables stand in for the flags, an admin
// drains and resumes the node, a viewer may not run a task and is told
// which [[api.roles]] entry would let it, and a wrong CA names --tls-ca.
func TestIntegrationCLIOverMTLS(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{NoRace: true, LogLevel: "info", TCP: true})
	bin := buildCLI(t)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, d.CA.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// Each role's client certificate, as files a user holds.
	creds := map[string][]string{}
	for _, role := range []string{roleViewer, roleSubmitter, roleAdmin} {
		c := d.CA.Client(t, daemontest.CertOptions{URI: []string{daemontest.RoleIdentity(role)}})
		cert, key := filepath.Join(dir, role+".pem"), filepath.Join(dir, role+"-key.pem")
		for p, b := range map[string][]byte{cert: c.CertPEM, key: c.KeyPEM} {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		creds[role] = []string{"--address", d.TCPAddress, "--tls-ca", ca, "--tls-cert", cert, "--tls-key", key}
	}
	const image = "pcnode.test/cli-mtls:1"
	env := []string{"CLI_IMAGE=" + image}
	as := func(role string, args ...string) (string, string, int) {
		t.Helper()
		return runBinary(t, bin, env, append(append([]string(nil), creds[role]...), args...)...)
	}
	task := func(name, template, steps string) string {
		p := filepath.Join(dir, name+".json")
		body := fmt.Sprintf(`{"name": %q, "image": "{{ env.CLI_IMAGE }}", "taskTemplate": %q, "inputs": [], "outputs": [], "env": [{"name": "PCTEST_STEPS", "value": %q}]}`,
			name, template, steps)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	archive := testimage.Archive(t, testimage.Image{Name: image}, testimage.FormatDockerArchive)
	if out, errOut, code := as(roleSubmitter, "image", "import", archive); code != exitOK || !strings.Contains(out, image) {
		t.Fatalf("image import over mTLS = exit %d, stdout %q, stderr %q; want exit 0 and the image", code, out, errOut)
	}

	// run: the task's output on stdout, its exit code as the exit status.
	// The tasks sleep first: the daemon stamps start_time after the start
	// call returns but finish_time with containerd's exit time, so a task
	// that exits at once can show a negative duration.
	out, errOut, code := as(roleSubmitter, "run", task("three", "steps", "sleep 100ms -- echo hello over mtls -- exit 3"))
	if code != 3 || out != "hello over mtls\n" {
		t.Errorf("run (a task exiting 3) = exit %d, stdout %q, stderr %q; want exit 3 and the task's output", code, out, errOut)
	}
	// The same connection from the environment alone.
	envOnly := append([]string{
		envAddress + "=" + d.TCPAddress, envTLSCA + "=" + ca,
		envTLSCert + "=" + filepath.Join(dir, roleSubmitter+".pem"), envTLSKey + "=" + filepath.Join(dir, roleSubmitter+"-key.pem"),
	}, env...)
	if out, errOut, code := runBinary(t, bin, envOnly, "run", "-q", task("ok", "steps", "sleep 100ms -- echo fine")); code != exitOK || out != "" {
		t.Errorf("run -q with PCNODE_* only = exit %d, stdout %q, stderr %q; want exit 0 and no output", code, out, errOut)
	}

	// list and get: JSON parsed back, tables against golden files.
	out, errOut, code = as(roleViewer, "-o", "json", "list")
	var listed pcnodev1.ListTasksResponse
	if err := protojson.Unmarshal([]byte(out), &listed); code != exitOK || err != nil {
		t.Fatalf("list -o json = exit %d (%v), stdout %q, stderr %q", code, err, out, errOut)
	}
	byName := map[string]*pcnodev1.Task{}
	for _, tk := range listed.GetTasks() {
		byName[tk.GetSpec().GetName()] = tk
	}
	three, ok := byName["three"], byName["ok"] != nil
	if len(listed.GetTasks()) != 2 || three == nil || !ok {
		t.Fatalf("list -o json = %v, want the tasks three and ok", listed.GetTasks())
	}
	for _, tk := range listed.GetTasks() {
		if got, want := tk.GetSubmittedBy(), daemontest.RoleIdentity(roleSubmitter); got != want {
			t.Errorf("task %s submitted_by = %q, want %q (the client certificate's URI SAN)", tk.GetSpec().GetName(), got, want)
		}
	}
	if three.GetState() != pcnodev1.TaskState_TASK_STATE_FAILED || three.GetExitCode() != 3 || byName["ok"].GetState() != pcnodev1.TaskState_TASK_STATE_SUCCEEDED {
		t.Errorf("list -o json: three %v exit %d, ok %v; want FAILED exit 3 and SUCCEEDED", three.GetState(), three.GetExitCode(), byName["ok"].GetState())
	}
	if again, _, _ := as(roleViewer, "-o", "json", "list"); again != out {
		t.Errorf("list -o json differs between two runs:\n%s\n---\n%s", out, again)
	}
	out, errOut, code = as(roleViewer, "-o", "json", "get", three.GetId())
	var got pcnodev1.Task
	if err := protojson.Unmarshal([]byte(out), &got); code != exitOK || err != nil {
		t.Errorf("get -o json = exit %d (%v), stdout %q, stderr %q", code, err, out, errOut)
	} else if d := cmp.Diff(three, &got, protocmp.Transform()); d != "" {
		t.Errorf("get -o json differs from the task in list -o json (-list +get):\n%s", d)
	}
	ids := []string{three.GetId(), byName["ok"].GetId()}
	out, errOut, code = as(roleViewer, "list")
	if code != exitOK {
		t.Errorf("list = exit %d, stderr %q", code, errOut)
	}
	golden(t, "mtls-list", maskRun([]byte(out), ids))
	out, errOut, code = as(roleViewer, "get", three.GetId())
	if code != exitOK {
		t.Errorf("get = exit %d, stderr %q", code, errOut)
	}
	golden(t, "mtls-get-failed", maskRun([]byte(out), ids))

	// node, drain and resume as admin; JSON parsed back.
	out, errOut, code = as(roleViewer, "-o", "json", "node")
	var node pcnodev1.Node
	if err := protojson.Unmarshal([]byte(out), &node); code != exitOK || err != nil || node.GetName() == "" {
		t.Fatalf("node -o json = exit %d (%v), stdout %q, stderr %q", code, err, out, errOut)
	}
	name := node.GetName()
	out, errOut, code = as(roleViewer, "node")
	for _, want := range []string{"name:         " + name + "\n", "version:      pcnoded " + node.GetVersion() + ", containerd ", "allocatable:  cpu ", "draining:     false\n"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("node = exit %d, stdout %q, stderr %q; want it to contain %q", code, out, errOut, want)
		}
	}
	if out, errOut, code := as(roleAdmin, "node", "drain"); code != exitOK || !strings.HasPrefix(out, "node "+name+" is draining: it admits no new tasks") {
		t.Errorf("node drain as admin = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, errOut, code := as(roleSubmitter, "run", task("late", "steps", "echo never")); code != exitInvalid || !strings.Contains(errOut, "pcnode-cli node resume") {
		t.Errorf("run on a draining node = exit %d, stderr %q; want exit 1 and the hint to resume", code, errOut)
	}
	out, errOut, code = as(roleAdmin, "-o", "json", "node", "resume")
	var resumed pcnodev1.Node
	if err := protojson.Unmarshal([]byte(out), &resumed); code != exitOK || err != nil || resumed.GetName() != name || resumed.GetDraining() {
		t.Errorf("node resume -o json as admin = exit %d (%v), stdout %q, stderr %q; want a node that is not draining", code, err, out, errOut)
	}

	// Roles: what a viewer and a submitter may not do, and how to fix it.
	denied := []struct {
		role string
		args []string
		want []string
	}{
		{roleViewer, []string{"run", task("viewer", "steps", "echo no")}, []string{
			"TaskService/RunTask needs role submitter; identity " + daemontest.RoleIdentity(roleViewer) + " has role viewer",
			"hint: pcnode-cli run needs the submitter role (or higher) on the node",
			"[[api.roles]]\n  identity = \"" + daemontest.RoleIdentity(roleViewer) + "\"\n  role = \"submitter\"",
		}},
		{roleSubmitter, []string{"node", "drain"}, []string{
			"NodeService/DrainNode needs role admin",
			"hint: pcnode-cli node drain needs the admin role (or higher) on the node",
			"identity = \"" + daemontest.RoleIdentity(roleSubmitter) + "\"\n  role = \"admin\"",
		}},
	}
	for _, tt := range denied {
		out, errOut, code := as(tt.role, tt.args...)
		for _, want := range tt.want {
			if code != exitInvalid || !strings.Contains(errOut, want) {
				t.Errorf("pcnode-cli %q as %s = exit %d, stdout %q, stderr %q; want exit 1 and stderr containing %q", tt.args, tt.role, code, out, errOut, want)
			}
		}
	}
	if out, _, _ := as(roleViewer, "-o", "json", "list"); strings.Contains(out, `"viewer"`) {
		t.Errorf("list after the viewer's refused run = %s, want no task named viewer", out)
	}

	// A CA that did not sign the node's certificate.
	other := filepath.Join(dir, "other-ca.pem")
	if err := os.WriteFile(other, daemontest.NewCA(t, "other").PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string(nil), creds[roleAdmin]...), "--tls-ca", other, "node")
	out, errOut, code = runBinary(t, bin, nil, args...)
	if code != exitInvalid || !strings.Contains(errOut, "certificate signed by unknown authority") ||
		!strings.Contains(errOut, "not signed by a CA in "+other+" (from --tls-ca): set --tls-ca") {
		t.Errorf("node with the wrong --tls-ca = exit %d, stdout %q, stderr %q; want exit 1 and a hint naming --tls-ca", code, out, errOut)
	}
}

// buildCLI builds this package's binary into a directory of t.
func buildCLI(t *testing.T) string {
	t.Helper()
	root, err := daemontest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "pcnode-cli")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "./cmd/pcnode-cli")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/pcnode-cli: %v\n%s", err, out)
	}
	return bin
}

// runBinary runs bin with args and, besides PATH and HOME, only the
// variables in env: no PCNODE_* of the test's own environment leaks in.
func runBinary(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TZ=UTC"}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s %q: %v", bin, args, err)
	}
	return out.String(), errb.String(), code
}

var (
	maskTime     = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	maskDigest   = regexp.MustCompile(`sha256:[0-9a-f]{64}`)
	maskDuration = regexp.MustCompile(`\b\d+(\.\d+)?(ms|s)\b|\b\d+m\d+s\b`)
	maskBytes    = regexp.MustCompile(`\b\d+(\.\d+)? (B|KiB|MiB|GiB)\b`)
	maskColumns  = regexp.MustCompile(` {2,}`)
)

// maskRun replaces in a table what differs between runs: each of ids by
// <task-N>, times, digests, durations, usage sizes, and column padding
// (which follows those widths) by two spaces.
func maskRun(b []byte, ids []string) []byte {
	s := string(b)
	for i, id := range ids {
		s = strings.ReplaceAll(s, id, fmt.Sprintf("<task-%d>", i+1))
	}
	s = maskTime.ReplaceAllString(s, "<time>")
	s = maskDigest.ReplaceAllString(s, "<digest>")
	s = maskDuration.ReplaceAllString(s, "<dur>")
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "usage:") {
			l = maskBytes.ReplaceAllString(l, "<bytes>")
		}
		lines = append(lines, maskColumns.ReplaceAllString(l, "  "))
	}
	return []byte(strings.Join(lines, "\n"))
}
