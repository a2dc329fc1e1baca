package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pcnode/pcnode/daemon/spec"
)

type problem struct{ field, description string }

type problemList []problem

func (ps problemList) spec() spec.Problems {
	out := spec.Problems{}
	for _, p := range ps {
		out = append(out, spec.Problem{Field: p.field, Description: p.description})
	}
	return out
}

func TestRun(t *testing.T) {
	for _, c := range []struct {
		name     string
		args     []string
		in       string
		wantCode int
		want     result
		stderr   string
	}{
		{"valid task", []string{"task"}, `{"name": "n", "image": "busybox", "taskTemplate": "t"}`, 0, result{}, ""},
		{"invalid task", []string{"task"}, `{"name": 3}`, 0, result{Problems: problemList{
			{"image", "required"}, {"taskTemplate", "required"}, {"name", "got number, want string"}}.spec()}, ""},
		{"not JSON", []string{"pc"}, `{"templates": `, 0, result{Error: "x"}, ""},
		{"a bad JSON Schema", []string{"jsonschema"}, `{"type": "strin"}`, 0, result{Problems: problemList{{"", "x"}}.spec()}, ""},
		{"too large", []string{"task"}, `"` + strings.Repeat("a", spec.MaxFileSize) + `"`, 0, result{Error: "x"}, ""},
		{"no kind", nil, "", 2, result{}, "usage: pcnode-schema"},
		{"unknown kind", []string{"yaml"}, "", 2, result{}, `unknown kind "yaml"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.args, strings.NewReader(c.in), &out, &errb)
			if code != c.wantCode || !strings.Contains(errb.String(), c.stderr) {
				t.Fatalf("run(%q) = %d, stderr %q; want %d, stderr containing %q", c.args, code, errb.String(), c.wantCode, c.stderr)
			}
			if code != 0 {
				return
			}
			var got result
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("stdout %q: %v", out.String(), err)
			}
			if (got.Error != "") != (c.want.Error != "") || len(got.Problems) != len(c.want.Problems) {
				t.Fatalf("stdout %s, want %+v", out.String(), c.want)
			}
			for i, p := range c.want.Problems {
				if got.Problems[i].Field != p.Field || (p.Description != "x" && got.Problems[i].Description != p.Description) {
					t.Errorf("problem %d = %+v, want %+v", i, got.Problems[i], p)
				}
			}
		})
	}
}
