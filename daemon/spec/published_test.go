package spec_test

import (
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

const publishedDir = "testdata/kaapana/published"

// rejectedFile is one entry of published/rejected.json: a file Kaapana
// published that is not in the current format, and what pcnode must say.
type rejectedFile struct {
	File     string   `json:"file"`
	Kind     string   `json:"kind"`
	Syntax   bool     `json:"syntax"`
	Problems []string `json:"problems"`
	Reason   string   `json:"reason"`
}

func loadRejected(t *testing.T) map[string]rejectedFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(publishedDir, "rejected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list []rejectedFile
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("rejected.json: %v", err)
	}
	out := map[string]rejectedFile{}
	for _, r := range list {
		if _, err := os.Stat(filepath.Join(publishedDir, r.File)); err != nil {
			t.Errorf("rejected.json names %s: %v", r.File, err)
		}
		if r.Reason == "" || (!r.Syntax && len(r.Problems) == 0) {
			t.Errorf("rejected.json entry %s needs a reason and, unless it is a syntax error, problems", r.File)
		}
		out[r.File] = r
	}
	return out
}

// publishedFiles lists every Kaapana file under published/, relative to it,
// by kind: "pc" for processing-container.json, "task" for tasks/*.json.
func publishedFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(publishedDir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") || filepath.Dir(p) == publishedDir {
			return err // rejected.json is pcnode's, at the top
		}
		rel, _ := filepath.Rel(publishedDir, p)
		switch {
		case filepath.Base(p) == "processing-container.json":
			files[rel] = "pc"
		case filepath.Base(filepath.Dir(p)) == "tasks":
			files[rel] = "task"
		default:
			t.Errorf("%s is neither a processing-container.json nor a tasks/*.json", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// publishedEnv gives the variables Kaapana's task files use as placeholders.
var publishedEnv = spec.MapEnv(map[string]string{
	"registry": "registry.example.org", "registryUrl": "registry.example.org:5000",
	"registryUsername": "u", "registryPassword": "p", "namespace": "default",
	"input_dir": "/data/in", "output_dir": "/data/out",
})

// check runs a file through what pcnode does to one (schema, then parse and
// Go validation) and returns every problem, or the syntax error.
func check(t *testing.T, kind, rel string) (spec.Problems, []spec.Warning, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(publishedDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	k := schema.ProcessingContainer
	if kind == "task" {
		k = schema.Task
	}
	ps, err := schema.Validate(k, data)
	if err != nil {
		return nil, nil, err
	}
	var warns []spec.Warning
	var perr error
	if kind == "pc" {
		var pc *spec.ProcessingContainer
		pc, warns, perr = spec.ParseProcessingContainer(data)
		if perr == nil {
			ps = append(ps, pc.Validate()...)
		}
	} else {
		var task *spec.Task
		task, warns, perr = spec.ParseTask(data, publishedEnv)
		if perr == nil {
			ps = append(ps, task.Validate()...)
		}
	}
	var pps spec.Problems
	switch {
	case errors.As(perr, &pps):
		ps = append(ps, pps...)
	case perr != nil:
		return nil, nil, perr
	}
	return ps, warns, nil
}

// TestPublishedKaapanaFiles: every processing-container.json and task.json
// Kaapana has published passes pcnode's JSON Schema and its Go validation,
// except the few in rejected.json, which fail with exactly the problems
// listed there (field paths as Go reports them).
func TestPublishedKaapanaFiles(t *testing.T) {
	rejected := loadRejected(t)
	files := publishedFiles(t)
	var pcs int
	for rel, kind := range files {
		if kind == "pc" {
			pcs++
		}
		t.Run(rel, func(t *testing.T) {
			ps, warns, err := check(t, kind, rel)
			r, isRejected := rejected[rel]
			switch {
			case isRejected && r.Syntax:
				if !errors.Is(err, spec.ErrSyntax) {
					t.Errorf("%s: got %v, %v; want a syntax error (%s)", rel, ps, err, r.Reason)
				}
			case err != nil:
				t.Fatalf("%s: %v", rel, err)
			case isRejected:
				for _, f := range r.Problems {
					if !slices.ContainsFunc(ps, func(p spec.Problem) bool { return p.Field == f }) {
						t.Errorf("%s: problems %v, want one at %q (%s)", rel, ps, f, r.Reason)
					}
				}
				if len(ps) == 0 {
					t.Errorf("%s: valid, want rejected (%s)", rel, r.Reason)
				}
			case len(ps) != 0:
				t.Errorf("%s: %v, want valid", rel, ps)
			}
			for _, w := range warns {
				// Kaapana's models ignore fields they lack; pcnode says so.
				if !strings.Contains(w.Description, "ignored") {
					t.Errorf("%s: warning %v", rel, w)
				}
			}
		})
	}
	if pcs < 37 {
		t.Errorf("found %d processing-container.json files under %s, want all 37 Kaapana published", pcs, publishedDir)
	}
	for rel := range rejected {
		if _, ok := files[rel]; !ok {
			t.Errorf("rejected.json names %s, which is not a published file", rel)
		}
	}
}

// TestPublishedTasksMerge: each valid task file binds to the template of the
// processing-container.json beside it with no problems.
func TestPublishedTasksMerge(t *testing.T) {
	rejected := loadRejected(t)
	n := 0
	for rel, kind := range publishedFiles(t) {
		pcRel := filepath.Join(filepath.Dir(filepath.Dir(rel)), "processing-container.json")
		if _, bad := rejected[rel]; kind != "task" || bad {
			continue
		}
		if _, bad := rejected[pcRel]; bad {
			continue
		}
		pcData, err := os.ReadFile(filepath.Join(publishedDir, pcRel))
		if errors.Is(err, os.ErrNotExist) {
			continue // bodypart-regression's task sits apart from its container
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		t.Run(rel, func(t *testing.T) {
			pc, _, err := spec.ParseProcessingContainer(pcData)
			if err != nil {
				t.Fatal(err)
			}
			task, _, err := spec.ParseTask(readPublished(t, rel), publishedEnv)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, ps := spec.Merge(pc, task); len(ps) != 0 {
				t.Errorf("Merge(%s, %s) = %v, want no problems", pcRel, rel, ps)
			}
		})
	}
	if n < 5 {
		t.Errorf("merged %d published tasks with their containers, want at least 5", n)
	}
}

func readPublished(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(publishedDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
