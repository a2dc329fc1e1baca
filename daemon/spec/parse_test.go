package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// kaapanaFiles lists Kaapana's example files by kind.
func kaapanaFiles(t *testing.T) (pcs, tasks []string) {
	t.Helper()
	err := filepath.WalkDir("testdata/kaapana", func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && p == publishedDir {
			return filepath.SkipDir // published_test.go reads these, some are invalid
		}
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".schema.json") {
			return err
		}
		if filepath.Base(p) == "processing-container.json" {
			pcs = append(pcs, p)
		} else {
			tasks = append(tasks, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pcs) < 2 || len(tasks) < 2 {
		t.Fatalf("found %d processing-containers and %d tasks in testdata/kaapana, want at least 2 each", len(pcs), len(tasks))
	}
	return pcs, tasks
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var kaapanaEnv = MapEnv(map[string]string{
	"registryUrl":      "registry.example.org:5000",
	"output_dir":       "/data/out",
	"namespace":        "default",
	"registryUsername": "u",
	"registryPassword": "p",
})

func TestParseKaapanaExamples(t *testing.T) {
	pcs, tasks := kaapanaFiles(t)
	for _, f := range pcs {
		t.Run(f, func(t *testing.T) {
			pc, warns, err := ParseProcessingContainer(readFile(t, f))
			if err != nil {
				t.Fatalf("ParseProcessingContainer(%q) = %v, want no error", f, err)
			}
			if len(warns) != 0 {
				t.Errorf("ParseProcessingContainer(%q) warnings = %v, want none", f, warns)
			}
			if ps := pc.Validate(); len(ps) != 0 {
				t.Errorf("Validate(%q) = %v, want no problems", f, ps)
			}
		})
	}
	for _, f := range tasks {
		t.Run(f, func(t *testing.T) {
			for _, lookup := range []LookupEnv{nil, kaapanaEnv} {
				task, _, err := ParseTask(readFile(t, f), lookup)
				if err != nil {
					t.Fatalf("ParseTask(%q) = %v, want no error", f, err)
				}
				if ps := task.Validate(); len(ps) != 0 {
					t.Errorf("Validate(%q) = %v, want no problems", f, ps)
				}
			}
		})
	}
}

func TestParseDownstreamTask(t *testing.T) {
	task, warns, err := ParseTask(readFile(t, "testdata/kaapana/dummy/tasks/downstream-task.json"), kaapanaEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := &Task{
		Name:               "Test downstream task",
		Image:              "registry.example.org:5000/dummy:latest",
		APIVersion:         1,
		TemplateIdentifier: "downstream",
		Inputs: []Binding{
			{Name: "channel1", HostPath: "/data/out/dummy/channel1", ScaleRule: &ScaleRule{
				ScaleFactor: 25, Type: TypeLimit, Mode: ModeSum, TargetDir: ".", TargetRegex: `.*\.txt`, TargetGlob: "*",
			}},
			{Name: "channel2", HostPath: "/data/out/dummy/channel2"},
		},
		Resources: Resources{Limits: ResourceList{MemoryBytes: 50 << 20}},
	}
	if diff := cmp.Diff(want, task); diff != "" {
		t.Errorf("ParseTask(downstream-task.json) mismatch (-want +got):\n%s", diff)
	}
	wantWarns := []Warning{
		{"config.namespace", "runner setting; ignored by pcnode"},
		{"config.registryUrl", "runner setting; ignored by pcnode"},
		{"config.registryUsername", "runner setting; ignored by pcnode"},
		{"config.registryPassword", "runner setting; ignored by pcnode"},
	}
	if diff := cmp.Diff(wantWarns, warns); diff != "" {
		t.Errorf("ParseTask(downstream-task.json) warnings mismatch (-want +got):\n%s", diff)
	}
}

func TestParseTaskPlaceholdersKept(t *testing.T) {
	task, _, err := ParseTask(readFile(t, "testdata/kaapana/dummy/tasks/upstream-task.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Placeholder{
		{Field: "image", Variable: "registryUrl"},
		{Field: "outputs[0].volume_source.host_path", Variable: "output_dir"},
		{Field: "outputs[1].volume_source.host_path", Variable: "output_dir"},
	}
	if diff := cmp.Diff(want, task.Placeholders); diff != "" {
		t.Errorf("Placeholders mismatch (-want +got):\n%s", diff)
	}
	if got, want := task.Image, "{{ env.registryUrl }}/dummy:latest"; got != want {
		t.Errorf("Image = %q, want %q", got, want)
	}
}

func TestParseProcessingContainerFields(t *testing.T) {
	data := `{
	  "name": "pc", "description": "d", "api_version": 1, "extra": true,
	  "templates": [{
	    "identifier": "main", "description": "d", "surprise": 1,
	    "env": [
	      {"name": "N", "value": "5", "type": "integer", "choices": ["1", "5"], "adjustable": false, "description": "n", "unit": "s"},
	      {"name": "S", "value": "x", "choices": null, "description": null}
	    ],
	    "inputs": [{"name": "in", "mounted_path": "/in", "description": null,
	      "scale_rule": {"scale_factor": 2.0, "type": "request", "mode": "max_item_sum", "target_dir": null, "target_regex": null, "target_glob": "*.dcm", "x": 1}}],
	    "outputs": [{"name": "out", "mounted_path": "/out", "scale_rule": {"scale_factor": 1, "type": "limit", "mode": "sum"}}],
	    "command": ["run", "it"],
	    "resources": {"requests": {"memory": "1.5Gi", "cpu": 0.5}, "limits": {"memory": 2147483648, "cpu": "2", "nvidia.com/gpu": 1, "ephemeral-storage": "1Gi"}}
	  }]
	}`
	pc, warns, err := ParseProcessingContainer([]byte(data))
	if err != nil {
		t.Fatalf("ParseProcessingContainer = %v, want no error", err)
	}
	no := false
	want := &ProcessingContainer{
		Name: "pc", Description: "d", APIVersion: 1,
		Templates: []TaskTemplate{{
			Identifier: "main", Description: "d",
			Env: []EnvVarTemplate{
				{Name: "N", Value: "5", Type: EnvTypeInteger, Choices: []string{"1", "5"}, Adjustable: &no, Description: "n"},
				{Name: "S", Value: "x"},
			},
			Inputs: []Channel{{Name: "in", MountedPath: "/in", ScaleRule: &ScaleRule{
				ScaleFactor: 2, Type: TypeRequest, Mode: ModeMaxItemSum, TargetGlob: "*.dcm",
			}}},
			Outputs: []Channel{{Name: "out", MountedPath: "/out"}},
			Command: []string{"run", "it"},
			Resources: Resources{
				Requests: ResourceList{MemoryBytes: 1536 << 20, CPUMillis: 500},
				Limits:   ResourceList{MemoryBytes: 2 << 30, CPUMillis: 2000, GPUs: 1},
			},
		}},
	}
	if diff := cmp.Diff(want, pc); diff != "" {
		t.Errorf("ParseProcessingContainer mismatch (-want +got):\n%s", diff)
	}
	wantWarns := []Warning{
		{"extra", "unknown field; ignored"},
		{"templates[0].surprise", "unknown field; ignored"},
		{"templates[0].env[0].unit", "unknown field; ignored"},
		{"templates[0].inputs[0].scale_rule.x", "unknown field; ignored"},
		{"templates[0].outputs[0].scale_rule", "scale rules apply to input channels only; ignored"},
		{"templates[0].resources.limits.ephemeral-storage", "unknown resource; ignored (pcnode knows memory, cpu and nvidia.com/gpu)"},
	}
	if diff := cmp.Diff(wantWarns, warns); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		pc   bool // a processing-container, else a task
		data string
		want Problems
	}{
		{
			name: "pc missing required fields",
			pc:   true,
			data: `{"templates": [{"identifier": "a", "inputs": [{"name": "x"}], "outputs": [], "env": [{"name": "A"}]}]}`,
			want: Problems{
				{"name", "required"},
				{"description", "required"},
				{"templates[0].description", "required"},
				{"templates[0].env[0].value", "required"},
				{"templates[0].inputs[0].mounted_path", "required"},
			},
		},
		{
			name: "pc wrong types",
			pc:   true,
			data: `{"name": 1, "description": "d", "api_version": "1", "templates": [{"identifier": "a", "description": "d",
				"env": [{"name": "A", "value": 5, "choices": "x", "adjustable": "no"}], "inputs": {}, "outputs": [],
				"command": "run", "resources": {"limits": {"memory": [1], "cpu": "lots", "nvidia.com/gpu": 0.5}}}]}`,
			want: Problems{
				{"name", "must be a string, not a number"},
				{"api_version", "must be an integer, not a string"},
				{"templates[0].env[0].value", "must be a string, not a number"},
				{"templates[0].env[0].choices", "must be an array of strings, not a string"},
				{"templates[0].env[0].adjustable", "must be true or false, not a string"},
				{"templates[0].inputs", "must be an array, not an object"},
				{"templates[0].command", "must be an array of strings, not a string"},
				{`templates[0].resources.limits.memory`, "must be a quantity string or a number, not an array"},
				{`templates[0].resources.limits.cpu`, `invalid quantity: "lots" is not a Kubernetes quantity (e.g. 500Mi, 1.5Gi, 2, 500m)`},
				{`templates[0].resources.limits["nvidia.com/gpu"]`, `invalid quantity: "0.5" is not a whole number of GPUs`},
			},
		},
		{
			name: "pc fractional scale factor and null required",
			pc:   true,
			data: `{"name": "n", "description": null, "templates": [{"identifier": "a", "description": "d", "env": [], "outputs": [],
				"inputs": [{"name": "x", "mounted_path": "/x", "scale_rule": {"scale_factor": 2.5, "type": "limit", "mode": "sum"}}]}]}`,
			want: Problems{
				{"description", "required; must not be null"},
				{"templates[0].inputs[0].scale_rule.scale_factor", "must be an integer: has a fractional part"},
			},
		},
		{
			name: "task missing fields and bad template",
			data: `{"taskTemplate": 3, "inputs": [{"name": "a", "volume_source": {"claim": "x"}}], "env": [{"name": "A"}]}`,
			want: Problems{
				{"name", "required"},
				{"image", "required"},
				{"taskTemplate", "must be a template identifier (string) or a template (object), not a number"},
				{"inputs[0].volume_source.host_path", "required"},
				{"env[0].value", "required"},
			},
		},
		{
			name: "task missing environment variables",
			data: `{"name": "n", "image": "{{ env.REG }}/x", "taskTemplate": "t",
				"inputs": [{"name": "a", "volume_source": {"host_path": "{{env.DIR}}/{{ env.SUB }}"}}],
				"resources": {"limits": {"memory": "{{ env.MEM }}"}},
				"config": {"labels": {"team": "{{ env.TEAM }}", "n": 3, "bad": {}}, "namespace": "{{ env.IGNORED }}"}}`,
			want: Problems{
				{"image", `environment variable "REG" is not set (used as {{ env.REG }})`},
				{"config.labels.team", `environment variable "TEAM" is not set (used as {{ env.TEAM }})`},
				{"config.labels.bad", "label value must be a string, number or boolean, not an object"},
				{"inputs[0].volume_source.host_path", `environment variable "DIR" is not set (used as {{ env.DIR }})`},
				{"resources.limits.memory", `environment variable "MEM" is not set (used as {{ env.MEM }})`},
			},
		},
		{
			name: "task bad placeholder",
			data: `{"name": "n", "image": "{{ custom.REG }}/x", "taskTemplate": "{{ env.T"}`,
			want: Problems{
				{"image", "unsupported placeholder: {{ custom.REG }} (only {{ env.NAME }} is supported)"},
				{"taskTemplate", `unsupported placeholder: "{{ env.T" has no closing }}`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.pc {
				_, _, err = ParseProcessingContainer([]byte(tt.data))
			} else {
				_, _, err = ParseTask([]byte(tt.data), MapEnv(map[string]string{"SUB": "s"}))
			}
			var got Problems
			if !errors.As(err, &got) {
				t.Fatalf("parse(%q) = %v, want Problems", tt.name, err)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(%v, ErrInvalid) = false, want true", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parse(%q) problems mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestParseTaskInlineTemplateAndConfig(t *testing.T) {
	data := `{
	  "name": "inline", "image": "busybox", "taskTemplate": {
	    "identifier": "{{ env.ID }}", "description": "d", "env": [{"name": "A", "value": "{{env.A}}"}],
	    "inputs": [], "outputs": [{"name": "o", "mounted_path": "/o"}]
	  },
	  "outputs": [{"name": "o", "volume_source": {"host_path": "/data/o"}}],
	  "config": {"type": "docker", "labels": {"team": "{{ env.TEAM }}", "n": 3, "gpu": true}},
	  "env": null, "command": [], "api_version": 1
	}`
	task, warns, err := ParseTask([]byte(data), MapEnv(map[string]string{"ID": "main", "A": "1", "TEAM": "a\"}, {\"x"}))
	if err != nil {
		t.Fatalf("ParseTask = %v, want no error", err)
	}
	want := &Task{
		Name: "inline", Image: "busybox", APIVersion: 1,
		InlineTemplate: &TaskTemplate{
			Identifier: "main", Description: "d", Env: []EnvVarTemplate{{Name: "A", Value: "1"}},
			Outputs: []Channel{{Name: "o", MountedPath: "/o"}},
		},
		Outputs: []Binding{{Name: "o", HostPath: "/data/o"}},
		Command: []string{},
		Labels:  map[string]string{"team": `a"}, {"x`, "n": "3", "gpu": "true"},
	}
	if diff := cmp.Diff(want, task); diff != "" {
		t.Errorf("ParseTask mismatch (-want +got):\n%s", diff)
	}
	wantWarns := []Warning{{"command", "an empty command keeps the template's command"}}
	if diff := cmp.Diff(wantWarns, warns); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}
}

func TestParseDuplicateKeys(t *testing.T) {
	data := `{"name": "a", "name": "b", "image": "x", "taskTemplate": "t", "config": {"type": "podman"}, "foo": 1, "foo": 2}`
	task, warns, err := ParseTask([]byte(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if task.Name != "b" {
		t.Errorf("Name = %q, want the last duplicate %q", task.Name, "b")
	}
	want := []Warning{
		{"name", "duplicate key; the last one is used"},
		{"foo", "duplicate key; the last one is used"},
		{"foo", "unknown field; ignored"},
		{"config.type", `unknown runner type "podman"; ignored`},
	}
	if diff := cmp.Diff(want, warns); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}
}

func TestParseSyntaxErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want error
	}{
		{"empty", ``, ErrSyntax},
		{"truncated", `{"name": `, ErrSyntax},
		{"trailing data", `{} {}`, ErrSyntax},
		{"not json", `name: x`, ErrSyntax},
		{"too deep", strings.Repeat("[", 100000) + strings.Repeat("]", 100000), ErrSyntax},
		{"too large", `"` + strings.Repeat("x", MaxFileSize) + `"`, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, _, err := ParseProcessingContainer([]byte(tt.data))
			if !errors.Is(err, tt.want) || pc != nil {
				t.Errorf("ParseProcessingContainer(%q) = %v, %v; want nil, %v", clip(tt.data), pc, err, tt.want)
			}
			task, _, err := ParseTask([]byte(tt.data), nil)
			if !errors.Is(err, tt.want) || task != nil {
				t.Errorf("ParseTask(%q) = %v, %v; want nil, %v", clip(tt.data), task, err, tt.want)
			}
		})
	}
	_, _, err := ParseProcessingContainer([]byte(`[]`))
	want := Problems{{"", "must be an object, not an array"}}
	if diff := cmp.Diff(error(want), err); diff != "" {
		t.Errorf("ParseProcessingContainer([]) mismatch (-want +got):\n%s", diff)
	}
}

func TestJSONInteger(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"25", 25, false},
		{"25.0", 25, false},
		{"2.5e1", 25, false},
		{"-3", -3, false},
		{"0e999999999", 0, false},
		{"2.5", 0, true},
		{"1e-999999999", 0, true},
		{"1e999999999", 0, true},
		{"9223372036854775807", 9223372036854775807, false},
		{"9223372036854775808", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := jsonInteger(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("jsonInteger(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// publishedDir holds every processing-container.json and task.json Kaapana
// has published, unchanged (see its README.md).
const publishedDir = "testdata/kaapana/published"
