package spec

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Merge binds a task to its template as Kaapana's create_task_instance does,
// without touching the filesystem: the template is the task's inline one,
// or the one pc holds under the task's identifier (pc may be nil for an
// inline template). Besides the checks of [Task.Validate] and of the
// template's own validation, it reports a task channel the template lacks
// ("inputs[i].name"), a template channel left unbound ("inputs" or
// "outputs", naming it), an unknown template identifier ("taskTemplate"),
// env overrides of a non-adjustable variable, outside its choices or of the
// wrong type ("env[i].value"), and requests above limits after overrides.
//
// The instance has no scale results (see [Resolve]); unset requests take
// their limits' values. It is nil when there are problems.
//
// Everything is checked against [DefaultLimits], the instance too (its
// merged env, its argv and env as execve counts them, its resources);
// [Limits.Merge] applies others.
func Merge(pc *ProcessingContainer, t *Task) (*Instance, []Warning, Problems) {
	return mergeWithin(DefaultLimits(), pc, t)
}

func mergeWithin(l Limits, pc *ProcessingContainer, t *Task) (*Instance, []Warning, Problems) {
	inst, _, c := merge(l, pc, t)
	if len(c.problems) > 0 {
		return nil, c.warnings, c.problems
	}
	settle(&inst.Resources)
	checkInstance(c, inst)
	if len(c.problems) > 0 {
		return nil, c.warnings, c.problems
	}
	return inst, c.warnings, nil
}

// Resolve is [Merge] followed by the scale rules, measured through fsys
// ([OSFS] on a node; nil only when no rule applies) on each bound input's
// host path: the task's rule for a channel replaces the
// template's; each raises the memory limit or request to scale_factor × the
// measured size and never lowers it; a request above the limit then raises
// the limit; unset requests take their limits' values. A task that still has
// placeholders (see Task.Placeholders) is refused. The error is [Problems]
// for an invalid task, or the reason measuring stopped (ctx done, a
// directory that cannot be read) wrapped with the channel's name.
//
// A rule whose scale_factor × measured size overflows, or passes
// [MaxMemoryBytes], is a problem on the memory value it would raise, not a
// saturated value; a product above 0 but below the memory floor
// (Limits.MinMemoryBytes) raises the value to the floor. Everything is checked against [DefaultLimits], as in
// [Merge]; [Limits.Resolve] applies others.
func Resolve(ctx context.Context, pc *ProcessingContainer, t *Task, fsys SizeFS) (*Instance, []Warning, error) {
	return resolveWithin(ctx, DefaultLimits(), pc, t, fsys)
}

func resolveWithin(ctx context.Context, l Limits, pc *ProcessingContainer, t *Task, fsys SizeFS) (*Instance, []Warning, error) {
	inst, rules, c := merge(l, pc, t)
	for _, ph := range t.Placeholders {
		c.problem(ph.Field, "placeholder {{ env.%s }} was not substituted", ph.Variable)
	}
	if len(c.problems) > 0 {
		return nil, c.warnings, c.problems
	}
	if fsys == nil && len(rules) > 0 {
		return nil, c.warnings, errors.New("spec.Resolve: scale rules to measure but no SizeFS")
	}
	for _, r := range rules {
		size, notes, err := measureRule(ctx, fsys, r.hostPath, r.rule)
		if err != nil {
			return nil, c.warnings, fmt.Errorf("measuring scale rule of input channel %q: %w", r.channel, err)
		}
		for _, n := range notes {
			c.warn(r.field, "%s; the scale rule measured 0 bytes", n)
		}
		computed, ok := mulChecked(r.rule.ScaleFactor, size)
		if !ok || computed > MaxMemoryBytes {
			list := "limits"
			if r.rule.Type == TypeRequest {
				list = "requests"
			}
			c.problem(resourceField("resources", list, ResourceMemory),
				"scale rule of input channel %q: scale_factor %d × %d measured bytes is more memory than any node has (at most %s)",
				r.channel, r.rule.ScaleFactor, size, FormatBytes(MaxMemoryBytes))
			continue
		}
		inst.ScaleResults = append(inst.ScaleResults, ScaleResult{
			Channel:       r.channel,
			Rule:          r.rule,
			MeasuredBytes: size,
			ComputedBytes: computed,
			Applied:       applyScale(&inst.Resources, r.rule, atLeastFloor(computed, l.MinMemoryBytes)),
		})
	}
	if len(c.problems) > 0 {
		return nil, c.warnings, c.problems
	}
	settle(&inst.Resources)
	checkInstance(c, inst)
	if len(c.problems) > 0 {
		return nil, c.warnings, c.problems
	}
	return inst, c.warnings, nil
}

// atLeastFloor raises a computed memory value above 0 to the node's
// floor: a rule measuring a few bytes must not leave a container a limit it
// cannot start with.
func atLeastFloor(v, floor int64) int64 {
	if v > 0 && v < floor {
		return floor
	}
	return v
}

// boundRule is a scale rule to measure: the effective rule of one bound input.
type boundRule struct {
	channel  string
	field    string // the binding's host path field, for warnings
	hostPath string
	rule     ScaleRule
}

// merge does the work of Merge, leaving requests unsettled, and returns the
// scale rules to measure.
func merge(l Limits, pc *ProcessingContainer, t *Task) (*Instance, []boundRule, *collector) {
	c := &collector{limits: l}
	validateTask(c, t)
	tmpl := selectTemplate(c, pc, t)
	if tmpl == nil {
		return nil, nil, c
	}
	inst := &Instance{
		Image:              t.Image,
		TemplateIdentifier: tmpl.Identifier,
		Command:            slices.Clone(tmpl.Command),
	}
	if len(t.Command) > 0 {
		inst.Command = slices.Clone(t.Command)
	}
	var rules []boundRule
	inst.Inputs, rules = bind(c, tmpl, tmpl.Inputs, t.Inputs, "inputs", true)
	inst.Outputs, _ = bind(c, tmpl, tmpl.Outputs, t.Outputs, "outputs", false)
	inst.Env = mergeEnv(c, tmpl, t)
	inst.Resources = Resources{
		Requests: tmpl.Resources.Requests.override(t.Resources.Requests),
		Limits:   tmpl.Resources.Limits.override(t.Resources.Limits),
	}
	checkRequestsWithinLimits(c, inst.Resources, "resources")
	return inst, rules, c
}

// selectTemplate finds the task's template and records its problems.
func selectTemplate(c *collector, pc *ProcessingContainer, t *Task) *TaskTemplate {
	switch {
	case t.InlineTemplate != nil && t.TemplateIdentifier != "":
		return nil // reported by validateTask
	case t.InlineTemplate != nil:
		return t.InlineTemplate // validated by validateTask
	case t.TemplateIdentifier == "":
		return nil // reported by validateTask
	case pc == nil:
		c.problem("taskTemplate", "template %q named, but no processing-container given to find it in", clip(t.TemplateIdentifier))
		return nil
	}
	tmpl, idx := pc.Template(t.TemplateIdentifier)
	if tmpl == nil {
		ids := make([]string, 0, len(pc.Templates))
		for _, tt := range pc.Templates {
			ids = append(ids, tt.Identifier)
		}
		c.problem("taskTemplate", "processing-container %q has no template %q (it has %s)",
			clip(pc.Name), clip(t.TemplateIdentifier), quoteList(ids))
		return nil
	}
	checkAPIVersion(c, pc.APIVersion, "api_version")
	for j := idx + 1; j < len(pc.Templates); j++ {
		if pc.Templates[j].Identifier == tmpl.Identifier {
			c.problem(joinField(indexField("templates", j), "identifier"), "duplicate identifier %q (also templates[%d])", tmpl.Identifier, idx)
		}
	}
	validateTemplate(c, tmpl, indexField("templates", idx))
	return tmpl
}

// bind matches a task's bindings to a template's channels by name and
// returns the mounts in template order, with the scale rules to measure.
func bind(c *collector, tmpl *TaskTemplate, chans []Channel, binds []Binding, list string, input bool) ([]Mount, []boundRule) {
	kind := strings.TrimSuffix(list, "s")
	byName := map[string]int{}
	for i, b := range binds {
		if _, dup := byName[b.Name]; !dup {
			byName[b.Name] = i
		}
		if slices.ContainsFunc(chans, func(ch Channel) bool { return ch.Name == b.Name }) || b.Name == "" {
			continue
		}
		other := tmpl.Outputs
		if !input {
			other = tmpl.Inputs
		}
		if slices.ContainsFunc(other, func(ch Channel) bool { return ch.Name == b.Name }) {
			c.problem(joinField(indexField(list, i), "name"), "%q is not an %s channel of template %q (it is an %s)",
				clip(b.Name), kind, clip(tmpl.Identifier), map[bool]string{true: "output", false: "input"}[input])
			continue
		}
		c.problem(joinField(indexField(list, i), "name"), "template %q has no %s channel %q (its %s: %s)",
			clip(tmpl.Identifier), kind, clip(b.Name), list, quoteList(channelNames(chans)))
	}
	mounts := make([]Mount, 0, len(chans))
	var rules []boundRule
	for _, ch := range chans {
		i, ok := byName[ch.Name]
		if !ok {
			c.problem(list, "%s channel %q of template %q is not bound to a host path", kind, clip(ch.Name), clip(tmpl.Identifier))
			continue
		}
		b := binds[i]
		mounts = append(mounts, Mount{Name: ch.Name, HostPath: b.HostPath, MountedPath: ch.MountedPath, ReadOnly: input})
		rule := ch.ScaleRule
		if b.ScaleRule != nil {
			rule = b.ScaleRule
		}
		if input && rule != nil {
			rules = append(rules, boundRule{
				channel:  ch.Name,
				field:    hostPathField(indexField(list, i)),
				hostPath: b.HostPath,
				rule:     rule.withDefaults(),
			})
		}
	}
	return mounts, rules
}

func channelNames(chans []Channel) []string {
	names := make([]string, 0, len(chans))
	for _, ch := range chans {
		names = append(names, ch.Name)
	}
	return names
}

// mergeEnv overrides template variables by name and appends new ones, as
// Kaapana's merge_env does, checking each override against the template.
func mergeEnv(c *collector, tmpl *TaskTemplate, t *Task) []EnvVar {
	env := make([]EnvVar, 0, len(tmpl.Env)+len(t.Env))
	for _, e := range tmpl.Env {
		env = append(env, EnvVar{Name: e.Name, Value: e.Value})
	}
	for i, o := range t.Env {
		vf := joinField(indexField("env", i), "value")
		j := slices.IndexFunc(tmpl.Env, func(e EnvVarTemplate) bool { return e.Name == o.Name })
		if j < 0 {
			if o.Name != "" && !slices.ContainsFunc(env, func(e EnvVar) bool { return e.Name == o.Name }) {
				c.warn(joinField(indexField("env", i), "name"), "%q is not declared by template %q; added", o.Name, clip(tmpl.Identifier))
				env = append(env, o)
			}
			continue
		}
		decl := &tmpl.Env[j]
		if o.Secret != "" {
			sf := joinField(indexField("env", i), "secret")
			switch {
			case !decl.IsAdjustable():
				c.problem(sf, "%s is not adjustable in template %q; it stays %q", o.Name, clip(tmpl.Identifier), clip(decl.Value))
			case len(decl.Choices) > 0 || (decl.Type.Canonical() != EnvTypeUnspecified && decl.Type.Canonical() != EnvTypeString):
				// Checking would need the content, which only the
				// daemon reads, when it creates the container.
				c.problem(sf, "%s declares a type or choices in template %q; a secret's content is not checked against them, so only a string variable without choices may be a secret", o.Name, clip(tmpl.Identifier))
			default:
				env[j] = EnvVar{Name: o.Name, Secret: o.Secret}
			}
			continue
		}
		switch {
		case t.placeholderAt(vf):
		case !decl.IsAdjustable() && o.Value != decl.Value:
			c.problem(vf, "%s is not adjustable in template %q; it stays %q", o.Name, clip(tmpl.Identifier), clip(decl.Value))
			continue
		default:
			if why := checkEnvValue(decl, o.Value); why != "" {
				c.problem(vf, "%s", why)
				continue
			}
		}
		env[j].Value = o.Value
	}
	return env
}
