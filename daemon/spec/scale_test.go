package spec

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// makeTree creates files ("path": size), directories ("path/": 0) and
// symlinks ("path -> target") under a new temporary directory.
func makeTree(t *testing.T, entries map[string]int) string {
	t.Helper()
	root := t.TempDir()
	for name, size := range entries {
		if link, target, ok := strings.Cut(name, " -> "); ok {
			p := filepath.Join(root, link)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// The trees and expected sizes below were checked against Kaapana's
// resources.py semantics (Path.rglob, is_file, re.fullmatch on the relative
// path) on the same trees; where pcnode differs on purpose the Kaapana value
// is given in a comment.
var (
	flatTree = map[string]int{
		"a.txt":          100,
		"b.dat":          200,
		".hidden.txt":    50,
		"sub/c.txt":      300,
		"sub/d.dcm":      400,
		"sub/deep/e.txt": 500,
		"empty/":         0,
	}
	itemTree = map[string]int{
		"item1/x.dcm":     1000,
		"item1/y.txt":     10,
		"item1/seg/z.dcm": 500,
		"item2/x.dcm":     3000,
		"item3/":          0,
		"top.dcm":         99999, // files directly under the root are not items
	}
	linkTree = map[string]int{
		"a.txt":             100,
		"sub/c.txt":         300,
		"link.txt -> a.txt": 0,
		"linkdir -> sub":    0,
		"item/x.dcm":        10,
		"itemlink -> item":  0,
	}
)

func TestMeasureRule(t *testing.T) {
	tests := []struct {
		name      string
		tree      map[string]int
		rule      ScaleRule
		want      int64
		wantNotes int
	}{
		{"sum everything", flatTree, ScaleRule{Mode: ModeSum}, 1550, 0},
		{"sum target_dir dot", flatTree, ScaleRule{Mode: ModeSum, TargetDir: "."}, 1550, 0},
		{"sum regex txt", flatTree, ScaleRule{Mode: ModeSum, TargetRegex: `.*\.txt`}, 950, 0},
		{"sum glob txt", flatTree, ScaleRule{Mode: ModeSum, TargetGlob: "*.txt"}, 950, 0},
		{"sum glob dcm", flatTree, ScaleRule{Mode: ModeSum, TargetGlob: "*.dcm"}, 400, 0},
		{"sum glob negated class", flatTree, ScaleRule{Mode: ModeSum, TargetGlob: "[!a]*"}, 1450, 0},
		{"sum target_dir", flatTree, ScaleRule{Mode: ModeSum, TargetDir: "sub"}, 1200, 0},
		{"sum regex relative to target_dir", flatTree, ScaleRule{Mode: ModeSum, TargetDir: "sub", TargetRegex: `[^/]*\.txt`}, 300, 0},
		{"sum glob with a directory", flatTree, ScaleRule{Mode: ModeSum, TargetDir: "sub", TargetGlob: "deep/*"}, 500, 0},
		{"sum regex and glob", flatTree, ScaleRule{Mode: ModeSum, TargetGlob: "*.txt", TargetRegex: `sub/.*`}, 800, 0},
		{"sum regex is a full match", flatTree, ScaleRule{Mode: ModeSum, TargetRegex: `a`}, 0, 0},
		{"sum empty dir", flatTree, ScaleRule{Mode: ModeSum, TargetDir: "empty"}, 0, 0},
		{"sum missing target_dir", flatTree, ScaleRule{Mode: ModeSum, TargetDir: "missing"}, 0, 1},
		{"sum target_dir is a file", flatTree, ScaleRule{Mode: ModeSum, TargetDir: "a.txt"}, 0, 1},
		{"max_file_size", flatTree, ScaleRule{Mode: ModeMaxFileSize}, 500, 0},
		{"max_file_size top level", flatTree, ScaleRule{Mode: ModeMaxFileSize, TargetRegex: `[^/]*`}, 200, 0},
		{"max_file_size glob", flatTree, ScaleRule{Mode: ModeMaxFileSize, TargetGlob: "*.dcm"}, 400, 0},
		{"max_item_sum", itemTree, ScaleRule{Mode: ModeMaxItemSum}, 3000, 0},
		{"max_item_sum glob", itemTree, ScaleRule{Mode: ModeMaxItemSum, TargetGlob: "*.txt"}, 10, 0},
		{"max_item_sum target_dir per item", itemTree, ScaleRule{Mode: ModeMaxItemSum, TargetDir: "seg"}, 500, 0},
		// Kaapana raises ValueError (max of an empty list).
		{"max_item_sum without items", flatTree, ScaleRule{Mode: ModeMaxItemSum, TargetDir: "none"}, 0, 0},
		// Kaapana: 1650; it counts link.txt with its target's size.
		{"symlinked file not counted", linkTree, ScaleRule{Mode: ModeSum, TargetGlob: "*.txt"}, 400, 0},
		{"symlinked dir not descended", linkTree, ScaleRule{Mode: ModeMaxFileSize}, 300, 0},
		// Kaapana: 300; Path.is_dir follows the link.
		{"symlinked target_dir not followed", linkTree, ScaleRule{Mode: ModeSum, TargetDir: "linkdir"}, 0, 1},
		// Kaapana: 10 (item and itemlink); only the real item counts here.
		{"symlinked item not an item", linkTree, ScaleRule{Mode: ModeMaxItemSum, TargetGlob: "*.dcm"}, 10, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := makeTree(t, tt.tree)
			got, notes, err := measureRule(context.Background(), OSFS{}, root, tt.rule.withDefaults())
			if err != nil {
				t.Fatalf("measureRule(%+v) = %v", tt.rule, err)
			}
			if got != tt.want || len(notes) != tt.wantNotes {
				t.Errorf("measureRule(%+v) = %d, notes %q; want %d, %d notes", tt.rule, got, notes, tt.want, tt.wantNotes)
			}
		})
	}
}

func TestMeasureRuleRootIsSymlink(t *testing.T) {
	root := makeTree(t, map[string]int{"real/a.txt": 10, "link -> real": 0})
	got, notes, err := measureRule(context.Background(), OSFS{}, filepath.Join(root, "link"), ScaleRule{Mode: ModeSum}.withDefaults())
	if err != nil || got != 0 || len(notes) != 1 || !strings.Contains(notes[0], "symbolic link") {
		t.Errorf("measureRule(symlinked root) = %d, %q, %v; want 0 and a note about the symlink", got, notes, err)
	}
}

// errFS fails ReadDir on one directory.
type errFS struct {
	OSFS
	bad string
}

var _ SizeFS = errFS{}

func (f errFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if name == f.bad {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrPermission}
	}
	return f.OSFS.ReadDir(name)
}

func TestMeasureRuleErrors(t *testing.T) {
	root := makeTree(t, flatTree)
	_, _, err := measureRule(context.Background(), errFS{bad: filepath.Join(root, "sub")}, root, ScaleRule{Mode: ModeSum}.withDefaults())
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("measureRule(unreadable subdirectory) = %v, want %v", err, fs.ErrPermission)
	}

	if got, _, err := measureRule(context.Background(), wideFS{}, "/wide", ScaleRule{Mode: ModeSum}.withDefaults()); got != 5000 || err != nil {
		t.Errorf("measureRule(5000 files) = %d, %v; want 5000, nil", got, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := measureRule(ctx, wideFS{}, "/wide", ScaleRule{Mode: ModeSum}.withDefaults()); !errors.Is(err, context.Canceled) {
		t.Errorf("measureRule(cancelled ctx, 5000 files) = %v, want %v", err, context.Canceled)
	}
}

// wideFS is a directory /wide of 5000 one-byte files, served from memory.
type wideFS struct{}

var _ SizeFS = wideFS{}

func (wideFS) Lstat(name string) (fs.FileInfo, error) {
	if name != "/wide" {
		return nil, fs.ErrNotExist
	}
	return fstest.MapFS{"wide": {Mode: fs.ModeDir}}.Stat("wide")
}

func (wideFS) ReadDir(name string) ([]fs.DirEntry, error) {
	files := fstest.MapFS{}
	for i := range 5000 {
		files[fmt.Sprintf("f%04d", i)] = &fstest.MapFile{Data: []byte{1}}
	}
	return files.ReadDir(".")
}

// scalePC has one template with a scale rule on input "in" and none on "raw".
func scalePC(rule *ScaleRule, res Resources) *ProcessingContainer {
	return &ProcessingContainer{Name: "pc", Description: "d", Templates: []TaskTemplate{{
		Identifier: "t", Description: "d",
		Inputs:    []Channel{{Name: "in", MountedPath: "/in", ScaleRule: rule}, {Name: "raw", MountedPath: "/raw"}},
		Resources: res,
	}}}
}

func TestResolveScale(t *testing.T) {
	const mi = 1 << 20
	tree := map[string]int{"a.txt": 2 * mi, "b.bin": 1 * mi}
	limit := func(f int64) *ScaleRule { return &ScaleRule{ScaleFactor: f, Type: TypeLimit, Mode: ModeSum} }
	request := func(f int64) *ScaleRule { return &ScaleRule{ScaleFactor: f, Type: TypeRequest, Mode: ModeSum} }
	tests := []struct {
		name        string
		tmplRule    *ScaleRule
		taskRule    *ScaleRule
		rawRule     *ScaleRule // on the task's "raw" binding
		tmplRes     Resources
		want        Resources
		wantApplied []bool
	}{
		{
			name:     "limit raised",
			tmplRule: limit(10), tmplRes: Resources{Limits: ResourceList{MemoryBytes: 20 * mi}},
			want:        Resources{Requests: ResourceList{MemoryBytes: 30 * mi}, Limits: ResourceList{MemoryBytes: 30 * mi}},
			wantApplied: []bool{true},
		},
		{
			name:     "limit never lowered",
			tmplRule: limit(2), tmplRes: Resources{Requests: ResourceList{MemoryBytes: mi}, Limits: ResourceList{MemoryBytes: 20 * mi}},
			want:        Resources{Requests: ResourceList{MemoryBytes: mi}, Limits: ResourceList{MemoryBytes: 20 * mi}},
			wantApplied: []bool{false},
		},
		{
			name:        "limit set where none was",
			tmplRule:    limit(2),
			want:        Resources{Requests: ResourceList{MemoryBytes: 6 * mi}, Limits: ResourceList{MemoryBytes: 6 * mi}},
			wantApplied: []bool{true},
		},
		{
			name:     "request raised within the limit",
			tmplRule: request(2), tmplRes: Resources{Requests: ResourceList{MemoryBytes: mi}, Limits: ResourceList{MemoryBytes: 20 * mi}},
			want:        Resources{Requests: ResourceList{MemoryBytes: 6 * mi}, Limits: ResourceList{MemoryBytes: 20 * mi}},
			wantApplied: []bool{true},
		},
		{
			name:     "request above the limit raises the limit",
			tmplRule: request(10), tmplRes: Resources{Limits: ResourceList{MemoryBytes: 20 * mi, CPUMillis: 500}},
			want:        Resources{Requests: ResourceList{MemoryBytes: 30 * mi, CPUMillis: 500}, Limits: ResourceList{MemoryBytes: 30 * mi, CPUMillis: 500}},
			wantApplied: []bool{true},
		},
		{
			name:        "request without a limit leaves no limit",
			tmplRule:    request(1),
			want:        Resources{Requests: ResourceList{MemoryBytes: 3 * mi}},
			wantApplied: []bool{true},
		},
		{
			name:     "the task's rule replaces the template's",
			tmplRule: limit(100), taskRule: request(1), tmplRes: Resources{Limits: ResourceList{MemoryBytes: 20 * mi}},
			want:        Resources{Requests: ResourceList{MemoryBytes: 3 * mi}, Limits: ResourceList{MemoryBytes: 20 * mi}},
			wantApplied: []bool{true},
		},
		{
			name:     "two rules, the larger wins",
			tmplRule: limit(2), rawRule: limit(1),
			want:        Resources{Requests: ResourceList{MemoryBytes: 6 * mi}, Limits: ResourceList{MemoryBytes: 6 * mi}},
			wantApplied: []bool{true, false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := makeTree(t, tree)
			pc := scalePC(tt.tmplRule, tt.tmplRes)
			task := &Task{Name: "n", Image: "busybox", TemplateIdentifier: "t", Inputs: []Binding{
				{Name: "in", HostPath: dir, ScaleRule: tt.taskRule},
				{Name: "raw", HostPath: dir, ScaleRule: tt.rawRule},
			}}
			// The files are a few MiB; the node's memory floor is not what
			// these cases test.
			l := DefaultLimits()
			l.MinMemoryBytes = 0
			inst, warns, err := l.Resolve(context.Background(), pc, task, OSFS{})
			if err != nil || len(warns) != 0 {
				t.Fatalf("Resolve = %v, warnings %v; want neither", err, warns)
			}
			if diff := cmp.Diff(tt.want, inst.Resources); diff != "" {
				t.Errorf("Resolve resources mismatch (-want +got):\n%s", diff)
			}
			var applied []bool
			for _, r := range inst.ScaleResults {
				applied = append(applied, r.Applied)
				if r.MeasuredBytes != 3*mi || r.ComputedBytes != r.Rule.ScaleFactor*3*mi {
					t.Errorf("ScaleResult %+v: measured %d, computed %d; want %d and factor × that", r, r.MeasuredBytes, r.ComputedBytes, 3*mi)
				}
			}
			if diff := cmp.Diff(tt.wantApplied, applied); diff != "" {
				t.Errorf("Applied mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolveRefusesPlaceholders(t *testing.T) {
	task, _, err := ParseTask(readFile(t, "testdata/kaapana/dummy/tasks/downstream-task.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, _, err := ParseProcessingContainer(readFile(t, "testdata/kaapana/dummy/processing-container.json"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Resolve(context.Background(), pc, task, OSFS{})
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Resolve(with placeholders) = %v, want Problems", err)
	}
	want := Problems{
		{"image", "placeholder {{ env.registryUrl }} was not substituted"},
		{"inputs[0].volume_source.host_path", "placeholder {{ env.output_dir }} was not substituted"},
		{"inputs[1].volume_source.host_path", "placeholder {{ env.output_dir }} was not substituted"},
	}
	if diff := cmp.Diff(want, ps); diff != "" {
		t.Errorf("Resolve problems mismatch (-want +got):\n%s", diff)
	}
}

func TestResolveMissingInputWarns(t *testing.T) {
	pc := scalePC(&ScaleRule{ScaleFactor: 2, Type: TypeLimit, Mode: ModeSum}, Resources{})
	missing := filepath.Join(t.TempDir(), "missing")
	task := &Task{Name: "n", Image: "busybox", TemplateIdentifier: "t", Inputs: []Binding{
		{Name: "raw", HostPath: "/srv/raw"}, {Name: "in", HostPath: missing},
	}}
	inst, warns, err := Resolve(context.Background(), pc, task, OSFS{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Warning{{"inputs[1].volume_source.host_path", missing + " does not exist; the scale rule measured 0 bytes"}}
	if diff := cmp.Diff(want, warns); diff != "" {
		t.Errorf("Resolve warnings mismatch (-want +got):\n%s", diff)
	}
	if r := inst.ScaleResults; len(r) != 1 || r[0].MeasuredBytes != 0 || r[0].Applied {
		t.Errorf("ScaleResults = %+v, want one measuring 0, not applied", r)
	}
}

// TestResolveKaapanaDownstream is the acceptance scenario: Kaapana's
// dummy downstream task, with its variables set and files in its channels,
// resolves to a memory limit of max(50Mi, 25 × size of the *.txt files).
func TestResolveKaapanaDownstream(t *testing.T) {
	pc, _, err := ParseProcessingContainer(readFile(t, "testdata/kaapana/dummy/processing-container.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		files     map[string]int
		txtBytes  int64
		wantLimit int64
	}{
		{
			name:      "small inputs keep 50Mi",
			files:     map[string]int{"dummy/channel1/a.txt": 1000, "dummy/channel1/b.dat": 5 << 20, "dummy/channel2/c.txt": 7 << 20},
			txtBytes:  1000,
			wantLimit: 50 << 20,
		},
		{
			name: "large inputs raise the limit",
			files: map[string]int{
				"dummy/channel1/a.txt": 2 << 20, "dummy/channel1/sub/b.txt": 1 << 20, "dummy/channel1/c.dat": 9 << 20,
				"dummy/channel2/d.txt": 1 << 20,
			},
			txtBytes:  3 << 20,
			wantLimit: 25 * 3 << 20,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := makeTree(t, tt.files)
			env := MapEnv(map[string]string{"output_dir": out, "registryUrl": "registry.example.org"})
			task, _, err := ParseTask(readFile(t, "testdata/kaapana/dummy/tasks/downstream-task.json"), env)
			if err != nil {
				t.Fatal(err)
			}
			inst, _, err := Resolve(context.Background(), pc, task, OSFS{})
			if err != nil {
				t.Fatalf("Resolve = %v", err)
			}
			if got := inst.Resources.Limits.MemoryBytes; got != tt.wantLimit || got != max(50<<20, 25*tt.txtBytes) {
				t.Errorf("memory limit = %d, want %d = max(50Mi, 25 × %d)", got, tt.wantLimit, tt.txtBytes)
			}
			want := []ScaleResult{{
				Channel:       "channel1",
				Rule:          ScaleRule{ScaleFactor: 25, Type: TypeLimit, Mode: ModeSum, TargetDir: ".", TargetRegex: `.*\.txt`, TargetGlob: "*"},
				MeasuredBytes: tt.txtBytes, ComputedBytes: 25 * tt.txtBytes, Applied: 25*tt.txtBytes > 50<<20,
			}}
			if diff := cmp.Diff(want, inst.ScaleResults); diff != "" {
				t.Errorf("ScaleResults mismatch (-want +got):\n%s", diff)
			}
			wantInputs := []Mount{
				{Name: "channel1", HostPath: out + "/dummy/channel1", MountedPath: "/home/downstream/channel1", ReadOnly: true},
				{Name: "channel2", HostPath: out + "/dummy/channel2", MountedPath: "/home/downstream/channel2", ReadOnly: true},
			}
			if diff := cmp.Diff(wantInputs, inst.Inputs); diff != "" {
				t.Errorf("Inputs mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]EnvVar{{Name: "TIME_SLEEP", Value: "5"}}, inst.Env); diff != "" {
				t.Errorf("Env mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSaturatingArithmetic(t *testing.T) {
	const big = int64(1) << 62
	if got := mulSat(4, big); got != 1<<63-1 {
		t.Errorf("mulSat(4, 2^62) = %d, want MaxInt64", got)
	}
	if got := addSat(big, big); got != 1<<63-1 {
		t.Errorf("addSat(2^62, 2^62) = %d, want MaxInt64", got)
	}
	if got := mulSat(25, 1000); got != 25000 {
		t.Errorf("mulSat(25, 1000) = %d, want 25000", got)
	}
}
