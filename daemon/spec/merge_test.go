package spec

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// validTask binds every channel of validPC's "main" template.
func validTask() *Task {
	return &Task{
		Name: "t", Image: "registry.example.org/tool:1.0", TemplateIdentifier: "main",
		Inputs: []Binding{
			{Name: "aux", HostPath: "/srv/aux"},
			{Name: "in", HostPath: "/srv/in"},
		},
		Outputs: []Binding{{Name: "out", HostPath: "/srv/out"}},
	}
}

func TestMergeValid(t *testing.T) {
	task := validTask()
	task.Env = []EnvVar{{Name: "N", Value: "-7"}, {Name: "EXTRA", Value: "e"}, {Name: "LOCKED", Value: "x"}}
	task.Command = []string{"other", "cmd"}
	task.Resources = Resources{Limits: ResourceList{CPUMillis: 1500}, Requests: ResourceList{CPUMillis: 500}}
	task.Labels = map[string]string{"team": "a", "pcnode.io/x": "y"}
	inst, warns, ps := Merge(validPC(), task)
	if len(ps) != 0 {
		t.Fatalf("Merge = %v, want no problems", ps)
	}
	want := &Instance{
		Image: "registry.example.org/tool:1.0", TemplateIdentifier: "main",
		Env:     []EnvVar{{Name: "MODE", Value: "fast"}, {Name: "N", Value: "-7"}, {Name: "LOCKED", Value: "x"}, {Name: "EXTRA", Value: "e"}},
		Command: []string{"other", "cmd"},
		Inputs: []Mount{
			{Name: "in", HostPath: "/srv/in", MountedPath: "/data/in", ReadOnly: true},
			{Name: "aux", HostPath: "/srv/aux", MountedPath: "/data/aux", ReadOnly: true},
		},
		Outputs: []Mount{{Name: "out", HostPath: "/srv/out", MountedPath: "/data/out"}},
		Resources: Resources{
			Requests: ResourceList{MemoryBytes: 1 << 30, CPUMillis: 500},
			Limits:   ResourceList{MemoryBytes: 2 << 30, CPUMillis: 1500},
		},
	}
	if diff := cmp.Diff(want, inst); diff != "" {
		t.Errorf("Merge mismatch (-want +got):\n%s", diff)
	}
	wantWarns := []Warning{{"env[1].name", `"EXTRA" is not declared by template "main"; added`}}
	if diff := cmp.Diff(wantWarns, warns); diff != "" {
		t.Errorf("Merge warnings mismatch (-want +got):\n%s", diff)
	}
}

func TestMergeProblems(t *testing.T) {
	tests := []struct {
		name   string
		pc     func(*ProcessingContainer)
		mutate func(*Task)
		want   Problems
	}{
		{
			name:   "unknown template",
			mutate: func(t *Task) { t.TemplateIdentifier = "nope" },
			want:   Problems{{"taskTemplate", `processing-container "pc" has no template "nope" (it has ["main", "other"])`}},
		},
		{
			name:   "unknown task channel",
			mutate: func(t *Task) { t.Inputs = append(t.Inputs, Binding{Name: "extra", HostPath: "/srv/x"}) },
			want:   Problems{{"inputs[2].name", `template "main" has no input channel "extra" (its inputs: ["in", "aux"])`}},
		},
		{
			name:   "output bound as input",
			mutate: func(t *Task) { t.Inputs[0] = Binding{Name: "out", HostPath: "/srv/o2"} },
			want: Problems{
				{"inputs[0].name", `"out" is not an input channel of template "main" (it is an output)`},
				{"inputs", `input channel "aux" of template "main" is not bound to a host path`},
			},
		},
		{
			name:   "unbound template channels",
			mutate: func(t *Task) { t.Inputs = t.Inputs[1:]; t.Outputs = nil },
			want: Problems{
				{"inputs", `input channel "aux" of template "main" is not bound to a host path`},
				{"outputs", `output channel "out" of template "main" is not bound to a host path`},
			},
		},
		{
			name: "env overrides",
			mutate: func(t *Task) {
				t.Env = []EnvVar{{Name: "MODE", Value: "medium"}, {Name: "N", Value: "three"}, {Name: "LOCKED", Value: "y"}, {Name: "OK", Value: "v"}}
			},
			want: Problems{
				{"env[0].value", `"medium" is not one of the choices ["fast", "slow"] of MODE`},
				{"env[1].value", `"three" is not an integer`},
				{"env[2].value", `LOCKED is not adjustable in template "main"; it stays "x"`},
			},
		},
		{
			name: "request above limit after override",
			mutate: func(t *Task) {
				t.Resources.Requests.MemoryBytes = 4 << 30
			},
			want: Problems{{"resources.requests.memory", "request 4Gi is above the limit 2Gi"}},
		},
		{
			name: "the selected template is validated",
			pc: func(pc *ProcessingContainer) {
				pc.Templates[0].Inputs[0].MountedPath = "in"
				pc.Templates[1].Identifier = ""
			},
			want: Problems{{"templates[0].inputs[0].mounted_path", `"in" must be an absolute path`}},
		},
		{
			name: "duplicate identifier of the selected template",
			pc:   func(pc *ProcessingContainer) { pc.Templates[1].Identifier = "main" },
			want: Problems{{"templates[1].identifier", `duplicate identifier "main" (also templates[0])`}},
		},
		{
			name: "task problems come too",
			mutate: func(t *Task) {
				t.Image = "Not A Reference"
				t.Outputs[0].HostPath = "/srv/in/out"
				t.Env = []EnvVar{{Name: "1X", Value: "v"}}
			},
			want: Problems{
				{"image", `"Not A Reference" is not an image reference: invalid reference format: repository name (library/Not A Reference) must be lowercase`},
				{"outputs[0].volume_source.host_path", `output directory "/srv/in/out" is inside inputs[1].volume_source.host_path ("/srv/in"); outputs are emptied before a run`},
				{"env[0].name", `"1X" is not a POSIX variable name ([A-Za-z_][A-Za-z0-9_]*)`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, task := validPC(), validTask()
			if tt.pc != nil {
				tt.pc(pc)
			}
			if tt.mutate != nil {
				tt.mutate(task)
			}
			inst, _, ps := Merge(pc, task)
			if diff := cmp.Diff(tt.want, ps); diff != "" {
				t.Errorf("Merge problems mismatch (-want +got):\n%s", diff)
			}
			if inst != nil {
				t.Errorf("Merge instance = %+v, want nil with problems", inst)
			}
			if !errors.Is(ps.Err(), ErrInvalid) {
				t.Errorf("Problems.Err() = %v, want ErrInvalid", ps.Err())
			}
		})
	}
}

func TestMergeInlineTemplate(t *testing.T) {
	task := &Task{
		Name: "t", Image: "busybox",
		InlineTemplate: &TaskTemplate{Identifier: "inline", Description: "d",
			Outputs: []Channel{{Name: "o", MountedPath: "/o"}}, Command: []string{"sh"}},
		Outputs: []Binding{{Name: "o", HostPath: "/srv/o"}},
	}
	inst, _, ps := Merge(nil, task)
	if len(ps) != 0 {
		t.Fatalf("Merge(nil, inline) = %v, want no problems", ps)
	}
	want := &Instance{Image: "busybox", TemplateIdentifier: "inline", Env: []EnvVar{}, Command: []string{"sh"}, Inputs: []Mount{},
		Outputs: []Mount{{Name: "o", HostPath: "/srv/o", MountedPath: "/o"}}}
	if diff := cmp.Diff(want, inst); diff != "" {
		t.Errorf("Merge(nil, inline) mismatch (-want +got):\n%s", diff)
	}

	task.InlineTemplate.Outputs[0].MountedPath = "/"
	task.InlineTemplate.Env = []EnvVarTemplate{{Name: "A", Value: "x", Type: EnvTypeBoolean}}
	_, _, ps = Merge(nil, task)
	wantPs := Problems{
		{"taskTemplate.env[0].value", `"x" is not a boolean (true or false)`},
		{"taskTemplate.outputs[0].mounted_path", "must not be / (the container's root)"},
	}
	if diff := cmp.Diff(wantPs, ps); diff != "" {
		t.Errorf("Merge(nil, invalid inline) mismatch (-want +got):\n%s", diff)
	}

	_, _, ps = Merge(nil, validTask())
	wantPs = Problems{{"taskTemplate", `template "main" named, but no processing-container given to find it in`}}
	if diff := cmp.Diff(wantPs, ps); diff != "" {
		t.Errorf("Merge(nil, identifier) mismatch (-want +got):\n%s", diff)
	}
}

func TestTaskValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Task)
		want   Problems
	}{
		{"valid", func(*Task) {}, nil},
		{
			name:   "no template, no image",
			mutate: func(t *Task) { t.TemplateIdentifier = ""; t.Image = "" },
			want: Problems{
				{"image", "required"},
				{"taskTemplate", "required: a template identifier or an inline template"},
			},
		},
		{
			name:   "both templates",
			mutate: func(t *Task) { t.InlineTemplate = &TaskTemplate{Identifier: "x"} },
			want:   Problems{{"taskTemplate", "give a template identifier or an inline template, not both"}},
		},
		{
			name: "bindings",
			mutate: func(t *Task) {
				t.Inputs[0].HostPath = "relative/path"
				t.Inputs[1].Name = "aux"
				t.Outputs[0].HostPath = ""
				t.Outputs = append(t.Outputs, Binding{Name: "o2", HostPath: "/srv", ScaleRule: &ScaleRule{ScaleFactor: 1, Type: TypeLimit, Mode: ModeSum}})
			},
			want: Problems{
				{"inputs[0].volume_source.host_path", `"relative/path" must be an absolute path`},
				{"inputs[1].name", `channel "aux" is bound twice (also inputs[0])`},
				{"outputs[0].volume_source.host_path", "required"},
				{"outputs[1].scale_rule", "scale rules apply to input channels only"},
				{"outputs[1].volume_source.host_path", `output directory "/srv" contains inputs[1].volume_source.host_path ("/srv/in"); outputs are emptied before a run`},
			},
		},
		{
			name: "output overlaps",
			mutate: func(t *Task) {
				t.Outputs = append(t.Outputs, Binding{Name: "o2", HostPath: "/srv/out/"}, Binding{Name: "o3", HostPath: "/srv/aux"})
			},
			want: Problems{
				{"outputs[1].volume_source.host_path", `output directory "/srv/out" is the same path as outputs[0].volume_source.host_path ("/srv/out"); outputs are emptied before a run`},
				{"outputs[2].volume_source.host_path", `output directory "/srv/aux" is the same path as inputs[0].volume_source.host_path ("/srv/aux"); outputs are emptied before a run`},
			},
		},
		{
			name: "inputs may share a directory",
			mutate: func(t *Task) {
				t.Inputs[1].HostPath = "/srv/aux"
			},
		},
		{
			name: "labels, name, env, api version, resources",
			mutate: func(t *Task) {
				t.APIVersion = 3
				t.Name = string(make([]byte, MaxNameLen+1))
				t.Labels = map[string]string{"": "x", "has space": "v", "ok": "a\x00"}
				t.Env = []EnvVar{{Name: "A", Value: "1"}, {Name: "A", Value: "2"}}
				t.Resources.Limits.GPUs = -2
			},
			want: Problems{
				{"api_version", "must be 1, the only version, not 3"},
				{"name", "is 257 bytes long; at most 256"},
				{"name", "contains control character U+0000"},
				{"env[1].name", `duplicate variable "A" (also env[0])`},
				{`config.labels[""]`, "label key must not be empty"},
				{`config.labels["has space"]`, `label key "has space" may hold only letters, digits and . _ / -`},
				{"config.labels.ok", "label value contains control character U+0000"},
				{`resources.limits["nvidia.com/gpu"]`, "-2 is out of range 0..2147483647"},
			},
		},
		{
			name: "placeholders skip form checks",
			mutate: func(t *Task) {
				t.Image = "{{ env.REG }}/x"
				t.Inputs[0].HostPath = "{{ env.DIR }}/aux"
				t.Placeholders = []Placeholder{{"image", "REG"}, {"inputs[0].volume_source.host_path", "DIR"}}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := validTask()
			tt.mutate(task)
			if diff := cmp.Diff(tt.want, task.Validate()); diff != "" {
				t.Errorf("Task.Validate() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPIField(t *testing.T) {
	tests := []struct{ in, want string }{
		{"taskTemplate", "template_identifier"},
		{"taskTemplate.env[0].value", "inline_template.env[0].value"},
		{"taskTemplate.resources.limits.memory", "inline_template.resources.limits.memory_bytes"},
		{"inputs[0].volume_source.host_path", "inputs[0].host_path"},
		{"inputs[0].scale_rule.mode", "inputs[0].scale_rule.mode"},
		{"config.labels.team", "labels.team"},
		{`config.labels["a b"]`, `labels["a b"]`},
		{"resources.requests.cpu", "resources.requests.cpu_millis"},
		{`resources.limits["nvidia.com/gpu"]`, "resources.limits.gpus"},
		{"env[1].name", "env[1].name"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := APIField(tt.in); got != tt.want {
			t.Errorf("APIField(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
