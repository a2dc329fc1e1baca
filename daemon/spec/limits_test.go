package spec

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path"
	"regexp/syntax"
	"strings"
	"testing"
	"time"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		s    string
		want string // "" accepted, else a substring of the reason
	}{
		{"", ""},
		{"total-segmentator_1.0", ""},
		{"Größe ✓ 名前 😀", ""},
		{"a b", ""},
		{"a\tb", "control character U+0009"},
		{"a\nb", "control character U+000A"},
		{"a\rb", "control character U+000D"},
		{"\x00", "control character U+0000"},
		{"\x1b[31m", "control character U+001B"},
		{"a\x7f", "control character U+007F"},
		{"a\u0085", "control character U+0085"},
		{"a\u009b31m", "control character U+009B"},
		{"a\u202eb", "bidirectional control character U+202E"},
		{"\u202a", "bidirectional control character U+202A"},
		{"\u2066x\u2069", "bidirectional control character U+2066"},
		{"\u2069", "bidirectional control character U+2069"},
		{"\u200e", "bidirectional control character U+200E"},
		{"\u200f", "bidirectional control character U+200F"},
		{"\u061c", "bidirectional control character U+061C"},
		{"a\u200bb", "invisible format character U+200B"},
		{"\ufeffx", "invisible format character U+FEFF"},
		{"a\u00adb", "invisible format character U+00AD"},
		{"a\u2028b", "line or paragraph separator U+2028"},
		{"a\u2029b", "line or paragraph separator U+2029"},
		{"a\xffb", "not valid UTF-8"},
		{"ok\u202e\n", "U+202E"}, // the first one is named
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.s), func(t *testing.T) {
			got := CheckName(tt.s)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("CheckName(%q) = %q, want %q", tt.s, got, tt.want)
			}
		})
	}
}

// tight are small limits so that the cases below stay small.
func tight() Limits {
	return Limits{
		MaxEnvEntries: 3, MaxEnvChoices: 2, MaxCommandArgs: 3, MaxChannels: 2,
		MaxPatternBytes: 16, MaxRegexInsts: 40, MaxExecBytes: 200,
		MaxLabels: 2, MaxLabelBytes: 10,
		MinMemoryBytes: 4 << 20, MinCPUMillis: 10, MaxCPUMillis: 4000,
	}
}

// fieldsOf lists the problems' fields with the reason's gist.
func problemAt(ps Problems, field, desc string) bool {
	for _, p := range ps {
		if p.Field == field && strings.Contains(p.Description, desc) {
			return true
		}
	}
	return false
}

func TestLimitsValidateTask(t *testing.T) {
	env := func(n int) []EnvVar {
		out := make([]EnvVar, n)
		for i := range out {
			out[i] = EnvVar{Name: fmt.Sprintf("V%d", i)}
		}
		return out
	}
	tests := []struct {
		name        string
		mutate      func(*Task)
		field, desc string // "": valid
	}{
		{name: "at every cap", mutate: func(t *Task) {
			t.Env = env(3)
			t.Command = []string{"a", "b", "c"}
			t.Labels = map[string]string{"a": "1234", "b": "1234"}
			t.Resources = Resources{Requests: ResourceList{MemoryBytes: 4 << 20, CPUMillis: 10}, Limits: ResourceList{MemoryBytes: 4 << 20, CPUMillis: 4000}}
		}},
		{name: "env over", mutate: func(t *Task) { t.Env = env(4) }, field: "env", desc: "max_env_entries"},
		{name: "command over", mutate: func(t *Task) { t.Command = []string{"a", "b", "c", "d"} }, field: "command", desc: "max_command_args"},
		{name: "inputs over", mutate: func(t *Task) {
			t.Inputs = append(t.Inputs, Binding{Name: "x", HostPath: "/srv/x"})
		}, field: "inputs", desc: "max_channels"},
		{name: "labels over", mutate: func(t *Task) { t.Labels = map[string]string{"a": "", "b": "", "c": ""} }, field: "config.labels", desc: "max_labels"},
		{name: "label bytes over", mutate: func(t *Task) { t.Labels = map[string]string{"a": "1234", "b": "12345"} }, field: "config.labels", desc: "max_label_bytes"},
		{name: "memory limit one byte", mutate: func(t *Task) { t.Resources.Limits.MemoryBytes = 1 }, field: "resources.limits.memory", desc: "min_memory"},
		{name: "memory request below", mutate: func(t *Task) { t.Resources.Requests.MemoryBytes = 4<<20 - 1 }, field: "resources.requests.memory", desc: "min_memory"},
		{name: "cpu below", mutate: func(t *Task) { t.Resources.Limits.CPUMillis = 9 }, field: "resources.limits.cpu", desc: "min_cpu"},
		{name: "cpu above", mutate: func(t *Task) { t.Resources.Limits.CPUMillis = 4001 }, field: "resources.limits.cpu", desc: "max_cpu"},
		{name: "cpu request is the scheduler's", mutate: func(t *Task) { t.Resources.Requests.CPUMillis = 1 }},
		{name: "env string over the kernel's", mutate: func(t *Task) {
			t.Env = []EnvVar{{Name: "A", Value: strings.Repeat("v", MaxArgStrlen-2)}}
		}, field: "env[0].value", desc: "MAX_ARG_STRLEN"},
		{name: "argument over the kernel's", mutate: func(t *Task) { t.Command = []string{strings.Repeat("a", MaxArgStrlen)} }, field: "command[0]", desc: "MAX_ARG_STRLEN"},
		{name: "name bidi", mutate: func(t *Task) { t.Name = "evil\u202egnp.exe" }, field: "name", desc: "U+202E"},
		{name: "image zero width", mutate: func(t *Task) { t.Image = "busy\u200bbox" }, field: "image", desc: "U+200B"},
		{name: "template identifier newline", mutate: func(t *Task) { t.TemplateIdentifier = "main\n" }, field: "taskTemplate", desc: "U+000A"},
		{name: "binding name format", mutate: func(t *Task) { t.Inputs[0].Name = "a\ufeff" }, field: "inputs[0].name", desc: "U+FEFF"},
		{name: "host path newline", mutate: func(t *Task) { t.Outputs[0].HostPath = "/srv/out\n/etc" }, field: "outputs[0].volume_source.host_path", desc: "U+000A"},
		{name: "host path tab", mutate: func(t *Task) { t.Inputs[1].HostPath = "/srv/\tin" }, field: "inputs[1].volume_source.host_path", desc: "U+0009"},
		{name: "label value bidi", mutate: func(t *Task) { t.Labels = map[string]string{"a": "\u2067"} }, field: "config.labels.a", desc: "U+2067"},
		{name: "env value newline is fine", mutate: func(t *Task) { t.Env = []EnvVar{{Name: "A", Value: "line1\nline2\ttab"}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := validTask()
			tt.mutate(task)
			ps := tight().Validate(task)
			if tt.field == "" {
				if len(ps) != 0 {
					t.Errorf("Limits.Validate() = %v, want no problems", ps)
				}
				return
			}
			if !problemAt(ps, tt.field, tt.desc) {
				t.Errorf("Limits.Validate() = %v, want a problem on %s mentioning %q", ps, tt.field, tt.desc)
			}
		})
	}
}

func TestLimitsValidateTemplate(t *testing.T) {
	tests := []struct {
		name        string
		mutate      func(*TaskTemplate)
		field, desc string
	}{
		{name: "at the caps", mutate: func(tm *TaskTemplate) {
			tm.Env = []EnvVarTemplate{{Name: "A", Value: "x", Choices: []string{"x", "y"}}, {Name: "B"}, {Name: "C"}}
			tm.Inputs[0].ScaleRule.TargetRegex = `.*\.dcm`
			tm.Inputs[0].ScaleRule.TargetGlob = strings.Repeat("a", 16)
		}},
		{name: "env over", mutate: func(tm *TaskTemplate) {
			tm.Env = []EnvVarTemplate{{Name: "A"}, {Name: "B"}, {Name: "C"}, {Name: "D"}}
		}, field: "env", desc: "max_env_entries"},
		{name: "choices over", mutate: func(tm *TaskTemplate) {
			tm.Env = []EnvVarTemplate{{Name: "A", Value: "x", Choices: []string{"x", "y", "z"}}}
		}, field: "env[0].choices", desc: "max_env_choices"},
		{name: "outputs over", mutate: func(tm *TaskTemplate) {
			tm.Outputs = []Channel{{Name: "o1", MountedPath: "/o1"}, {Name: "o2", MountedPath: "/o2"}, {Name: "o3", MountedPath: "/o3"}}
		}, field: "outputs", desc: "max_channels"},
		{name: "command over", mutate: func(tm *TaskTemplate) { tm.Command = []string{"a", "b", "c", "d"} }, field: "command", desc: "max_command_args"},
		{name: "regex too long", mutate: func(tm *TaskTemplate) { tm.Inputs[0].ScaleRule.TargetRegex = strings.Repeat("a", 17) }, field: "inputs[0].scale_rule.target_regex", desc: "max_regex_bytes"},
		{name: "regex too complex", mutate: func(tm *TaskTemplate) { tm.Inputs[0].ScaleRule.TargetRegex = `(a{1,9}){1,9}` }, field: "inputs[0].scale_rule.target_regex", desc: "max_regex_insts"},
		{name: "glob too long", mutate: func(tm *TaskTemplate) { tm.Inputs[0].ScaleRule.TargetGlob = strings.Repeat("a", 17) }, field: "inputs[0].scale_rule.target_glob", desc: "max_regex_bytes"},
		{name: "identifier bidi", mutate: func(tm *TaskTemplate) { tm.Identifier = "\u202dmain" }, field: "identifier", desc: "U+202D"},
		{name: "channel name control", mutate: func(tm *TaskTemplate) { tm.Inputs[1].Name = "a\u0090" }, field: "inputs[1].name", desc: "U+0090"},
		{name: "mounted path newline", mutate: func(tm *TaskTemplate) { tm.Outputs[0].MountedPath = "/data/o\nut" }, field: "outputs[0].mounted_path", desc: "U+000A"},
		{name: "memory floor", mutate: func(tm *TaskTemplate) { tm.Resources.Limits.MemoryBytes = 1 << 20 }, field: "resources.limits.memory", desc: "min_memory"},
		{name: "default value over the kernel's", mutate: func(tm *TaskTemplate) {
			tm.Env = []EnvVarTemplate{{Name: "A", Value: strings.Repeat("v", MaxArgStrlen)}}
		}, field: "env[0].value", desc: "MAX_ARG_STRLEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := validPC().Templates[0]
			tm.Env = nil
			tm.Command = nil
			tt.mutate(&tm)
			ps := tight().ValidateTemplate(&tm)
			if tt.field == "" {
				if len(ps) != 0 {
					t.Errorf("Limits.ValidateTemplate() = %v, want no problems", ps)
				}
				return
			}
			if !problemAt(ps, tt.field, tt.desc) {
				t.Errorf("Limits.ValidateTemplate() = %v, want a problem on %s mentioning %q", ps, tt.field, tt.desc)
			}
		})
	}
}

// An oversized list is reported once, without a problem for each entry.
func TestLimitsOversizedListsStopEarly(t *testing.T) {
	task := validTask()
	task.InlineTemplate, task.TemplateIdentifier = &TaskTemplate{Identifier: "x"}, ""
	for i := range 100000 {
		task.InlineTemplate.Env = append(task.InlineTemplate.Env, EnvVarTemplate{Name: "1bad", Value: fmt.Sprint(i)})
	}
	start := time.Now()
	ps := DefaultLimits().Validate(task)
	if !problemAt(ps, "taskTemplate.env", "max_env_entries") || len(ps) > 10 {
		t.Errorf("Validate(100k template env) = %d problems (%.200v), want one on taskTemplate.env naming max_env_entries", len(ps), ps)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Validate(100k template env) took %v", d)
	}
}

func TestLimitsMergeInstance(t *testing.T) {
	pc := validPC()
	l := tight()
	l.MaxEnvEntries = 4
	pc.Templates[0].Env = pc.Templates[0].Env[:3]
	pc.Templates[0].Inputs[0].ScaleRule = nil

	// The template's three and two new ones: five once merged.
	task := validTask()
	task.Env = []EnvVar{{Name: "NEW1"}, {Name: "NEW2"}}
	if _, _, ps := l.Merge(pc, task); !problemAt(ps, "env", "once merged") {
		t.Errorf("Merge(3 template + 2 task variables, cap 4) = %v, want a problem on env", ps)
	}
	task.Env = task.Env[:1]
	if inst, _, ps := l.Merge(pc, task); len(ps) != 0 || len(inst.Env) != 4 {
		t.Errorf("Merge(4 variables, cap 4) = %v, %v; want 4 variables and no problems", inst, ps)
	}

	// argv and env as execve counts them.
	task.Command = []string{strings.Repeat("c", 150)}
	if _, _, ps := l.Merge(pc, task); !problemAt(ps, "command", "max_exec_bytes") {
		t.Errorf("Merge(151-byte command, exec cap 200) = %v, want a problem on command naming max_exec_bytes", ps)
	}

	// A template's memory limit below the floor, inherited by the instance.
	task.Command = nil
	pc.Templates[0].Resources = Resources{Limits: ResourceList{MemoryBytes: 8 << 20}}
	task.Resources.Limits.MemoryBytes = 1
	if _, _, ps := l.Merge(pc, task); !problemAt(ps, "resources.limits.memory", "min_memory") {
		t.Errorf("Merge(1-byte limit override) = %v, want a problem on resources.limits.memory", ps)
	}
}

func TestExecBytes(t *testing.T) {
	if got, want := ExecBytes([]string{"/pctest", "env"}, []string{"A=1"}), int64(7+1+8+3+1+8+3+1+8); got != want {
		t.Errorf("ExecBytes = %d, want %d", got, want)
	}
	if got := ExecBytes(nil, nil); got != 0 {
		t.Errorf("ExecBytes(nil, nil) = %d, want 0", got)
	}
}

// scale_factor × measured size that passes what any node has is a problem
// on the memory value it would raise, never a saturated limit.
func TestResolveScaleOverflow(t *testing.T) {
	dir := makeTree(t, map[string]int{"a.txt": 10})
	for _, tt := range []struct {
		factor int64
		typ    ScaleRuleType
		field  string
	}{
		{1 << 62, TypeLimit, "resources.limits.memory"},                // overflows int64
		{MaxMemoryBytes / 5, TypeRequest, "resources.requests.memory"}, // fits int64, above 4Ei
	} {
		pc := scalePC(&ScaleRule{ScaleFactor: tt.factor, Type: tt.typ, Mode: ModeSum}, Resources{})
		task := &Task{Name: "n", Image: "busybox", TemplateIdentifier: "t", Inputs: []Binding{{Name: "in", HostPath: dir}, {Name: "raw", HostPath: dir}}}
		inst, _, err := Resolve(context.Background(), pc, task, OSFS{})
		ps, _ := err.(Problems)
		if inst != nil || !problemAt(ps, tt.field, "more memory than any node has") {
			t.Errorf("Resolve(factor %d × 10 bytes) = %v, %v; want a problem on %s", tt.factor, inst, err, tt.field)
		}
	}
}

// A rule that measures a few bytes raises memory to the floor, not to a
// limit no container can start with.
func TestResolveScaleRaisesToTheFloor(t *testing.T) {
	dir := makeTree(t, map[string]int{"a.txt": 10})
	pc := scalePC(&ScaleRule{ScaleFactor: 10, Type: TypeLimit, Mode: ModeSum}, Resources{})
	task := &Task{Name: "n", Image: "busybox", TemplateIdentifier: "t", Inputs: []Binding{{Name: "in", HostPath: dir}, {Name: "raw", HostPath: dir}}}
	inst, _, err := Resolve(context.Background(), pc, task, OSFS{})
	if err != nil {
		t.Fatalf("Resolve = %v", err)
	}
	floor := DefaultLimits().MinMemoryBytes
	if got := inst.Resources.Limits.MemoryBytes; got != floor {
		t.Errorf("memory limit = %d, want the floor %d", got, floor)
	}
	if r := inst.ScaleResults[0]; r.ComputedBytes != 100 || !r.Applied {
		t.Errorf("ScaleResult = %+v, want computed 100 and applied", r)
	}
}

// estimateInsts must bound the real program from above, or the cheap
// refusal could let a large program be built.
func TestEstimateInstsBoundsProgram(t *testing.T) {
	for _, expr := range []string{
		``, `a`, `abc`, `.*`, `.*\.dcm`, `(a|b|c)+`, `a{3}`, `a{2,5}`, `(ab){3,}`, `(a{1,9}){1,9}`,
		`[a-z]{0,10}x`, `(?i)dicom|nifti|nrrd`, `^\d+\.(dcm|ima)$`, `(?:(?:a{4}){4}){4}`, `\pL+\PN*`,
		`(x*)*`, `((((a))))`, `a{0}`, `a{0,}`, `(a?){10}`,
	} {
		re, err := syntax.Parse(expr, syntax.Perl)
		if err != nil {
			t.Fatalf("Parse(%q) = %v", expr, err)
		}
		est := estimateInsts(re) + 2 // as compileTargetRegexWithin counts it
		prog, err := syntax.Compile(re.Simplify())
		if err != nil {
			t.Fatalf("Compile(%q) = %v", expr, err)
		}
		if est < int64(len(prog.Inst)) {
			t.Errorf("estimateInsts(%q) = %d, below the real %d", expr, est, len(prog.Inst))
		}
	}
}

// A 1 MB regex and a small one that expands enormously are both refused
// quickly, under the default limits, before any large program is built.
func TestTargetRegexRefusedQuickly(t *testing.T) {
	for name, expr := range map[string]string{
		"1 MB":           strings.Repeat("a", 1<<20),
		"nested repeats": `((a{1,1000}){1,1000}){1,1000}`,
		"wide repeats":   `[\p{L}\p{N}]{1000}[\p{L}]{1000}-{1000}`,
		"repeated group": `(?:ab+){1000}`,
	} {
		start := time.Now()
		_, err := compileTargetRegexWithin(expr, DefaultLimits())
		if err == nil {
			t.Errorf("compileTargetRegexWithin(%s) accepted", name)
		}
		if d := time.Since(start); d > 200*time.Millisecond {
			t.Errorf("compileTargetRegexWithin(%s) took %v", name, d)
		}
	}
	if _, err := compileTargetRegexWithin(`.*\.(dcm|DCM|ima|IMA|nii|nii\.gz)`, DefaultLimits()); err != nil {
		t.Errorf("a realistic target_regex was refused: %v", err)
	}
}

// matchNaive is the recursive glob match the table replaces: the
// reference for what match must answer.
func matchNaive(g glob, rel []string) bool {
	var seg func(pat, name []string) bool
	seg = func(pat, name []string) bool {
		if len(pat) == 0 {
			return len(name) == 0
		}
		if pat[0] == "**" {
			for k := 0; k <= len(name); k++ {
				if seg(pat[1:], name[k:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		ok, _ := path.Match(pat[0], name[0])
		return ok && seg(pat[1:], name[1:])
	}
	for start := range rel {
		if seg(g, rel[start:]) {
			return true
		}
	}
	return false
}

func TestGlobMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	segs := []string{"**", "*", "a", "b", "?", "[ab]", "a*"}
	names := []string{"a", "b", "ab", "c"}
	for range 5000 {
		g := make(glob, 1+r.IntN(4))
		for i := range g {
			g[i] = segs[r.IntN(len(segs))]
		}
		rel := make([]string, 1+r.IntN(5))
		for i := range rel {
			rel[i] = names[r.IntN(len(names))]
		}
		if got, want := g.match(rel), matchNaive(g, rel); got != want {
			t.Fatalf("glob %q match(%q) = %v, naive %v", g, rel, got, want)
		}
	}
}

// Many "**" against a deep path would take the recursive matcher
// C(depth+k, k) steps; the table takes depth × k.
func TestGlobManyDoubleStarsIsFast(t *testing.T) {
	g, err := compileGlob(strings.Repeat("**/", 30) + "x")
	if err != nil {
		t.Fatal(err)
	}
	rel := make([]string, 200)
	for i := range rel {
		rel[i] = "d"
	}
	start := time.Now()
	if g.match(rel) {
		t.Errorf("match = true, want false (no segment is x)")
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("match took %v", d)
	}
}
