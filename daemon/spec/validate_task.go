package spec

import (
	"path"
	"slices"
	"strings"

	"github.com/distribution/reference"
)

// Limits on task fields, as documented in the v1 API.
const (
	// MaxNameLen is the longest task name, in bytes.
	MaxNameLen = 256
	// MaxLabelKeyLen is the longest label key, in bytes.
	MaxLabelKeyLen = 63
	// MaxLabelValueLen is the longest label value, in bytes.
	MaxLabelValueLen = 256
)

// Validate checks a task on its own, without its template: api_version;
// name length; an image reference; exactly one of a template identifier and
// an inline template (which must itself be valid; its fields are named
// "taskTemplate.…"); channel bindings named, unique, with absolute host
// paths, outputs not sharing or nesting with another binding's host path,
// scale rules on inputs only and well formed; env names POSIX and unique;
// labels; no NUL bytes. Fields holding an unsubstituted placeholder (see
// Task.Placeholders) are not checked for their form.
//
// Names and host paths must be free of the characters [CheckName] refuses,
// and everything must be within [DefaultLimits]; [Limits.Validate] applies
// other limits.
func (t *Task) Validate() Problems {
	return DefaultLimits().Validate(t)
}

func validateTask(c *collector, t *Task) {
	checkAPIVersion(c, t.APIVersion, "api_version")
	if len(t.Name) > MaxNameLen {
		c.problem("name", "is %d bytes long; at most %d", len(t.Name), MaxNameLen)
	}
	if why := CheckName(t.Name); why != "" {
		c.problem("name", "%s", why)
	}
	l := c.limits
	checkCount(c, "inputs", len(t.Inputs), l.MaxChannels, "channel bindings", "max_channels")
	checkCount(c, "outputs", len(t.Outputs), l.MaxChannels, "channel bindings", "max_channels")
	checkCount(c, "env", len(t.Env), l.MaxEnvEntries, "variables", "max_env_entries")
	checkCount(c, "config.labels", len(t.Labels), l.MaxLabels, "labels", "max_labels")
	if tooMany(len(t.Inputs), l.MaxChannels) || tooMany(len(t.Outputs), l.MaxChannels) ||
		tooMany(len(t.Env), l.MaxEnvEntries) || tooMany(len(t.Labels), l.MaxLabels) {
		return // checking every entry of an oversized list is work an attacker chose
	}
	if t.TemplateIdentifier != "" {
		if why := CheckName(t.TemplateIdentifier); why != "" {
			c.problem("taskTemplate", "%s", why)
		}
	}
	switch {
	case t.Image == "":
		c.problem("image", "required")
	case t.placeholderAt("image"):
	case CheckName(t.Image) != "":
		c.problem("image", "%s", CheckName(t.Image))
	default:
		if _, err := reference.ParseNormalizedNamed(t.Image); err != nil {
			c.problem("image", "%q is not an image reference: %s", clip(t.Image), err)
		}
	}
	switch {
	case t.InlineTemplate != nil && t.TemplateIdentifier != "":
		c.problem("taskTemplate", "give a template identifier or an inline template, not both")
	case t.InlineTemplate != nil:
		validateTemplate(c, t.InlineTemplate, "taskTemplate")
	case t.TemplateIdentifier == "":
		c.problem("taskTemplate", "required: a template identifier or an inline template")
	}

	type bindRef struct {
		field  string
		b      *Binding
		output bool
	}
	var binds []bindRef
	for i := range t.Inputs {
		binds = append(binds, bindRef{indexField("inputs", i), &t.Inputs[i], false})
	}
	for i := range t.Outputs {
		binds = append(binds, bindRef{indexField("outputs", i), &t.Outputs[i], true})
	}
	for i, br := range binds {
		nf := joinField(br.field, "name")
		checkChannelName(c, br.b.Name, nf)
		// An input and an output may share a name (see validateTemplate).
		for _, prev := range binds[:i] {
			if prev.output == br.output && prev.b.Name == br.b.Name && br.b.Name != "" {
				c.problem(nf, "channel %q is bound twice (also %s)", br.b.Name, prev.field)
				break
			}
		}
		hf := hostPathField(br.field)
		switch hp := br.b.HostPath; {
		case hp == "":
			c.problem(hf, "required")
		case t.placeholderAt(hf):
		case strings.ContainsRune(hp, 0):
			c.problem(hf, "contains a NUL byte")
		case CheckName(hp) != "":
			c.problem(hf, "%s", CheckName(hp))
		case !path.IsAbs(hp):
			c.problem(hf, "%q must be an absolute path", clip(hp))
		}
		if br.b.ScaleRule != nil {
			sf := joinField(br.field, "scale_rule")
			if strings.HasPrefix(br.field, "outputs") {
				c.problem(sf, "scale rules apply to input channels only")
			} else {
				validateScaleRule(c, br.b.ScaleRule, sf)
			}
		}
	}
	// Outputs are emptied before a run and written during it: one that is,
	// contains or lies inside another channel's host directory would destroy
	// or alter that channel's data.
	for k := len(t.Inputs); k < len(binds); k++ {
		of := hostPathField(binds[k].field)
		a := cleanHostPath(t, binds[k].b.HostPath, of)
		if a == "" {
			continue
		}
		for _, prev := range binds[:k] {
			pf := hostPathField(prev.field)
			b := cleanHostPath(t, prev.b.HostPath, pf)
			if b == "" {
				continue
			}
			if why := overlap(a, b); why != "" {
				c.problem(of, "output directory %q %s %s (%q); outputs are emptied before a run", clip(a), why, pf, clip(b))
			}
		}
	}

	names := map[string]int{}
	for i, e := range t.Env {
		ef := indexField("env", i)
		checkEnvName(c, e.Name, joinField(ef, "name"))
		if j, dup := names[e.Name]; dup && e.Name != "" {
			c.problem(joinField(ef, "name"), "duplicate variable %q (also env[%d])", e.Name, j)
		} else {
			names[e.Name] = i
		}
		if strings.ContainsRune(e.Value, 0) {
			c.problem(joinField(ef, "value"), "contains a NUL byte")
		}
		if e.Secret != "" {
			if why := CheckSecretName(e.Secret); why != "" {
				c.problem(joinField(ef, "secret"), "%s", why)
			}
			if e.Value != "" {
				c.problem(joinField(ef, "value"), "must be empty when secret is given (the value is the secret's content)")
			}
		}
		checkExecString(c, joinField(ef, "value"), e.Name+"="+e.Value, e.Name+"=VALUE")
	}
	checkLabels(c, t.Labels)
	checkCommand(c, t.Command, "command")
	checkResourceRanges(c, t.Resources, "resources")
	checkResourceBounds(c, t.Resources, "resources")
}

// hostPathField names the host path of a binding field, "inputs[0]" →
// "inputs[0].volume_source.host_path".
func hostPathField(binding string) string {
	return binding + ".volume_source.host_path"
}

// cleanHostPath returns p cleaned when it is a checkable absolute path, or "".
func cleanHostPath(t *Task, p, field string) string {
	if p == "" || !path.IsAbs(p) || t.placeholderAt(field) {
		return ""
	}
	return path.Clean(p)
}

// placeholderAt reports whether ParseTask left a placeholder in the field.
func (t *Task) placeholderAt(field string) bool {
	return slices.ContainsFunc(t.Placeholders, func(p Placeholder) bool { return p.Field == field })
}

func checkLabels(c *collector, labels map[string]string) {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	total := 0
	for _, k := range keys {
		total += len(k) + len(labels[k])
	}
	if most := c.limits.MaxLabelBytes; most > 0 && total > most {
		c.problem("config.labels", "keys and values take %d bytes; at most %d ([limits] max_label_bytes)", total, most)
	}
	for _, k := range keys {
		f := joinField("config.labels", k)
		switch {
		case k == "":
			c.problem(f, "label key must not be empty")
		case len(k) > MaxLabelKeyLen:
			c.problem(f, "label key is %d bytes long; at most %d", len(k), MaxLabelKeyLen)
		case strings.ContainsFunc(k, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._/-", r))
		}):
			c.problem(f, "label key %q may hold only letters, digits and . _ / -", clip(k))
		}
		if v := labels[k]; len(v) > MaxLabelValueLen {
			c.problem(f, "label value is %d bytes long; at most %d", len(v), MaxLabelValueLen)
		} else if why := CheckName(v); why != "" {
			c.problem(f, "label value %s", why)
		}
	}
}
