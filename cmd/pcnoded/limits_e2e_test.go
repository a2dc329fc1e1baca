package main

// Acceptance test of issue 7's bounded inputs: malformed and oversized
// requests through the real gRPC API of a real pcnoded, each refused with
// the field and the limit, none leaving anything behind.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/spec"
	"github.com/pcnode/pcnode/daemon/specpb"
	"github.com/pcnode/pcnode/internal/daemontest"
	"github.com/pcnode/pcnode/internal/testimage"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// e2eBadRunes are the characters refused in names and host paths, one of
// each class: C0 controls (tab and newline too), DEL, C1 controls, the
// bidirectional controls, invisible format characters and the line
// separator.
var e2eBadRunes = []rune{
	0x00, '\t', '\n', '\r', 0x1b, 0x7f, 0x85, 0x9b,
	0x202a, 0x202e, 0x2066, 0x2069, 0x200e, 0x200f, 0x061c,
	0x200b, 0xfeff, 0x2028,
}

// e2eEnv is n variables V0..V(n-1) with value v.
func e2eEnv(n int, v string) []*pcnodev1.EnvVar {
	out := make([]*pcnodev1.EnvVar, n)
	for i := range out {
		out[i] = &pcnodev1.EnvVar{Name: fmt.Sprintf("V%d", i), Value: v}
	}
	return out
}

// e2eTemplateEnv is n template variables V0..V(n-1) with value v.
func e2eTemplateEnv(n int, v string) []*pcnodev1.EnvVarTemplate {
	out := make([]*pcnodev1.EnvVarTemplate, n)
	for i := range out {
		out[i] = &pcnodev1.EnvVarTemplate{Name: fmt.Sprintf("V%d", i), Value: v}
	}
	return out
}

// e2eChannels is n channel templates c0..c(n-1) mounted at /cN.
func e2eChannels(n int) []*pcnodev1.ChannelTemplate {
	out := make([]*pcnodev1.ChannelTemplate, n)
	for i := range out {
		out[i] = &pcnodev1.ChannelTemplate{Name: fmt.Sprintf("c%d", i), MountedPath: fmt.Sprintf("/c%d", i)}
	}
	return out
}

// TestIntegrationLimits sends more than 150 distinct malformed or
// oversized specs through SubmitTask, RunTask, SubmitTasks and ResolveTask:
// every refused character in every kind of name and in host paths, every
// [limits] cap just over (and far over: 100k env entries or choices in an
// inline template, a 1 MB regex), computed quantities that overflow,
// memory and CPU outside the node's bounds, tasks that can never fit. Each
// must be INVALID_ARGUMENT with a BadRequest violation naming the field
// and the key (or RESOURCE_EXHAUSTED naming the resource), and afterwards
// the node has as many tasks as before and its database file has not
// grown. Specs exactly at each cap are accepted, and tasks at the memory
// and CPU floors and at the spec and env caps run to success.
func TestIntegrationLimits(t *testing.T) {
	// max_spec_bytes is raised (from 16Ki) so that every other cap can be
	// reached through the API, and stays under gRPC's 4 MiB message size so
	// that its own refusal is pcnoded's, not the transport's.
	d := daemontest.Start(t, daemontest.Options{Configure: func(c *config.Config) {
		c.Limits.MaxSpecBytes = config.MustQuantity("2Mi")
		c.Limits.MaxInstanceBytes = config.MustQuantity("256Ki") // room for one variable at MAX_ARG_STRLEN
	}})
	img := e2eTestImage(t, d).GetName()
	lim := d.Config.Limits
	maxSpec := int(lim.MaxSpecBytes.Bytes())
	maxEnv, maxChoices, maxArgs, maxChannels := lim.MaxEnvEntries, lim.MaxEnvChoices, lim.MaxCommandArgs, lim.MaxChannels
	maxRegex, maxLabels := int(lim.MaxRegexBytes.Bytes()), lim.MaxLabels
	minMemory, minCPU, maxCPU := lim.MinMemory.Bytes(), lim.MinCPU.Millis(), lim.MaxCPU.Millis()
	in := d.DataDir(t, "in")
	if err := os.WriteFile(filepath.Join(in, "a.txt"), []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}

	// inline is a spec with an inline template that exits 0, edited by mut.
	inline := func(mut func(*pcnodev1.TaskTemplate)) *pcnodev1.TaskSpec {
		tmpl := &pcnodev1.TaskTemplate{Identifier: "inline", Description: "d", Command: []string{"/pctest", "exit", "0"}}
		if mut != nil {
			mut(tmpl)
		}
		return &pcnodev1.TaskSpec{Name: "inline", Image: img, Template: &pcnodev1.TaskSpec_InlineTemplate{InlineTemplate: tmpl}}
	}
	// withRule is an inline template whose one input, bound to in, has rule.
	withRule := func(rule *pcnodev1.ScaleRule) *pcnodev1.TaskSpec {
		s := inline(func(tm *pcnodev1.TaskTemplate) {
			tm.Inputs = []*pcnodev1.ChannelTemplate{{Name: "in", MountedPath: "/data/in", ScaleRule: rule}}
		})
		s.Inputs = []*pcnodev1.ChannelBinding{e2eBind("in", in)}
		return s
	}
	sumRule := func(regex, glob string) *pcnodev1.ScaleRule {
		return &pcnodev1.ScaleRule{ScaleFactor: 2, Type: pcnodev1.ScaleRuleType_SCALE_RULE_TYPE_LIMIT,
			Mode: pcnodev1.ScaleRuleMode_SCALE_RULE_MODE_SUM, TargetRegex: regex, TargetGlob: glob}
	}
	// scaled binds the "scaled" template's input with rule replacing its own.
	scaled := func(rule *pcnodev1.ScaleRule) *pcnodev1.TaskSpec {
		s := e2eSpec(img, "scaled")
		s.Inputs = []*pcnodev1.ChannelBinding{{Name: "in", HostPath: in, ScaleRule: rule}}
		return s
	}
	// sized pads an inline template's description until the spec is n bytes.
	sized := func(n int) *pcnodev1.TaskSpec {
		s := inline(nil)
		tm := s.GetInlineTemplate()
		tm.Description = strings.Repeat("d", max(0, n-proto.Size(s)))
		for proto.Size(s) > n {
			tm.Description = tm.Description[1:]
		}
		for proto.Size(s) < n {
			tm.Description += "d"
		}
		return s
	}
	resources := func(req, lim *pcnodev1.ResourceList) func(*pcnodev1.TaskSpec) *pcnodev1.TaskSpec {
		return func(s *pcnodev1.TaskSpec) *pcnodev1.TaskSpec {
			s.Resources = &pcnodev1.ResourceRequirements{Requests: req, Limits: lim}
			return s
		}
	}
	exit0 := func() *pcnodev1.TaskSpec { return e2eSpec(img, "exit", "CODE=0") }
	labels := func(n, valueBytes int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("l%d", i)] = strings.Repeat("v", valueBytes)
		}
		return m
	}
	big := strings.Repeat("x", 120<<10) // 120 KiB: under MAX_ARG_STRLEN
	overStrlen := strings.Repeat("x", spec.MaxArgStrlen)

	type refused struct {
		name string
		req  *pcnodev1.SubmitTaskRequest
		want e2eRefusal
	}
	var cases []refused
	invalid := func(name string, s *pcnodev1.TaskSpec, field, desc string) {
		cases = append(cases, refused{name, &pcnodev1.SubmitTaskRequest{Spec: s}, e2eRefusal{code: codes.InvalidArgument, field: field, desc: desc}})
	}

	// Every refused character in every kind of name, and in host paths.
	for _, r := range e2eBadRunes {
		c, u := string(r), fmt.Sprintf("%U", r)
		pathDesc := u
		if r == 0 {
			pathDesc = "NUL"
		}
		invalid("name "+u, func() *pcnodev1.TaskSpec { s := exit0(); s.Name = "ta" + c + "sk"; return s }(), "name", u)
		invalid("label value "+u, func() *pcnodev1.TaskSpec { s := exit0(); s.Labels = map[string]string{"team": "a" + c}; return s }(), "labels[team]", u)
		invalid("template identifier "+u, e2eSpec(img, "exit"+c), "template_identifier", u)
		invalid("image "+u, func() *pcnodev1.TaskSpec { s := exit0(); s.Image = img + c; return s }(), "image", u)
		invalid("env name "+u, e2eWithEnv(exit0(), "A"+c), "env[1].name", "POSIX")
		invalid("channel name "+u, func() *pcnodev1.TaskSpec {
			s := e2eSpec(img, "copy")
			s.Inputs = []*pcnodev1.ChannelBinding{e2eBind("in"+c, in)}
			s.Outputs = []*pcnodev1.ChannelBinding{e2eBind("out", d.DataPath("copy-out"))}
			return s
		}(), "inputs[0].name", u)
		invalid("output host path "+u, func() *pcnodev1.TaskSpec {
			s := e2eSpec(img, "write-output")
			s.Outputs = []*pcnodev1.ChannelBinding{e2eBind("out", d.DataPath("out"+c+"x"))}
			return s
		}(), "outputs[0].host_path", pathDesc)
		invalid("inline template identifier "+u, inline(func(tm *pcnodev1.TaskTemplate) { tm.Identifier = "in" + c + "line" }),
			"inline_template.identifier", u)
	}

	// The whole spec.
	invalid("spec one byte over max_spec_bytes", sized(maxSpec+1), "spec", "max_spec_bytes")
	invalid("spec of 3 MB in env values", func() *pcnodev1.TaskSpec { s := exit0(); s.Env = e2eEnv(25, big); return s }(), "spec", "max_spec_bytes")

	// Lists, each one over its cap, and far over.
	invalid("env one over max_env_entries", func() *pcnodev1.TaskSpec { s := exit0(); s.Env = e2eEnv(maxEnv+1, ""); return s }(), "env", "max_env_entries")
	invalid("env over once merged with the template's", func() *pcnodev1.TaskSpec { s := exit0(); s.Env = e2eEnv(maxEnv, ""); return s }(), "env", "once merged")
	invalid("inline template env one over", inline(func(tm *pcnodev1.TaskTemplate) { tm.Env = e2eTemplateEnv(maxEnv+1, "") }), "inline_template.env", "max_env_entries")
	invalid("inline template env 100k entries", inline(func(tm *pcnodev1.TaskTemplate) { tm.Env = e2eTemplateEnv(100000, "") }), "inline_template.env", "max_env_entries")
	invalid("inline template choices one over", inline(func(tm *pcnodev1.TaskTemplate) {
		tm.Env = e2eTemplateEnv(1, "0")
		for i := range maxChoices + 1 {
			tm.Env[0].Choices = append(tm.Env[0].Choices, fmt.Sprint(i))
		}
	}), "inline_template.env[0].choices", "max_env_choices")
	invalid("inline template 100k choices", inline(func(tm *pcnodev1.TaskTemplate) {
		tm.Env = e2eTemplateEnv(1, "0")
		tm.Env[0].Choices = make([]string, 100000)
	}), "inline_template.env[0].choices", "max_env_choices")
	invalid("command one over max_command_args", func() *pcnodev1.TaskSpec { s := exit0(); s.Command = make([]string, maxArgs+1); return s }(), "command", "max_command_args")
	invalid("inline template command one over", inline(func(tm *pcnodev1.TaskTemplate) { tm.Command = make([]string, maxArgs+1) }), "inline_template.command", "max_command_args")
	invalid("inputs one over max_channels", func() *pcnodev1.TaskSpec {
		s := e2eSpec(img, "copy")
		for i := range maxChannels + 1 {
			s.Inputs = append(s.Inputs, e2eBind(fmt.Sprintf("c%d", i), in))
		}
		return s
	}(), "inputs", "max_channels")
	invalid("outputs one over max_channels", func() *pcnodev1.TaskSpec {
		s := e2eSpec(img, "write-output")
		for i := range maxChannels + 1 {
			s.Outputs = append(s.Outputs, e2eBind(fmt.Sprintf("c%d", i), d.DataPath(fmt.Sprintf("o%d", i))))
		}
		return s
	}(), "outputs", "max_channels")
	invalid("inline template inputs one over", inline(func(tm *pcnodev1.TaskTemplate) { tm.Inputs = e2eChannels(maxChannels + 1) }), "inline_template.inputs", "max_channels")
	invalid("inline template outputs one over", inline(func(tm *pcnodev1.TaskTemplate) { tm.Outputs = e2eChannels(maxChannels + 1) }), "inline_template.outputs", "max_channels")
	invalid("labels one over max_labels", func() *pcnodev1.TaskSpec { s := exit0(); s.Labels = labels(maxLabels+1, 1); return s }(), "labels", "max_labels")
	invalid("labels over max_label_bytes", func() *pcnodev1.TaskSpec { s := exit0(); s.Labels = labels(maxLabels, 255); return s }(), "labels", "max_label_bytes")

	// Patterns.
	invalid("target_regex one byte over max_regex_bytes", scaled(sumRule(strings.Repeat("a", maxRegex+1), "")), "inputs[0].scale_rule.target_regex", "max_regex_bytes")
	invalid("target_regex of 1 MB", withRule(sumRule(strings.Repeat("a", 1<<20), "")), "inline_template.inputs[0].scale_rule.target_regex", "max_regex_bytes")
	invalid("target_regex whose program is too large", scaled(sumRule(`[\p{L}]{1000}[\p{N}]{1000}[\p{P}]{1000}`, "")), "inputs[0].scale_rule.target_regex", "max_regex_insts")
	invalid("target_regex nested repeats", withRule(sumRule(`((a{1,100}){1,100}){1,100}`, "")), "inline_template.inputs[0].scale_rule.target_regex", "")
	invalid("target_glob one byte over", scaled(sumRule("", strings.Repeat("a", maxRegex+1))), "inputs[0].scale_rule.target_glob", "max_regex_bytes")

	// What the kernel accepts, and the resolved instance.
	invalid("env over max_exec_bytes", func() *pcnodev1.TaskSpec { s := e2eSpec(img, "steps"); s.Env = e2eEnv(9, big); return s }(), "env", "max_exec_bytes")
	invalid("command over max_exec_bytes", func() *pcnodev1.TaskSpec { s := exit0(); s.Command = slicesRepeat(big, 9); return s }(), "command", "max_exec_bytes")
	invalid("one variable over MAX_ARG_STRLEN", func() *pcnodev1.TaskSpec { s := exit0(); s.Env = e2eEnv(1, overStrlen); return s }(), "env[0].value", "MAX_ARG_STRLEN")
	invalid("one argument over MAX_ARG_STRLEN", func() *pcnodev1.TaskSpec { s := exit0(); s.Command = []string{overStrlen}; return s }(), "command[0]", "MAX_ARG_STRLEN")
	invalid("inline default value over MAX_ARG_STRLEN", inline(func(tm *pcnodev1.TaskTemplate) { tm.Env = e2eTemplateEnv(1, overStrlen) }), "inline_template.env[0].value", "MAX_ARG_STRLEN")
	invalid("inline instance over max_instance_bytes", inline(func(tm *pcnodev1.TaskTemplate) { tm.Env = e2eTemplateEnv(3, big) }), "inline_template", "max_instance_bytes")
	invalid("image template instance over max_instance_bytes", func() *pcnodev1.TaskSpec { s := exit0(); s.Env = append(s.Env, e2eEnv(3, big)...); return s }(), "template_identifier", "max_instance_bytes")

	// Memory and CPU.
	invalid("memory limit of 1 byte", resources(nil, &pcnodev1.ResourceList{MemoryBytes: 1})(exit0()), "resources.limits.memory_bytes", "min_memory")
	invalid("memory request of 1 byte", resources(&pcnodev1.ResourceList{MemoryBytes: 1}, nil)(exit0()), "resources.requests.memory_bytes", "min_memory")
	invalid("memory limit one byte below the floor", resources(nil, &pcnodev1.ResourceList{MemoryBytes: minMemory - 1})(exit0()), "resources.limits.memory_bytes", "min_memory")
	invalid("memory request one byte below the floor", resources(&pcnodev1.ResourceList{MemoryBytes: minMemory - 1}, nil)(exit0()), "resources.requests.memory_bytes", "min_memory")
	invalid("inline template memory limit of 1 byte", inline(func(tm *pcnodev1.TaskTemplate) {
		tm.Resources = &pcnodev1.ResourceRequirements{Limits: &pcnodev1.ResourceList{MemoryBytes: 1}}
	}), "inline_template.resources.limits.memory_bytes", "min_memory")
	invalid("memory limit above 4Ei", resources(nil, &pcnodev1.ResourceList{MemoryBytes: spec.MaxMemoryBytes + 1})(exit0()), "resources.limits.memory_bytes", "out of range")
	invalid("cpu limit of 1m", resources(nil, &pcnodev1.ResourceList{CpuMillis: 1})(exit0()), "resources.limits.cpu_millis", "min_cpu")
	invalid("cpu limit one below the floor", resources(nil, &pcnodev1.ResourceList{CpuMillis: minCPU - 1})(exit0()), "resources.limits.cpu_millis", "min_cpu")
	invalid("cpu limit one above max_cpu", resources(nil, &pcnodev1.ResourceList{CpuMillis: maxCPU + 1})(exit0()), "resources.limits.cpu_millis", "max_cpu")
	invalid("inline template cpu limit of 1m", inline(func(tm *pcnodev1.TaskTemplate) {
		tm.Resources = &pcnodev1.ResourceRequirements{Limits: &pcnodev1.ResourceList{CpuMillis: 1}}
	}), "inline_template.resources.limits.cpu_millis", "min_cpu")

	// Computed quantities: scale_factor × measured size overflows.
	overflow := func(typ pcnodev1.ScaleRuleType) *pcnodev1.ScaleRule {
		return &pcnodev1.ScaleRule{ScaleFactor: 1 << 62, Type: typ, Mode: pcnodev1.ScaleRuleMode_SCALE_RULE_MODE_SUM}
	}
	invalid("scale limit overflows", scaled(overflow(pcnodev1.ScaleRuleType_SCALE_RULE_TYPE_LIMIT)), "resources.limits.memory_bytes", "more memory than any node has")
	invalid("scale request overflows", scaled(overflow(pcnodev1.ScaleRuleType_SCALE_RULE_TYPE_REQUEST)), "resources.requests.memory_bytes", "more memory than any node has")
	invalid("inline template scale rule overflows", withRule(overflow(pcnodev1.ScaleRuleType_SCALE_RULE_TYPE_LIMIT)), "resources.limits.memory_bytes", "more memory than any node has")
	invalid("scale above 4Ei without overflowing", scaled(&pcnodev1.ScaleRule{ScaleFactor: spec.MaxMemoryBytes / 5, Type: pcnodev1.ScaleRuleType_SCALE_RULE_TYPE_LIMIT,
		Mode: pcnodev1.ScaleRuleMode_SCALE_RULE_MODE_SUM}), "resources.limits.memory_bytes", "more memory than any node has")

	// Other fields of the request.
	invalid("priority out of range", func() *pcnodev1.TaskSpec { s := exit0(); s.Priority = 1001; return s }(), "priority", "1001")
	invalid("negative pids limit", func() *pcnodev1.TaskSpec { s := exit0(); s.PidsLimit = -1; return s }(), "pids_limit", "negative")
	invalid("user by name", func() *pcnodev1.TaskSpec { s := exit0(); s.User = "root"; return s }(), "user", "uid")
	invalid("unknown network mode", func() *pcnodev1.TaskSpec { s := exit0(); s.Network = 9; return s }(), "network", "unknown")
	invalid("negative execution timeout", func() *pcnodev1.TaskSpec { s := exit0(); s.ExecutionTimeout = durationpb.New(-time.Second); return s }(), "execution_timeout", "negative")
	cases = append(cases,
		refused{"idempotency key with a newline", &pcnodev1.SubmitTaskRequest{Spec: exit0(), IdempotencyKey: "k\ney"},
			e2eRefusal{code: codes.InvalidArgument, field: "idempotency_key"}},
		// Node resources: RESOURCE_EXHAUSTED naming what does not fit.
		refused{"memory request of 1 PiB", &pcnodev1.SubmitTaskRequest{Spec: resources(&pcnodev1.ResourceList{MemoryBytes: 1 << 50}, nil)(exit0())},
			e2eRefusal{code: codes.ResourceExhausted, desc: "can never fit this node: memory"}},
		refused{"cpu request of 1000 cores", &pcnodev1.SubmitTaskRequest{Spec: resources(&pcnodev1.ResourceList{CpuMillis: 1000 * 1000}, nil)(exit0())},
			e2eRefusal{code: codes.ResourceExhausted, desc: "can never fit this node: cpu"}},
	)

	// The same caps hold for a processing-container.json read from an image:
	// a template over one makes the file invalid, named in the image's own
	// field paths.
	var env []string
	for i := range maxEnv + 1 {
		env = append(env, fmt.Sprintf(`{"name": "V%d", "value": ""}`, i))
	}
	pcJSON := `{"name": "limits", "description": "d", "templates": [
		{"identifier": "ok", "description": "d", "env": [], "inputs": [], "outputs": [], "command": ["/pctest", "exit", "0"]},
		{"identifier": "many-env", "description": "d", "env": [` + strings.Join(env, ",") + `], "inputs": [], "outputs": []},
		{"identifier": "bidi\u202egnp", "description": "d", "env": [], "inputs": [], "outputs": []},
		{"identifier": "regex", "description": "d", "env": [], "outputs": [], "inputs": [{"name": "in", "mounted_path": "/in",
			"scale_rule": {"scale_factor": 1, "type": "limit", "mode": "sum", "target_regex": "[\\pL]{1000}[\\pN]{1000}[\\pP]{1000}"}}]},
		{"identifier": "tiny", "description": "d", "env": [], "inputs": [], "outputs": [], "resources": {"limits": {"memory": "1Ki"}}},
		{"identifier": "zero-width", "description": "d", "env": [], "inputs": [{"name": "in\u200b", "mounted_path": "/in"}], "outputs": []}
	]}`
	limitsImg := d.ImportImage(t, testimage.Image{Name: "pcnode.test/limits:1", ProcessingContainer: []byte(pcJSON)}).GetName()
	for _, pc := range []struct{ template, field, desc string }{
		{"ok", "templates[1].env", "max_env_entries"},
		{"many-env", "templates[1].env", "max_env_entries"},
		{"regex", "templates[3].inputs[0].scale_rule.target_regex", "max_regex_insts"},
		{"tiny", "templates[4].resources.limits.memory_bytes", "min_memory"},
		{"zero-width", "templates[5].inputs[0].name", "U+200B"},
		{"ok", "templates[2].identifier", "U+202E"},
	} {
		s := e2eSpec(limitsImg, pc.template)
		s.Name = "from-image"
		invalid("processing-container.json, template "+pc.template+", "+pc.field, s, pc.field, pc.desc)
	}

	// And for a Kaapana task.json, read as pcnode-cli reads it.
	for _, tj := range []struct{ name, json, field, desc string }{
		{"name with a bidi override", `{"name": "report\u202efdp.exe", "image": "` + img + `", "taskTemplate": "exit"}`, "name", "U+202E"},
		{"output host path with a newline", `{"name": "t", "image": "` + img + `", "taskTemplate": "write-output",
			"outputs": [{"name": "out", "volume_source": {"host_path": "{{ env.OUT }}\n/etc"}}]}`, "outputs[0].host_path", "U+000A"},
		{"memory limit of 1Ki", `{"name": "t", "image": "` + img + `", "taskTemplate": "exit", "resources": {"limits": {"memory": "1Ki"}}}`,
			"resources.limits.memory_bytes", "min_memory"},
		{"inline template over max_env_entries", `{"name": "t", "image": "` + img + `", "taskTemplate": {"identifier": "i", "description": "d",
			"env": [` + strings.Join(env, ",") + `], "inputs": [], "outputs": []}}`, "inline_template.env", "max_env_entries"},
		{"label value with a zero width space", `{"name": "t", "image": "` + img + `", "taskTemplate": "exit", "config": {"labels": {"team": "a\u200bb"}}}`,
			"labels[team]", "U+200B"},
	} {
		task, _, err := spec.ParseTask([]byte(tj.json), spec.MapEnv(map[string]string{"OUT": d.DataPath("tj-out")}))
		if err != nil {
			t.Fatalf("ParseTask(%s) = %v", tj.name, err)
		}
		invalid("task.json "+tj.name, specpb.TaskSpec(task), tj.field, tj.desc)
	}

	// At each cap, accepted. A few run, to prove the floors are real.
	type accepted struct {
		name string
		spec *pcnodev1.TaskSpec
		run  bool // submitted and run to success, not only resolved
	}
	valid := []accepted{
		{"memory limit and request at the floor", resources(&pcnodev1.ResourceList{MemoryBytes: minMemory}, &pcnodev1.ResourceList{MemoryBytes: minMemory})(exit0()), true},
		{"cpu limit at the floor", resources(nil, &pcnodev1.ResourceList{CpuMillis: minCPU})(exit0()), true},
		{"spec exactly max_spec_bytes", sized(maxSpec), true},
		{"env at max_env_entries once merged", func() *pcnodev1.TaskSpec { s := exit0(); s.Env = append(s.Env, e2eEnv(maxEnv-1, "")...); return s }(), true},
		{"cpu limit at max_cpu", resources(nil, &pcnodev1.ResourceList{CpuMillis: maxCPU})(exit0()), false},
		{"inline template env at max_env_entries", inline(func(tm *pcnodev1.TaskTemplate) { tm.Env = e2eTemplateEnv(maxEnv, "") }), false},
		{"choices at max_env_choices", inline(func(tm *pcnodev1.TaskTemplate) {
			tm.Env = e2eTemplateEnv(1, "0")
			for i := range maxChoices {
				tm.Env[0].Choices = append(tm.Env[0].Choices, fmt.Sprint(i))
			}
		}), false},
		{"command at max_command_args", func() *pcnodev1.TaskSpec { s := exit0(); s.Command = make([]string, maxArgs); return s }(), false},
		{"inline channels at max_channels", func() *pcnodev1.TaskSpec {
			s := inline(func(tm *pcnodev1.TaskTemplate) { tm.Outputs = e2eChannels(maxChannels) })
			for i := range maxChannels {
				s.Outputs = append(s.Outputs, e2eBind(fmt.Sprintf("c%d", i), d.DataPath(fmt.Sprintf("o%d", i))))
			}
			return s
		}(), false},
		{"labels at max_labels and within max_label_bytes", func() *pcnodev1.TaskSpec { s := exit0(); s.Labels = labels(maxLabels, 200); return s }(), false},
		{"target_regex at max_regex_bytes", scaled(sumRule(".*"+strings.Repeat("a", maxRegex-2), "")), false},
		{"target_glob at max_regex_bytes", scaled(sumRule("", strings.Repeat("*", maxRegex))), false},
		{"env value just under MAX_ARG_STRLEN", func() *pcnodev1.TaskSpec {
			s := exit0()
			s.Env = e2eEnv(1, overStrlen[:spec.MaxArgStrlen-1-len("V0=")])
			return s
		}(), false},
		{"scale rule that does not overflow", scaled(&pcnodev1.ScaleRule{ScaleFactor: 1 << 20, Type: pcnodev1.ScaleRuleType_SCALE_RULE_TYPE_LIMIT,
			Mode: pcnodev1.ScaleRuleMode_SCALE_RULE_MODE_SUM}), false},
		{"env values with newlines and tabs", func() *pcnodev1.TaskSpec { s := exit0(); s.Env = e2eEnv(1, "line 1\nline 2\tcolumn"); return s }(), false},
	}
	for _, v := range valid {
		res, err := d.Client.Tasks.ResolveTask(t.Context(), &pcnodev1.ResolveTaskRequest{Spec: v.spec})
		if err != nil || len(res.GetProblems()) > 0 || res.GetInstance() == nil {
			t.Errorf("ResolveTask(%s) = problems %v, error %v; want an instance and no problems", v.name, res.GetProblems(), client.FromError(err))
		}
	}
	var ran []string
	for _, v := range valid {
		if v.run {
			ran = append(ran, d.Submit(t, v.spec).GetId())
		}
	}
	for _, id := range ran {
		task := d.WaitTask(t, id, 60*time.Second)
		e2eWantEnd(t, task, pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskReason_TASK_REASON_COMPLETED, 0)
	}

	// The refusals change nothing: no task, and a database no larger.
	db := filepath.Join(d.StateDir, "pcnode.db")
	// Tasks at the raised spec cap are large: ListTasks pages are bounded
	// by bytes too, so count every page.
	count := func() int {
		return len(e2eListAll(t, d, &pcnodev1.ListTasksRequest{PageSize: 1000}))
	}
	size := func() int64 {
		fi, err := os.Stat(db)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	tasksBefore, sizeBefore := count(), size()
	if tasksBefore != len(ran) {
		t.Errorf("ListTasks() before the refusals = %d tasks, want the %d that ran", tasksBefore, len(ran))
	}

	names := map[string]bool{}
	start := time.Now()
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("case %q twice", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) { e2eWantRefused(t, d, c.req, c.want) })
	}
	t.Logf("%d refused requests, each on 4 submit paths, in %v", len(cases), time.Since(start).Round(time.Millisecond))
	if len(cases) < 150 {
		t.Errorf("only %d refused requests; the acceptance test wants at least 150", len(cases))
	}

	if n := count(); n != tasksBefore {
		t.Errorf("ListTasks() after %d refused requests = %d tasks, want %d", len(cases), n, tasksBefore)
	}
	if s := size(); s > sizeBefore {
		t.Errorf("database grew from %d to %d bytes with refused requests", sizeBefore, s)
	}
	t.Logf("tasks %d, database %d bytes, before and after", tasksBefore, sizeBefore)
}

// e2eWithEnv adds a variable named name to s.
func e2eWithEnv(s *pcnodev1.TaskSpec, name string) *pcnodev1.TaskSpec {
	s.Env = append(s.Env, &pcnodev1.EnvVar{Name: name, Value: "v"})
	return s
}

// slicesRepeat is n copies of s.
func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
