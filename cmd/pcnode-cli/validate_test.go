package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// kaapanaExamples are Kaapana's example files as copied into daemon/spec.
func kaapanaExamples(t *testing.T) (pcs, tasks []string) {
	t.Helper()
	pcs, _ = filepath.Glob(specTestdata + "/kaapana/*/processing-container.json")
	tasks, _ = filepath.Glob(specTestdata + "/kaapana/*/tasks/*.json")
	if len(pcs) < 2 || len(tasks) < 2 {
		t.Fatalf("found %d processing-containers and %d tasks, want at least 2 each", len(pcs), len(tasks))
	}
	return pcs, tasks
}

func decodeReport(t *testing.T, stdout string) validateReport {
	t.Helper()
	var rep validateReport
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("validate -o json output %q: %v", stdout, err)
	}
	return rep
}

func TestValidateAcceptsKaapanaExamples(t *testing.T) {
	pcs, tasks := kaapanaExamples(t)
	dummyPC := specTestdata + "/kaapana/dummy/processing-container.json"
	var runs [][]string
	for _, f := range pcs {
		runs = append(runs, []string{"validate", f}, []string{"validate", "--schema", "pc", f})
	}
	for _, f := range tasks {
		runs = append(runs, []string{"validate", f}, []string{"validate", "--schema", "task", f}, []string{"validate", "--pc", dummyPC, f})
	}
	runs = append(runs,
		[]string{"validate", specTestdata + "/pcnode/processing-container.json"},
		[]string{"validate", "--pc", specTestdata + "/pcnode/processing-container.json", specTestdata + "/pcnode/task.json"})
	for _, args := range runs {
		t.Run(strings.Join(args[1:], " "), func(t *testing.T) {
			stdout, stderr, code := runCLI(t, args...)
			if code != exitOK || !strings.Contains(stdout, ": valid ") {
				t.Errorf("pcnode-cli %q = exit %d, stdout %q, stderr %q; want exit 0 and valid", args, code, stdout, stderr)
			}
			stdout, _, code = runCLI(t, append([]string{"-o", "json"}, args...)...)
			if rep := decodeReport(t, stdout); code != exitOK || !rep.Valid || len(rep.Problems) != 0 {
				t.Errorf("pcnode-cli -o json %q = exit %d, %+v; want valid", args, code, rep)
			}
		})
	}
}

func TestValidateMentionsPlaceholders(t *testing.T) {
	f := specTestdata + "/kaapana/dummy/tasks/upstream-task.json"
	stdout, _, code := runCLI(t, "validate", f)
	if code != exitOK || !strings.Contains(stdout, "image: {{ env.registryUrl }}") || !strings.Contains(stdout, "outputs[0].volume_source.host_path: {{ env.output_dir }}") {
		t.Errorf("validate %s = exit %d, %q; want it valid, listing its placeholders", f, code, stdout)
	}
	stdout, _, _ = runCLI(t, "validate", "-o", "json", f)
	rep := decodeReport(t, stdout)
	want := validateReport{
		File: f, Kind: "task", Valid: true, Problems: []finding{},
		Warnings: []finding{
			{Field: "config.namespace", Description: "runner setting; ignored by pcnode"},
			{Field: "config.registryUrl", Description: "runner setting; ignored by pcnode"},
			{Field: "config.registryUsername", Description: "runner setting; ignored by pcnode"},
			{Field: "config.registryPassword", Description: "runner setting; ignored by pcnode"},
		},
		Placeholders: rep.Placeholders,
	}
	if diff := cmp.Diff(want, rep); diff != "" || len(rep.Placeholders) != 3 {
		t.Errorf("validate -o json %s mismatch (-want +got):\n%s\nplaceholders %v, want 3", f, diff, rep.Placeholders)
	}
}

// rejection is one entry of daemon/spec/testdata/invalid/expect.json.
type rejection struct {
	File  string `json:"file"`
	PC    bool   `json:"pc"`
	Field string `json:"field"`
}

// TestValidateRejects runs every invalid example: each must exit 1 and name
// its field, in the text and the JSON output.
func TestValidateRejects(t *testing.T) {
	data, err := os.ReadFile(specTestdata + "/invalid/expect.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []rejection
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	required := []string{"pc-duplicate-identifier.json", "pc-relative-mounted-path.json", "pc-overlapping-mounts.json",
		"task-env-outside-choices.json", "task-non-adjustable-env.json", "pc-unknown-scale-mode.json", "pc-bad-regex.json",
		"task-unbound-channel.json", "task-unknown-channel.json"}
	for _, r := range required {
		if !slices.ContainsFunc(cases, func(c rejection) bool { return c.File == r }) {
			t.Errorf("expect.json lacks %s", r)
		}
	}
	for _, c := range cases {
		t.Run(c.File, func(t *testing.T) {
			args := []string{"validate", filepath.Join(specTestdata, "invalid", c.File)}
			if c.PC {
				args = append(args, "--pc", specTestdata+"/pcnode/processing-container.json")
			}
			stdout, _, code := runCLI(t, args...)
			if code != exitInvalid || !strings.Contains(stdout, "\n  "+c.Field+": ") {
				t.Errorf("pcnode-cli %q = exit %d, %q; want exit 1 naming %s", args, code, stdout, c.Field)
			}
			stdout, _, code = runCLI(t, append([]string{"-o", "json"}, args...)...)
			rep := decodeReport(t, stdout)
			if code != exitInvalid || rep.Valid || !slices.ContainsFunc(rep.Problems, func(f finding) bool { return f.Field == c.Field && f.File == "" }) {
				t.Errorf("pcnode-cli -o json %q = exit %d, %+v; want invalid with a problem at %s", args, code, rep, c.Field)
			}
		})
	}
}

func TestValidateFindings(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	brokenPC := write("pc.json", `{"name": "n", "description": "d", "templates": [
		{"identifier": "t", "description": "d", "env": [], "outputs": [], "inputs": [{"name": "in", "mounted_path": "in"}]},
		{"identifier": "u", "description": "d", "env": [], "outputs": [], "inputs": [{"name": "x", "mounted_path": "/"}]}]}`)
	tests := []struct {
		name string
		args []string
		want []finding
	}{
		{
			name: "schema and semantic problems merged, one per field",
			args: []string{"validate", write("a.json", `{"name": 3, "image": "busybox", "taskTemplate": "t", "inputs": [{"name": "in"}], "env": [{"name": "9", "value": "x"}]}`)},
			want: []finding{
				{Field: "name", Description: "must be a string, not a number"},
				{Field: "inputs[0].volume_source", Description: "required"},
				{Field: "inputs[0].volume_source.host_path", Description: "required"},
				{Field: "env[0].name", Description: `"9" is not a POSIX variable name ([A-Za-z_][A-Za-z0-9_]*)`},
			},
		},
		{
			name: "malformed JSON",
			args: []string{"validate", "--schema", "task", write("b.json", `{"name": `)},
			want: []finding{{Description: "malformed JSON: unexpected EOF"}},
		},
		{
			name: "kind cannot be told",
			args: []string{"validate", write("c.json", `{"name": "x"}`)},
			want: []finding{{Description: "cannot tell whether this is a processing-container.json (templates), a task.json (taskTemplate, image) or a JSON Schema; use --schema pc|task"}},
		},
		{
			name: "problems of the selected template are the --pc file's",
			args: []string{"validate", "--pc", brokenPC, write("d.json", `{"name": "n", "image": "busybox", "taskTemplate": "t", "inputs": [{"name": "in", "volume_source": {"host_path": "/x"}}]}`)},
			want: []finding{{File: brokenPC, Field: "templates[0].inputs[0].mounted_path", Description: `"in" must be an absolute path`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, _, code := runCLI(t, append([]string{"-o", "json"}, tt.args...)...)
			rep := decodeReport(t, stdout)
			if code != exitInvalid {
				t.Errorf("exit %d, want %d", code, exitInvalid)
			}
			if diff := cmp.Diff(tt.want, rep.Problems); diff != "" {
				t.Errorf("pcnode-cli %q problems mismatch (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}
