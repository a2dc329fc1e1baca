package spec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp/syntax"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// addJSONSeeds adds every example file in testdata as a seed.
func addJSONSeeds(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %q: %v", pattern, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseProcessingContainer(f *testing.F) {
	addJSONSeeds(f, "testdata/kaapana/*/processing-container.json")
	addJSONSeeds(f, "testdata/invalid/pc-*.json")
	f.Add([]byte(`{"name":"n","description":"d","templates":[{"identifier":"a","description":"d","env":[{"name":"A","value":"1","type":"integer","choices":["1"],"adjustable":false}],"inputs":[{"name":"i","mounted_path":"/i","scale_rule":{"scale_factor":1e0,"type":"limit","mode":"sum","target_glob":"[!a]*"}}],"outputs":[],"resources":{"limits":{"memory":"1.5Gi","cpu":0.5,"nvidia.com/gpu":1}}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pc, _, err := ParseProcessingContainer(data)
		if pc == nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("ParseProcessingContainer returned no container and %v", err)
			}
			return
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParseProcessingContainer error %v is neither syntax nor Problems", err)
		}
		for _, p := range pc.Validate() {
			if p.Description == "" {
				t.Fatalf("problem without a description: %+v", p)
			}
		}
		// Whatever parses must merge without panicking.
		for _, tmpl := range pc.Templates {
			task := &Task{Name: "n", Image: "busybox", TemplateIdentifier: tmpl.Identifier}
			for _, ch := range tmpl.Inputs {
				task.Inputs = append(task.Inputs, Binding{Name: ch.Name, HostPath: "/nonexistent/" + ch.Name})
			}
			Merge(pc, task)
		}
	})
}

func FuzzParseTask(f *testing.F) {
	addJSONSeeds(f, "testdata/kaapana/*/tasks/*.json")
	addJSONSeeds(f, "testdata/invalid/task-*.json")
	f.Add([]byte(`{"name":"n","image":"{{ env.A }}","taskTemplate":{"identifier":"x","description":"d","env":[],"inputs":[],"outputs":[]},"config":{"labels":{"a":1}}}`))
	f.Add([]byte(`{"name":"n","image":"i","taskTemplate":"t","inputs":[],"outputs":[],"env":[{"name":"P","secret":"s.1"},{"name":"Q","secret":"..","value":"v"},{"name":"R","secret":7}]}`))
	addJSONSeeds(f, "testdata/kaapana/published/*/*/*/*/tasks/*.json")
	lookup := MapEnv(map[string]string{"registryUrl": "r", "output_dir": "/o", "A": `{"x": "}}`})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range []LookupEnv{nil, lookup} {
			task, _, err := ParseTask(data, l)
			if task == nil {
				if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrTooLarge) {
					t.Fatalf("ParseTask returned no task and %v", err)
				}
				return
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseTask error %v is neither syntax nor Problems", err)
			}
			task.Validate()
			// No filesystem: every scale rule measures a path that is not there.
			Resolve(context.Background(), nil, task, emptyFS{})
		}
	})
}

// emptyFS has nothing in it.
type emptyFS struct{ OSFS }

var _ SizeFS = emptyFS{}

func (emptyFS) Lstat(name string) (os.FileInfo, error) { return nil, os.ErrNotExist }

func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"500Mi", "1.5Gi", "2", "500m", "1", "0.5", "1e3", "-1", "8Ei", "1E", "0.0001", ".5", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, name := range []string{ResourceMemory, ResourceCPU, ResourceGPU} {
			n, err := ParseQuantity(name, s)
			if err != nil {
				if !errors.Is(err, ErrQuantity) {
					t.Fatalf("ParseQuantity(%q, %q) error %v does not wrap ErrQuantity", name, s, err)
				}
				continue
			}
			most := map[string]int64{ResourceMemory: MaxMemoryBytes, ResourceCPU: MaxCPUMillis, ResourceGPU: MaxGPUs}[name]
			if n < 0 || n > most {
				t.Fatalf("ParseQuantity(%q, %q) = %d, outside 0..%d", name, s, n, most)
			}
		}
	})
}

func FuzzSubstituteEnv(f *testing.F) {
	for _, s := range []string{"{{ env.A }}", "{{env.B}}/x", "a{{  env.A  }}b{{ env.A }}", "{{ env.MISSING }}", "{{", "}}", "{{ nope }}", "plain"} {
		f.Add(s)
	}
	lookup := MapEnv(map[string]string{"A": "alpha", "B": "{{ env.A }}"})
	f.Fuzz(func(t *testing.T, s string) {
		out, err := SubstituteEnv(s, lookup)
		if err != nil {
			if !errors.Is(err, ErrMissingEnv) && !errors.Is(err, ErrPlaceholder) {
				t.Fatalf("SubstituteEnv(%q) error %v wraps no sentinel", s, err)
			}
			return
		}
		if !strings.Contains(s, "{{") && out != s {
			t.Fatalf("SubstituteEnv(%q) = %q, changed a string without placeholders", s, out)
		}
		kept, err := SubstituteEnv(s, nil)
		if err != nil || kept != s {
			t.Fatalf("SubstituteEnv(%q, nil) = %q, %v; want it unchanged", s, kept, err)
		}
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("SubstituteEnv(%q) = %q, not valid UTF-8", s, out)
		}
	})
}

func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"", "ok", "a\tb", "evil\u202etxt.exe", "zero\u200bwidth", "\ufeff", "Größe", "\x9b31m", "a\u2028b", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		why := CheckName(s)
		if !utf8.ValidString(s) {
			if why == "" {
				t.Fatalf("CheckName(%q) accepted a string that is not UTF-8", s)
			}
			return
		}
		bad := false
		for _, r := range s {
			if r < 0x20 || r >= 0x7f && r <= 0x9f || isBidiControl(r) || unicode.Is(unicode.Cf, r) || r == 0x2028 || r == 0x2029 {
				bad = true
			}
		}
		if bad != (why != "") {
			t.Fatalf("CheckName(%q) = %q; refused characters present: %v", s, why, bad)
		}
	})
}

func FuzzTargetRegex(f *testing.F) {
	for _, s := range []string{"", ".*", `.*\.dcm`, `(a{1,1000}){1,1000}`, `[\p{L}]{1000}`, `(?i)x|y`, `(`, `a**`} {
		f.Add(s)
	}
	l := DefaultLimits()
	f.Fuzz(func(t *testing.T, expr string) {
		start := time.Now()
		re, err := compileTargetRegexWithin(expr, l)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("compileTargetRegexWithin(%q) took %v", expr, d)
		}
		if err != nil {
			return
		}
		if len(expr) > l.MaxPatternBytes {
			t.Fatalf("compileTargetRegexWithin accepted %d bytes", len(expr))
		}
		// The accepted program is within the cap (plus the anchors added
		// for a full match).
		sre, perr := syntax.Parse(re.String(), syntax.Perl)
		if perr != nil {
			t.Fatalf("compiled %q does not parse again: %v", re, perr)
		}
		prog, cerr := syntax.Compile(sre.Simplify())
		if cerr == nil && len(prog.Inst) > l.MaxRegexInsts+8 {
			t.Fatalf("compileTargetRegexWithin(%q) accepted a program of %d instructions", expr, len(prog.Inst))
		}
	})
}
