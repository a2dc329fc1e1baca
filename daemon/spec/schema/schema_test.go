package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/pcnode/pcnode/daemon/spec"
)

func kindOf(name string) Kind {
	base := filepath.Base(name)
	if base == "processing-container.json" || strings.HasPrefix(base, "pc-") {
		return ProcessingContainer
	}
	return Task
}

// exampleFiles are every example processing-container.json and task.json.
func exampleFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{"../testdata/kaapana", "../testdata/pcnode"} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() && p == "../testdata/kaapana/published" {
				return filepath.SkipDir // daemon/spec/published_test.go reads these
			}
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") && !strings.HasSuffix(p, ".schema.json") && filepath.Base(p) != "expect.json" {
				files = append(files, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 5 {
		t.Fatalf("found only %d example files", len(files))
	}
	return files
}

// TestExamplesValidate: every example file, Kaapana's and pcnode's, validates.
func TestExamplesValidate(t *testing.T) {
	for _, f := range exampleFiles(t) {
		t.Run(f, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ps, err := Validate(kindOf(f), data)
			if err != nil || len(ps) != 0 {
				t.Errorf("Validate(%s, %s) = %v, %v; want valid", kindOf(f), f, ps, err)
			}
		})
	}
}

func TestInvalidDocuments(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
		doc  string
		want spec.Problems
	}{
		{
			name: "pc missing fields",
			kind: ProcessingContainer,
			doc:  `{"name": "n", "templates": [{"identifier": "a", "description": "d", "inputs": [], "outputs": []}]}`,
			want: spec.Problems{{Field: "description", Description: "required"}, {Field: "templates[0].env", Description: "required"}},
		},
		{
			name: "pc wrong types",
			kind: ProcessingContainer,
			doc: `{"name": "n", "description": "d", "api_version": "1", "templates": [{"identifier": "a", "description": "d", "outputs": [],
				"env": [{"name": "A", "value": 1, "type": "double", "adjustable": "no", "choices": null}],
				"inputs": [{"name": "i", "mounted_path": "/i", "scale_rule": {"scale_factor": 1.5, "type": "limit", "mode": "average"}}]}]}`,
			want: spec.Problems{
				{Field: "api_version", Description: "got string, want integer"},
				{Field: "templates[0].env[0].value", Description: "got number, want string"},
				{Field: "templates[0].env[0].type", Description: "value must be one of 'string', 'integer', 'number', 'boolean', 'str', 'int', 'float', 'bool'"},
				{Field: "templates[0].env[0].adjustable", Description: "got string, want boolean"},
				{Field: "templates[0].inputs[0].scale_rule.scale_factor", Description: "got number, want integer"},
				{Field: "templates[0].inputs[0].scale_rule.mode", Description: "value must be one of 'sum', 'max_file_size', 'max_item_sum'"},
			},
		},
		{
			name: "task wrong shapes",
			kind: Task,
			doc: `{"name": "n", "image": "i", "taskTemplate": 5, "env": {"A": "1"},
				"inputs": [{"name": "a", "volume_source": {"claim": "c"}}], "command": "run"}`,
			want: spec.Problems{
				{Field: "command", Description: "got string, want array or null"},
				{Field: "taskTemplate", Description: "got number, want string or object"},
				{Field: "inputs[0].volume_source.host_path", Description: "required"},
				{Field: "env", Description: "got object, want array or null"},
			},
		},
		{
			name: "task missing everything",
			kind: Task,
			doc:  `{}`,
			want: spec.Problems{{Field: "name", Description: "required"}, {Field: "image", Description: "required"}, {Field: "taskTemplate", Description: "required"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := Validate(tt.kind, []byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			sortProblems(ps)
			sortProblems(tt.want)
			if diff := cmp.Diff(tt.want, ps); diff != "" {
				t.Errorf("Validate(%s) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestInvalidExampleFile(t *testing.T) {
	data, err := os.ReadFile("../testdata/invalid/pc-unknown-scale-mode.json")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Validate(ProcessingContainer, data)
	want := spec.Problems{{Field: "templates[0].inputs[0].scale_rule.mode", Description: "value must be one of 'sum', 'max_file_size', 'max_item_sum'"}}
	if diff := cmp.Diff(want, ps); err != nil || diff != "" {
		t.Errorf("Validate(pc-unknown-scale-mode.json) = %v; mismatch (-want +got):\n%s", err, diff)
	}
}

func sortProblems(ps spec.Problems) {
	slices.SortFunc(ps, func(a, b spec.Problem) int { return strings.Compare(a.Field, b.Field) })
}

func TestValidateErrors(t *testing.T) {
	if _, err := Validate(Task, []byte(`{"name": `)); !errors.Is(err, spec.ErrSyntax) {
		t.Errorf("Validate(truncated) = %v, want %v", err, spec.ErrSyntax)
	}
	if _, err := Validate("yaml", []byte(`{}`)); err == nil {
		t.Errorf("Validate(unknown kind) = nil, want an error")
	}
}

// TestKaapanaCompatible: documents Kaapana's own schemas accept, ours accept
// too. Each is checked against Kaapana's schema first, so the list cannot
// drift into documents Kaapana would refuse.
func TestKaapanaCompatible(t *testing.T) {
	kaapana := map[Kind]*jsonschema.Schema{}
	for k, f := range map[Kind]string{ProcessingContainer: "ProcessingContainer.schema.json", Task: "Task.schema.json"} {
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		data, err := os.ReadFile(filepath.Join("../testdata/kaapana", f))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.AddResource(f, doc); err != nil {
			t.Fatal(err)
		}
		if kaapana[k], err = c.Compile(f); err != nil {
			t.Fatal(err)
		}
	}
	docs := []struct {
		kind Kind
		doc  string
	}{
		{ProcessingContainer, `{"name": "n", "description": "d", "templates": []}`},
		{ProcessingContainer, `{"name": "n", "description": "d", "api_version": 1, "x-extra": {"a": [1]}, "templates": [{"identifier": "a", "description": "d", "inputs": [], "outputs": [], "env": [], "command": null, "resources": null}]}`},
		{ProcessingContainer, `{"name": "n", "description": "d", "templates": [{"identifier": "a", "description": "d", "outputs": [], "env": [{"name": "A", "value": "1", "choices": null, "description": null, "unit": "s"}],
			"inputs": [{"name": "i", "mounted_path": "/i", "description": null, "scale_rule": {"scale_factor": 3, "type": "request", "mode": "max_item_sum", "target_dir": null, "target_regex": null, "target_glob": null}}],
			"resources": {"limits": {"memory": "1Gi", "weird": [1], "cpu": true}, "requests": null}}]}`},
		{Task, `{"name": "n", "image": "i", "taskTemplate": "t"}`},
		{Task, `{"name": "n", "image": "i", "taskTemplate": "t", "config": null, "env": null, "inputs": [], "outputs": [], "command": null, "resources": null}`},
		{Task, `{"name": "n", "image": "i", "taskTemplate": "t", "config": {"type": "k8s", "namespace": "x", "labels": {"a": {"b": 1}}}}`},
		{Task, `{"name": "n", "image": "i", "taskTemplate": "t", "config": {"type": 5, "labels": null}}`},
		{Task, `{"name": "n", "image": "i", "taskTemplate": {"identifier": "a", "description": "d", "inputs": [], "outputs": [], "env": []},
			"inputs": [{"name": "a", "volume_source": {"host_path": "/x", "extra": 1}, "scale_rule": {"scale_factor": 1, "type": "limit", "mode": "sum"}}]}`},
	}
	for _, d := range docs {
		var doc any
		if err := json.Unmarshal([]byte(d.doc), &doc); err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(d.doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := kaapana[d.kind].Validate(inst); err != nil {
			t.Fatalf("Kaapana's schema refuses %s; the test list is wrong: %v", d.doc, err)
		}
		if ps, err := Validate(d.kind, []byte(d.doc)); err != nil || len(ps) != 0 {
			t.Errorf("Validate(%s, %s) = %v, %v; want valid like Kaapana's schema", d.kind, d.doc, ps, err)
		}
	}
}

// TestSharedDefinitions keeps the definitions both schemas hold identical.
func TestSharedDefinitions(t *testing.T) {
	var pc, task struct {
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal(ProcessingContainerJSON, &pc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(TaskJSON, &task); err != nil {
		t.Fatal(err)
	}
	for name, def := range pc.Defs {
		if diff := cmp.Diff(string(def), string(task.Defs[name])); diff != "" {
			t.Errorf("$defs.%s differs between the schemas (-pc +task):\n%s", name, diff)
		}
	}
}

func TestFieldPath(t *testing.T) {
	for _, tt := range []struct {
		tokens []string
		want   string
	}{
		{[]string{"templates", "0", "inputs", "1", "mounted_path"}, "templates[0].inputs[1].mounted_path"},
		{[]string{"resources", "limits", "nvidia.com/gpu"}, `resources.limits["nvidia.com/gpu"]`},
		{nil, ""},
	} {
		if got := fieldPath(tt.tokens); got != tt.want {
			t.Errorf("fieldPath(%q) = %q, want %q", tt.tokens, got, tt.want)
		}
	}
}
