package spec

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// rejection is one entry of testdata/invalid/expect.json.
type rejection struct {
	File  string `json:"file"`
	PC    bool   `json:"pc"`
	Field string `json:"field"`
}

func TestPcnodeExamples(t *testing.T) {
	pc, warns, err := ParseProcessingContainer(readFile(t, "testdata/pcnode/processing-container.json"))
	if err != nil || len(warns) != 0 {
		t.Fatalf("ParseProcessingContainer(pcnode example) = %v, warnings %v; want neither", err, warns)
	}
	if ps := pc.Validate(); len(ps) != 0 {
		t.Errorf("Validate(pcnode example) = %v, want no problems", ps)
	}
	task, warns, err := ParseTask(readFile(t, "testdata/pcnode/task.json"), MapEnv(map[string]string{"DATA": "/data"}))
	if err != nil || len(warns) != 0 {
		t.Fatalf("ParseTask(pcnode example) = %v, warnings %v; want neither", err, warns)
	}
	inst, _, ps := Merge(pc, task)
	if len(ps) != 0 {
		t.Fatalf("Merge(pcnode example) = %v, want no problems", ps)
	}
	want := Resources{
		Requests: ResourceList{MemoryBytes: 1 << 30, CPUMillis: 500, GPUs: 1},
		Limits:   ResourceList{MemoryBytes: 8 << 30, CPUMillis: 2000, GPUs: 1},
	}
	if inst.Resources != want {
		t.Errorf("Merge(pcnode example) resources = %+v, want %+v", inst.Resources, want)
	}
}

func TestInvalidExamples(t *testing.T) {
	var cases []rejection
	if err := json.Unmarshal(readFile(t, "testdata/invalid/expect.json"), &cases); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/invalid/*-*.json")
	if len(files) != len(cases) {
		t.Errorf("testdata/invalid has %d example files and expect.json %d entries", len(files), len(cases))
	}
	base, _, err := ParseProcessingContainer(readFile(t, "testdata/pcnode/processing-container.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.File, func(t *testing.T) {
			data := readFile(t, filepath.Join("testdata/invalid", c.File))
			var ps Problems
			if strings.HasPrefix(c.File, "pc-") {
				pc, _, err := ParseProcessingContainer(data)
				if err != nil {
					t.Fatalf("ParseProcessingContainer(%q) = %v, want it to parse", c.File, err)
				}
				ps = pc.Validate()
			} else {
				task, _, err := ParseTask(data, nil)
				if err != nil {
					t.Fatalf("ParseTask(%q) = %v, want it to parse", c.File, err)
				}
				if c.PC {
					_, _, ps = Merge(base, task)
				} else {
					ps = task.Validate()
				}
			}
			if !slices.ContainsFunc(ps, func(p Problem) bool { return p.Field == c.Field }) {
				t.Errorf("%s: problems %v, want one at %q", c.File, ps, c.Field)
			}
		})
	}
}
