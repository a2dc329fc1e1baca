package spec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pcnode/pcnode/daemon/spec"
	"github.com/pcnode/pcnode/daemon/spec/schema"
)

// conformanceCase is one file of testdata/conformance (see its README.md):
// a document, optionally the processing-container a task is checked
// against, and the verdict pcnode's rules give it. Python runs the same
// files and must agree.
type conformanceCase struct {
	Kind     string          `json:"kind"`
	Doc      json.RawMessage `json:"doc"`
	PC       json.RawMessage `json:"pc"`
	Valid    *bool           `json:"valid"`
	Problems []string        `json:"problems"`
	Note     string          `json:"note"`
	// Python is "node-only" for a case that hinges on what only the node
	// checks (a target_regex's program size); Go runs it as any other.
	Python string `json:"python"`
}

// conformanceProblems checks a case the way pcnode-cli validate checks a
// file: the JSON Schema, then parsing and semantic validation (Merge against
// the case's pc when it has one). A document that is not JSON, or a
// parse error that is not a list of problems, is one problem at "".
func conformanceProblems(t *testing.T, c conformanceCase) spec.Problems {
	t.Helper()
	k := schema.ProcessingContainer
	if c.Kind == "task" {
		k = schema.Task
	}
	ps, err := schema.Validate(k, c.Doc)
	if err != nil {
		return spec.Problems{{Field: "", Description: err.Error()}}
	}
	add := func(err error) {
		var pps spec.Problems
		switch {
		case errors.As(err, &pps):
			ps = append(ps, pps...)
		case err != nil:
			ps = append(ps, spec.Problem{Description: err.Error()})
		}
	}
	switch k {
	case schema.ProcessingContainer:
		pc, _, err := spec.ParseProcessingContainer(c.Doc)
		add(err)
		if pc != nil {
			ps = append(ps, pc.Validate()...)
		}
	case schema.Task:
		task, _, err := spec.ParseTask(c.Doc, nil)
		add(err)
		if task == nil {
			break
		}
		if len(c.PC) == 0 {
			ps = append(ps, task.Validate()...)
			break
		}
		pc, _, err := spec.ParseProcessingContainer(c.PC)
		if err != nil {
			t.Fatalf("the case's pc does not parse: %v", err)
		}
		_, _, mps := spec.Merge(pc, task)
		ps = append(ps, mps...)
	}
	return ps
}

// TestConformance runs every case of testdata/conformance through the Go
// parse and validation and checks the verdict and that every listed field
// path is among the problems reported.
func TestConformance(t *testing.T) {
	files, err := filepath.Glob("testdata/conformance/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("found %d conformance cases, want at least 5", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var c conformanceCase
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				t.Fatalf("%s is not a conformance case: %v", f, err)
			}
			switch {
			case c.Kind != "processing-container" && c.Kind != "task":
				t.Fatalf("kind %q, want processing-container or task", c.Kind)
			case c.Valid == nil || len(c.Doc) == 0:
				t.Fatal(`a case needs "doc" and "valid"`)
			case *c.Valid && len(c.Problems) != 0:
				t.Fatal("a valid case lists no problems")
			case !*c.Valid && len(c.Problems) == 0:
				t.Fatal("an invalid case lists the field paths of its problems")
			case len(c.PC) != 0 && c.Kind != "task":
				t.Fatal(`only a task case may give "pc"`)
			case c.Python != "" && c.Python != "node-only":
				t.Fatalf(`"python" is %q; the one value is "node-only"`, c.Python)
			}
			ps := conformanceProblems(t, c)
			if *c.Valid && len(ps) != 0 {
				t.Errorf("%s (%s): problems %v, want valid", f, c.Note, ps)
			}
			if !*c.Valid && len(ps) == 0 {
				t.Errorf("%s (%s): valid, want problems at %s", f, c.Note, strings.Join(c.Problems, ", "))
			}
			for _, want := range c.Problems {
				if !slices.ContainsFunc(ps, func(p spec.Problem) bool { return p.Field == want }) {
					t.Errorf("%s (%s): problems %v, want one at %q", f, c.Note, ps, want)
				}
			}
		})
	}
}
