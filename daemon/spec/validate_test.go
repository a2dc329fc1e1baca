package spec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ptr[T any](v T) *T { return &v }

// validPC is a processing-container with two sound templates.
func validPC() *ProcessingContainer {
	return &ProcessingContainer{
		Name: "pc", Description: "d", APIVersion: 1,
		Templates: []TaskTemplate{
			{
				Identifier: "main", Description: "d",
				Env: []EnvVarTemplate{
					{Name: "MODE", Value: "fast", Choices: []string{"fast", "slow"}},
					{Name: "N", Value: "3", Type: EnvTypeInteger},
					{Name: "LOCKED", Value: "x", Adjustable: ptr(false)},
				},
				Inputs: []Channel{
					{Name: "in", MountedPath: "/data/in", ScaleRule: &ScaleRule{ScaleFactor: 2, Type: TypeLimit, Mode: ModeSum}},
					{Name: "aux", MountedPath: "/data/aux"},
				},
				Outputs:   []Channel{{Name: "out", MountedPath: "/data/out"}},
				Command:   []string{"run"},
				Resources: Resources{Requests: ResourceList{MemoryBytes: 1 << 30}, Limits: ResourceList{MemoryBytes: 2 << 30}},
			},
			{Identifier: "other", Description: "d", Outputs: []Channel{{Name: "out", MountedPath: "/out"}}},
		},
	}
}

func TestValidProcessingContainer(t *testing.T) {
	if ps := validPC().Validate(); len(ps) != 0 {
		t.Errorf("validPC().Validate() = %v, want no problems", ps)
	}
}

func TestProcessingContainerValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(pc *ProcessingContainer)
		want   Problems
	}{
		{
			name:   "duplicate identifier",
			mutate: func(pc *ProcessingContainer) { pc.Templates[1].Identifier = "main" },
			want:   Problems{{"templates[1].identifier", `duplicate identifier "main" (also templates[0])`}},
		},
		{
			name:   "missing identifier and api version",
			mutate: func(pc *ProcessingContainer) { pc.Templates[1].Identifier = ""; pc.APIVersion = 2 },
			want:   Problems{{"api_version", "must be 1, the only version, not 2"}, {"templates[1].identifier", "required"}},
		},
		{
			name: "channel names",
			mutate: func(pc *ProcessingContainer) {
				pc.Templates[0].Outputs[0].Name = "in" // an input and an output may share a name
				pc.Templates[0].Inputs[1].Name = ""
			},
			want: Problems{
				{"templates[0].inputs[1].name", "required"},
			},
		},
		{
			name: "duplicate channel names within a list",
			mutate: func(pc *ProcessingContainer) {
				pc.Templates[0].Inputs[1].Name = pc.Templates[0].Inputs[0].Name
				pc.Templates[0].Outputs = append(pc.Templates[0].Outputs, Channel{Name: pc.Templates[0].Outputs[0].Name, MountedPath: "/data/out2"})
			},
			want: Problems{
				{"templates[0].inputs[1].name", `duplicate channel name "in" (also templates[0].inputs[0])`},
				{"templates[0].outputs[1].name", `duplicate channel name "out" (also templates[0].outputs[0])`},
			},
		},
		{
			name: "mounted paths",
			mutate: func(pc *ProcessingContainer) {
				pc.Templates[0].Inputs[0].MountedPath = "data/in"
				pc.Templates[0].Inputs[1].MountedPath = "/data/aux/"
				pc.Templates[0].Outputs[0].MountedPath = "/"
				pc.Templates[1].Outputs[0].MountedPath = "/proc/x"
			},
			want: Problems{
				{"templates[0].inputs[0].mounted_path", `"data/in" must be an absolute path`},
				{"templates[0].inputs[1].mounted_path", `"/data/aux/" must be a clean path ("/data/aux")`},
				{"templates[0].outputs[0].mounted_path", "must not be / (the container's root)"},
				{"templates[1].outputs[0].mounted_path", `"/proc/x" is under /proc, which the container runtime owns`},
			},
		},
		{
			name: "overlapping mounts",
			mutate: func(pc *ProcessingContainer) {
				pc.Templates[0].Inputs[1].MountedPath = "/data/in"
				pc.Templates[0].Outputs[0].MountedPath = "/data"
			},
			want: Problems{
				{"templates[0].inputs[1].mounted_path", `"/data/in" is the same path as templates[0].inputs[0].mounted_path ("/data/in"); channel mounts must not overlap`},
				{"templates[0].outputs[0].mounted_path", `"/data" contains templates[0].inputs[0].mounted_path ("/data/in"); channel mounts must not overlap`},
				{"templates[0].outputs[0].mounted_path", `"/data" contains templates[0].inputs[1].mounted_path ("/data/in"); channel mounts must not overlap`},
			},
		},
		{
			name: "mount inside another, prefix without separator is fine",
			mutate: func(pc *ProcessingContainer) {
				pc.Templates[0].Inputs[1].MountedPath = "/data/in/sub"
				pc.Templates[0].Outputs[0].MountedPath = "/data/input"
			},
			want: Problems{{"templates[0].inputs[1].mounted_path", `"/data/in/sub" is inside templates[0].inputs[0].mounted_path ("/data/in"); channel mounts must not overlap`}},
		},
		{
			name: "env names",
			mutate: func(pc *ProcessingContainer) {
				pc.Templates[0].Env[1].Name = "MODE"
				pc.Templates[0].Env[2].Name = "9LIVES"
			},
			want: Problems{
				{"templates[0].env[1].name", `duplicate variable "MODE" (also templates[0].env[0])`},
				{"templates[0].env[2].name", `"9LIVES" is not a POSIX variable name ([A-Za-z_][A-Za-z0-9_]*)`},
			},
		},
		{
			name: "env types and choices",
			mutate: func(pc *ProcessingContainer) {
				pc.Templates[0].Env[0].Value = "medium"
				pc.Templates[0].Env[1].Value = "3.5"
				pc.Templates[0].Env[2].Type = "double"
				pc.Templates[1].Env = []EnvVarTemplate{
					{Name: "B", Value: "yes", Type: EnvTypeBoolean},
					{Name: "F", Value: "1e3", Type: EnvTypeNumber, Choices: []string{"1e3", "x"}},
					{Name: "G", Value: ".5", Type: EnvTypeNumber},
				}
			},
			want: Problems{
				{"templates[0].env[0].value", `"medium" is not one of the choices ["fast", "slow"] of MODE`},
				{"templates[0].env[1].value", `"3.5" is not an integer`},
				{"templates[0].env[2].type", `unknown type "double" (one of string, integer, number, boolean, or Kaapana's str, int, float, bool)`},
				{"templates[1].env[0].value", `"yes" is not a boolean (true or false)`},
				{"templates[1].env[1].choices[1]", `"x" is not a number`},
				{"templates[1].env[2].value", `".5" is not a number`},
			},
		},
		{
			name:   "empty choices allow anything",
			mutate: func(pc *ProcessingContainer) { pc.Templates[0].Env[0].Choices = []string{} },
		},
		{
			name: "scale rules",
			mutate: func(pc *ProcessingContainer) {
				pc.Templates[0].Inputs[0].ScaleRule = &ScaleRule{Mode: "avg", Type: "lim", ScaleFactor: 0,
					TargetRegex: "(", TargetGlob: "[", TargetDir: "../x"}
				pc.Templates[0].Inputs[1].ScaleRule = &ScaleRule{ScaleFactor: -1, TargetDir: "/abs", TargetGlob: "a//b", TargetRegex: "a)|(b"}
			},
			want: Problems{
				{"templates[0].inputs[0].scale_rule.mode", `unknown mode "avg" (one of sum, max_file_size, max_item_sum)`},
				{"templates[0].inputs[0].scale_rule.type", `unknown type "lim" (one of limit, request)`},
				{"templates[0].inputs[0].scale_rule.scale_factor", "must be positive, not 0"},
				{"templates[0].inputs[0].scale_rule.target_regex", "does not compile (Go RE2 syntax): missing closing ): \"(\""},
				{"templates[0].inputs[0].scale_rule.target_glob", `"[" is not a valid glob (Go path.Match syntax): syntax error in pattern`},
				{"templates[0].inputs[0].scale_rule.target_dir", `"../x" leaves the channel`},
				{"templates[0].inputs[1].scale_rule.mode", "required"},
				{"templates[0].inputs[1].scale_rule.type", "required"},
				{"templates[0].inputs[1].scale_rule.scale_factor", "must be positive, not -1"},
				{"templates[0].inputs[1].scale_rule.target_regex", "does not compile (Go RE2 syntax): unexpected ): \"a)|(b\""},
				{"templates[0].inputs[1].scale_rule.target_glob", `"a//b" has an empty path segment`},
				{"templates[0].inputs[1].scale_rule.target_dir", `"/abs" must be relative to the channel`},
			},
		},
		{
			name: "resources",
			mutate: func(pc *ProcessingContainer) {
				pc.Templates[0].Resources = Resources{
					Requests: ResourceList{MemoryBytes: 3 << 30, CPUMillis: 2000, GPUs: 1},
					Limits:   ResourceList{MemoryBytes: 2 << 30, CPUMillis: 1000, GPUs: 2},
				}
				pc.Templates[1].Resources.Limits.CPUMillis = -1
			},
			want: Problems{
				{"templates[0].resources.requests.memory", "request 3Gi is above the limit 2Gi"},
				{"templates[0].resources.requests.cpu", "request 2 is above the limit 1"},
				{`templates[0].resources.requests["nvidia.com/gpu"]`, "GPU request 1 and limit 2 must be equal when both are given"},
				{"templates[1].resources.limits.cpu", "-1 is out of range 0..1125899906842624"},
			},
		},
		{
			name:   "command with NUL",
			mutate: func(pc *ProcessingContainer) { pc.Templates[0].Command = []string{"run", "a\x00b"} },
			want:   Problems{{"templates[0].command[1]", "contains a NUL byte"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc := validPC()
			tt.mutate(pc)
			if diff := cmp.Diff(tt.want, pc.Validate()); diff != "" {
				t.Errorf("Validate() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTemplateValidateFieldsFromTemplate(t *testing.T) {
	tmpl := validPC().Templates[0]
	tmpl.Inputs[0].MountedPath = "rel"
	want := Problems{{"inputs[0].mounted_path", `"rel" must be an absolute path`}}
	if diff := cmp.Diff(want, tmpl.Validate()); diff != "" {
		t.Errorf("TaskTemplate.Validate() mismatch (-want +got):\n%s", diff)
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		glob string
		rel  string
		want bool
	}{
		{"*", "a.txt", true},
		{"*", "sub/deep/a.txt", true},
		{"*.txt", "sub/a.txt", true},
		{"*.txt", "a.txt.gz", false},
		{"sub/*.txt", "x/sub/a.txt", true},
		{"sub/*.txt", "sub/a.txt", true},
		{"sub/*.txt", "a.txt", false},
		{"**/*.dcm", "a/b/c.dcm", true},
		{"a/**/c", "a/c", true},
		{"a/**/c", "a/x/y/c", true},
		{"[!a]*", "b.txt", true},
		{"[!a]*", "a.txt", false},
		{"[^a]*", "a.txt", false},
		{".*", ".hidden", true},
		{"?.txt", "ab.txt", false},
	}
	for _, tt := range tests {
		t.Run(tt.glob+" "+tt.rel, func(t *testing.T) {
			g, err := compileGlob(tt.glob)
			if err != nil {
				t.Fatalf("compileGlob(%q) = %v", tt.glob, err)
			}
			if got := g.match(splitRel(tt.rel)); got != tt.want {
				t.Errorf("glob %q match(%q) = %v, want %v", tt.glob, tt.rel, got, tt.want)
			}
		})
	}
}

func splitRel(rel string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(rel); i++ {
		if i == len(rel) || rel[i] == '/' {
			out = append(out, rel[start:i])
			start = i + 1
		}
	}
	return out
}

func TestTargetRegexFullMatch(t *testing.T) {
	tests := []struct {
		expr, rel string
		want      bool
	}{
		{`.*\.txt`, "a.txt", true},
		{`.*\.txt`, "sub/a.txt", true},
		{`.*\.txt`, "a.txt.bak", false},
		{`a`, "ba", false},
		{`a|b`, "b", true},
		{``, "anything/at/all", true},
		{`(?P<n>[0-9]+)\.dcm`, "12.dcm", true},
	}
	for _, tt := range tests {
		re, err := compileTargetRegex(tt.expr)
		if err != nil {
			t.Fatalf("compileTargetRegex(%q) = %v", tt.expr, err)
		}
		if got := re.MatchString(tt.rel); got != tt.want {
			t.Errorf("regex %q MatchString(%q) = %v, want %v", tt.expr, tt.rel, got, tt.want)
		}
	}
}
