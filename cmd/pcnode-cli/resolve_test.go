package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/daemon/spec"
)

func writeFiles(t *testing.T, root string, files map[string]int) {
	t.Helper()
	for name, size := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func decodeResolve(t *testing.T, stdout string) resolveReport {
	t.Helper()
	var rep resolveReport
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("resolve -o json output %q: %v", stdout, err)
	}
	return rep
}

// TestResolveKaapanaDownstream is the acceptance check:
//
//	pcnode-cli resolve --pc dummy/processing-container.json dummy/tasks/downstream-task.json
//
// with the variables the task names set and files in its channel
// directories prints the merged instance with a memory limit of
// max(50Mi, 25 × size of the *.txt files).
func TestResolveKaapanaDownstream(t *testing.T) {
	pc := specTestdata + "/kaapana/dummy/processing-container.json"
	task := specTestdata + "/kaapana/dummy/tasks/downstream-task.json"
	tests := []struct {
		name      string
		files     map[string]int
		txtBytes  int64
		wantLimit string
	}{
		{
			name:      "small inputs keep 50Mi",
			files:     map[string]int{"dummy/channel1/a.txt": 4096, "dummy/channel1/big.dat": 8 << 20, "dummy/channel2/b.txt": 8 << 20},
			txtBytes:  4096,
			wantLimit: "50 MiB (52428800 bytes)",
		},
		{
			name: "large inputs raise it",
			files: map[string]int{"dummy/channel1/a.txt": 3 << 20, "dummy/channel1/sub/b.txt": 1 << 20,
				"dummy/channel1/c.dat": 8 << 20, "dummy/channel2/d.txt": 1 << 20},
			txtBytes:  4 << 20,
			wantLimit: "100 MiB (104857600 bytes)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			writeFiles(t, out, tt.files)
			t.Setenv("output_dir", out)
			t.Setenv("registryUrl", "registry.example.org:5000")
			t.Setenv("namespace", "default")
			t.Setenv("registryUsername", "user")
			t.Setenv("registryPassword", "secret")
			wantLimit := max(int64(50<<20), 25*tt.txtBytes)

			stdout, stderr, code := runCLI(t, "resolve", "--pc", pc, task)
			if code != exitOK {
				t.Fatalf("resolve = exit %d, %q %q; want 0", code, stdout, stderr)
			}
			for _, want := range []string{
				"image:     registry.example.org:5000/dummy:latest",
				"template:  downstream",
				"command:   python3 -u downstream.py",
				"TIME_SLEEP=5",
				out + "/dummy/channel1",
				"-> /home/downstream/channel1",
				"limits    " + tt.wantLimit,
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("resolve output lacks %q:\n%s", want, stdout)
				}
			}
			if strings.Contains(stdout+stderr, "secret") {
				t.Errorf("resolve output shows the registry password:\n%s", stdout)
			}

			stdout, _, code = runCLI(t, "-o", "json", "resolve", "--pc", pc, task)
			rep := decodeResolve(t, stdout)
			if code != exitOK || rep.Instance == nil {
				t.Fatalf("resolve -o json = exit %d, %+v", code, rep)
			}
			in := rep.Instance
			if got := in.Resources.Limits.MemoryBytes; got != wantLimit {
				t.Errorf("memory limit = %d, want max(50Mi, 25 × %d) = %d", got, tt.txtBytes, wantLimit)
			}
			wantScale := []spec.ScaleResult{{
				Channel:       "channel1",
				Rule:          spec.ScaleRule{ScaleFactor: 25, Type: spec.TypeLimit, Mode: spec.ModeSum, TargetDir: ".", TargetRegex: `.*\.txt`, TargetGlob: "*"},
				MeasuredBytes: tt.txtBytes, ComputedBytes: 25 * tt.txtBytes, Applied: 25*tt.txtBytes > 50<<20,
			}}
			if diff := cmp.Diff(wantScale, in.ScaleResults); diff != "" {
				t.Errorf("scale results mismatch (-want +got):\n%s", diff)
			}
			wantInputs := []spec.Mount{
				{Name: "channel1", HostPath: out + "/dummy/channel1", MountedPath: "/home/downstream/channel1", ReadOnly: true},
				{Name: "channel2", HostPath: out + "/dummy/channel2", MountedPath: "/home/downstream/channel2", ReadOnly: true},
			}
			if diff := cmp.Diff(wantInputs, in.Inputs); diff != "" {
				t.Errorf("inputs mismatch (-want +got):\n%s", diff)
			}
			if len(rep.Problems) != 0 || len(rep.Warnings) != 4 || in.Outputs == nil {
				t.Errorf("resolve -o json = problems %v, warnings %v, outputs %v; want none, the 4 config warnings, []", rep.Problems, rep.Warnings, in.Outputs)
			}
		})
	}
}

func TestResolveProblems(t *testing.T) {
	pc := specTestdata + "/kaapana/dummy/processing-container.json"
	task := specTestdata + "/kaapana/dummy/tasks/downstream-task.json"
	t.Setenv("registryUrl", "registry.example.org")
	t.Setenv("output_dir", "") // restored after the test
	os.Unsetenv("output_dir")

	stdout, _, code := runCLI(t, "-o", "json", "resolve", "--pc", pc, task)
	rep := decodeResolve(t, stdout)
	want := []finding{
		{Field: "inputs[0].volume_source.host_path", Description: `environment variable "output_dir" is not set (used as {{ env.output_dir }})`},
		{Field: "inputs[1].volume_source.host_path", Description: `environment variable "output_dir" is not set (used as {{ env.output_dir }})`},
	}
	if diff := cmp.Diff(want, rep.Problems); code != exitInvalid || rep.Instance != nil || diff != "" {
		t.Errorf("resolve without output_dir = exit %d, instance %v; problems mismatch (-want +got):\n%s", code, rep.Instance, diff)
	}

	// Without --pc the template cannot be found.
	t.Setenv("output_dir", t.TempDir())
	stdout, _, code = runCLI(t, "resolve", task)
	if code != exitInvalid || !strings.Contains(stdout, `taskTemplate: template "downstream" named, but no processing-container given`) {
		t.Errorf("resolve without --pc = exit %d, %q; want 1 naming taskTemplate", code, stdout)
	}

	// Every problem of a task checked against the template.
	stdout, _, code = runCLI(t, "resolve", "--pc", specTestdata+"/pcnode/processing-container.json", specTestdata+"/invalid/task-unbound-channel.json")
	if code != exitInvalid || !strings.Contains(stdout, `inputs: input channel "config" of template "segment" is not bound`) {
		t.Errorf("resolve unbound channel = exit %d, %q", code, stdout)
	}
}

func TestResolveInlineTemplate(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]int{"in/item1/a.dcm": 1000, "in/item2/a.dcm": 3000, "in/item2/b.txt": 50})
	task := filepath.Join(dir, "task.json")
	err := os.WriteFile(task, []byte(`{
		"name": "inline", "image": "busybox:1.36",
		"taskTemplate": {"identifier": "count", "description": "d", "command": ["sh", "-c", "ls /in > /out/list"],
			"env": [{"name": "N", "value": "1", "type": "integer"}],
			"inputs": [{"name": "in", "mounted_path": "/in",
				"scale_rule": {"scale_factor": 1000, "type": "request", "mode": "max_item_sum", "target_glob": "*.dcm"}}],
			"outputs": [{"name": "out", "mounted_path": "/out"}],
			"resources": {"limits": {"memory": "1Gi", "cpu": 2}}},
		"inputs": [{"name": "in", "volume_source": {"host_path": "`+dir+`/in"}}],
		"outputs": [{"name": "out", "volume_source": {"host_path": "`+dir+`/out"}}],
		"env": [{"name": "N", "value": "7"}]
	}`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "-o", "json", "resolve", task)
	rep := decodeResolve(t, stdout)
	if code != exitOK || rep.Instance == nil {
		t.Fatalf("resolve inline = exit %d, %q %q", code, stdout, stderr)
	}
	want := spec.Resources{
		Requests: spec.ResourceList{MemoryBytes: spec.DefaultLimits().MinMemoryBytes, CPUMillis: 2000}, // 3 MB computed, raised to the floor
		Limits:   spec.ResourceList{MemoryBytes: 1 << 30, CPUMillis: 2000},
	}
	if diff := cmp.Diff(want, rep.Instance.Resources); diff != "" {
		t.Errorf("resources mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]spec.EnvVar{{Name: "N", Value: "7"}}, rep.Instance.Env); diff != "" {
		t.Errorf("env mismatch (-want +got):\n%s", diff)
	}
	stdout, _, _ = runCLI(t, "resolve", task)
	if !strings.Contains(stdout, "command:   sh -c 'ls /in > /out/list'") || !strings.Contains(stdout, "2.9 MiB (3000000 bytes)") {
		t.Errorf("resolve text output:\n%s\nwant the quoted command and the request", stdout)
	}
}
