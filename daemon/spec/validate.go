package spec

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Validate checks a processing-container: api_version, unique template
// identifiers, and every template (see [TaskTemplate.Validate]). Fields are
// named from the file's root, e.g. "templates[0].inputs[1].mounted_path".
//
// It applies [DefaultLimits]; [Limits.ValidateProcessingContainer] applies
// others.
func (pc *ProcessingContainer) Validate() Problems {
	return DefaultLimits().ValidateProcessingContainer(pc)
}

func validateProcessingContainer(c *collector, pc *ProcessingContainer) {
	checkAPIVersion(c, pc.APIVersion, "api_version")
	if why := CheckName(pc.Name); why != "" {
		c.problem("name", "%s", why)
	}
	seen := map[string]int{}
	for i := range pc.Templates {
		p := indexField("templates", i)
		id := pc.Templates[i].Identifier
		if j, dup := seen[id]; dup && id != "" {
			c.problem(joinField(p, "identifier"), "duplicate identifier %q (also templates[%d])", id, j)
		} else {
			seen[id] = i
		}
		validateTemplate(c, &pc.Templates[i], p)
	}
}

// Validate checks one template on its own: identifier present; env names
// POSIX and unique, types known, values and choices of their type, values
// within choices; channel names present and unique across inputs and
// outputs; mounted paths absolute, clean, not "/", not under /proc, /sys or
// /dev, and not equal to, inside or around another channel's; scale rules
// well formed; requests not above limits; names free of the characters
// [CheckName] refuses; and everything within [DefaultLimits] (see
// [Limits.ValidateTemplate] for others). Fields are named from the template.
func (t *TaskTemplate) Validate() Problems {
	return DefaultLimits().ValidateTemplate(t)
}

func checkAPIVersion(c *collector, v int, field string) {
	if v != 0 && v != 1 {
		c.problem(field, "must be 1, the only version, not %d", v)
	}
}

func validateTemplate(c *collector, t *TaskTemplate, p string) {
	if t.Identifier == "" {
		c.problem(joinField(p, "identifier"), "required")
	} else if why := CheckName(t.Identifier); why != "" {
		c.problem(joinField(p, "identifier"), "%s", why)
	}
	envPath := joinField(p, "env")
	checkCount(c, envPath, len(t.Env), c.limits.MaxEnvEntries, "variables", "max_env_entries")
	checkCount(c, joinField(p, "inputs"), len(t.Inputs), c.limits.MaxChannels, "input channels", "max_channels")
	checkCount(c, joinField(p, "outputs"), len(t.Outputs), c.limits.MaxChannels, "output channels", "max_channels")
	if tooMany(len(t.Env), c.limits.MaxEnvEntries) ||
		tooMany(len(t.Inputs), c.limits.MaxChannels) || tooMany(len(t.Outputs), c.limits.MaxChannels) {
		return // checking every entry of an oversized list is work an attacker chose
	}
	names := map[string]int{}
	for i := range t.Env {
		e := &t.Env[i]
		ep := indexField(envPath, i)
		checkEnvName(c, e.Name, joinField(ep, "name"))
		checkExecString(c, joinField(ep, "value"), e.Name+"="+e.Value, e.Name+"=VALUE")
		checkCount(c, joinField(ep, "choices"), len(e.Choices), c.limits.MaxEnvChoices, "choices", "max_env_choices")
		if tooMany(len(e.Choices), c.limits.MaxEnvChoices) {
			continue
		}
		if j, dup := names[e.Name]; dup && e.Name != "" {
			c.problem(joinField(ep, "name"), "duplicate variable %q (also %s)", e.Name, indexField(envPath, j))
		} else {
			names[e.Name] = i
		}
		switch e.Type.Canonical() {
		case EnvTypeUnspecified, EnvTypeString, EnvTypeInteger, EnvTypeNumber, EnvTypeBoolean:
		default:
			c.problem(joinField(ep, "type"), "unknown type %q (one of string, integer, number, boolean, or Kaapana's str, int, float, bool)", clip(string(e.Type)))
		}
		for k, ch := range e.Choices {
			if why := typeMismatch(e.Type, ch); why != "" {
				c.problem(indexField(joinField(ep, "choices"), k), "%s", why)
			}
		}
		if why := checkEnvValue(e, e.Value); why != "" {
			c.problem(joinField(ep, "value"), "%s", why)
		}
	}

	type chanRef struct {
		field  string
		ch     *Channel
		output bool
	}
	var chans []chanRef
	for i := range t.Inputs {
		chans = append(chans, chanRef{indexField(joinField(p, "inputs"), i), &t.Inputs[i], false})
	}
	for i := range t.Outputs {
		chans = append(chans, chanRef{indexField(joinField(p, "outputs"), i), &t.Outputs[i], true})
	}
	for i, cr := range chans {
		checkChannelName(c, cr.ch.Name, joinField(cr.field, "name"))
		// Names are unique within inputs and within outputs; an input and an
		// output may share one, as in Kaapana, which merges the two lists
		// apart (its head-replacement workflow reads and writes "nrrd").
		for _, prev := range chans[:i] {
			if prev.output == cr.output && prev.ch.Name == cr.ch.Name && cr.ch.Name != "" {
				c.problem(joinField(cr.field, "name"), "duplicate channel name %q (also %s)", cr.ch.Name, prev.field)
				break
			}
		}
		mp := joinField(cr.field, "mounted_path")
		if !checkMountedPath(c, cr.ch.MountedPath, mp) {
			continue
		}
		for _, prev := range chans[:i] {
			if why := overlap(cr.ch.MountedPath, prev.ch.MountedPath); why != "" {
				c.problem(mp, "%q %s %s (%q); channel mounts must not overlap", clip(cr.ch.MountedPath), why,
					joinField(prev.field, "mounted_path"), clip(prev.ch.MountedPath))
			}
		}
	}
	for i := range t.Inputs {
		if sr := t.Inputs[i].ScaleRule; sr != nil {
			validateScaleRule(c, sr, joinField(indexField(joinField(p, "inputs"), i), "scale_rule"))
		}
	}
	checkCommand(c, t.Command, joinField(p, "command"))
	checkResources(c, t.Resources, joinField(p, "resources"))
	checkResourceBounds(c, t.Resources, joinField(p, "resources"))
}

// tooMany reports whether n is over a cap (0: none).
func tooMany(n, most int) bool { return most > 0 && n > most }

func checkEnvName(c *collector, name, field string) {
	switch {
	case name == "":
		c.problem(field, "required")
	case !validEnvName(name):
		c.problem(field, "%q is not a POSIX variable name ([A-Za-z_][A-Za-z0-9_]*)", clip(name))
	}
}

// checkEnvValue says why v is not an acceptable value of e, or "".
func checkEnvValue(e *EnvVarTemplate, v string) string {
	if strings.ContainsRune(v, 0) {
		return "contains a NUL byte"
	}
	if why := typeMismatch(e.Type, v); why != "" {
		return why
	}
	if len(e.Choices) > 0 {
		for _, ch := range e.Choices {
			if v == ch {
				return ""
			}
		}
		return fmt.Sprintf("%q is not one of the choices %s of %s", clip(v), quoteList(e.Choices), e.Name)
	}
	return ""
}

var (
	integerRE = regexp.MustCompile(`^[+-]?[0-9]+$`)
	numberRE  = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
)

// typeMismatch says why v does not parse as typ, or "".
func typeMismatch(typ EnvType, v string) string {
	switch typ.Canonical() {
	case EnvTypeInteger:
		if !integerRE.MatchString(v) {
			return fmt.Sprintf("%q is not an integer", clip(v))
		}
	case EnvTypeNumber:
		if !numberRE.MatchString(v) {
			return fmt.Sprintf("%q is not a number", clip(v))
		}
	case EnvTypeBoolean:
		if v != "true" && v != "false" {
			return fmt.Sprintf("%q is not a boolean (true or false)", clip(v))
		}
	}
	return ""
}

func quoteList(list []string) string {
	const show = 10
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range list {
		if i == show {
			fmt.Fprintf(&b, ", ... %d more", len(list)-show)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", clip(s))
	}
	b.WriteByte(']')
	return b.String()
}

func checkChannelName(c *collector, name, field string) {
	if name == "" {
		c.problem(field, "required")
	} else if why := CheckName(name); why != "" {
		c.problem(field, "%s", why)
	}
}

// reservedMountRoots are container paths the runtime owns.
var reservedMountRoots = []string{"/proc", "/sys", "/dev"}

// checkMountedPath reports what is wrong with a container path and whether
// it is sound enough to compare with others.
func checkMountedPath(c *collector, p, field string) bool {
	switch {
	case p == "":
		c.problem(field, "required")
	case strings.ContainsRune(p, 0):
		c.problem(field, "contains a NUL byte")
	case CheckName(p) != "":
		c.problem(field, "%s", CheckName(p))
	case !path.IsAbs(p):
		c.problem(field, "%q must be an absolute path", clip(p))
	case path.Clean(p) != p:
		c.problem(field, "%q must be a clean path (%q)", clip(p), clip(path.Clean(p)))
	case p == "/":
		c.problem(field, "must not be / (the container's root)")
	default:
		for _, r := range reservedMountRoots {
			if p == r || strings.HasPrefix(p, r+"/") {
				c.problem(field, "%q is under %s, which the container runtime owns", clip(p), r)
				return false
			}
		}
		return true
	}
	return false
}

// overlap says how clean absolute path a relates to b, or "" when neither
// contains the other.
func overlap(a, b string) string {
	switch {
	case a == b:
		return "is the same path as"
	case strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/"):
		return "is inside"
	case strings.HasPrefix(b, strings.TrimSuffix(a, "/")+"/"):
		return "contains"
	}
	return ""
}

func checkCommand(c *collector, cmd []string, field string) {
	checkCount(c, field, len(cmd), c.limits.MaxCommandArgs, "arguments", "max_command_args")
	if tooMany(len(cmd), c.limits.MaxCommandArgs) {
		return
	}
	for i, arg := range cmd {
		if strings.ContainsRune(arg, 0) {
			c.problem(indexField(field, i), "contains a NUL byte")
		}
		checkExecString(c, indexField(field, i), arg, "the argument")
	}
}

// resourceField names one quantity of a resources object.
func resourceField(base, list, name string) string {
	return joinField(joinField(base, list), name)
}

// checkResources checks the range of every quantity and that requests are
// within limits.
func checkResources(c *collector, r Resources, field string) {
	checkResourceRanges(c, r, field)
	checkRequestsWithinLimits(c, r, field)
}

// checkResourceRanges checks the range of every quantity: a Resources built
// in Go (from the API) never went through ParseQuantity.
func checkResourceRanges(c *collector, r Resources, field string) {
	for _, list := range []struct {
		name string
		l    ResourceList
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		for _, q := range []struct {
			name    string
			v, most int64
		}{
			{ResourceMemory, list.l.MemoryBytes, MaxMemoryBytes},
			{ResourceCPU, list.l.CPUMillis, MaxCPUMillis},
			{ResourceGPU, list.l.GPUs, MaxGPUs},
		} {
			if q.v < 0 || q.v > q.most {
				c.problem(resourceField(field, list.name, q.name), "%d is out of range 0..%d", q.v, q.most)
			}
		}
	}
}

func checkRequestsWithinLimits(c *collector, r Resources, field string) {
	q, l := r.Requests, r.Limits
	if l.MemoryBytes > 0 && q.MemoryBytes > l.MemoryBytes {
		c.problem(resourceField(field, "requests", ResourceMemory), "request %s is above the limit %s",
			FormatBytes(q.MemoryBytes), FormatBytes(l.MemoryBytes))
	}
	if l.CPUMillis > 0 && q.CPUMillis > l.CPUMillis {
		c.problem(resourceField(field, "requests", ResourceCPU), "request %s is above the limit %s",
			FormatMillis(q.CPUMillis), FormatMillis(l.CPUMillis))
	}
	if l.GPUs > 0 && q.GPUs > 0 && q.GPUs != l.GPUs {
		c.problem(resourceField(field, "requests", ResourceGPU), "GPU request %d and limit %d must be equal when both are given",
			q.GPUs, l.GPUs)
	}
}

// validateScaleRule checks mode, type, factor, regex, glob and target_dir.
func validateScaleRule(c *collector, sr *ScaleRule, p string) {
	switch sr.Mode {
	case ModeSum, ModeMaxFileSize, ModeMaxItemSum:
	case "":
		c.problem(joinField(p, "mode"), "required")
	default:
		c.problem(joinField(p, "mode"), "unknown mode %q (one of sum, max_file_size, max_item_sum)", clip(string(sr.Mode)))
	}
	switch sr.Type {
	case TypeLimit, TypeRequest:
	case "":
		c.problem(joinField(p, "type"), "required")
	default:
		c.problem(joinField(p, "type"), "unknown type %q (one of limit, request)", clip(string(sr.Type)))
	}
	if sr.ScaleFactor <= 0 {
		c.problem(joinField(p, "scale_factor"), "must be positive, not %d", sr.ScaleFactor)
	}
	if _, err := compileTargetRegexWithin(sr.TargetRegex, c.limits); err != nil {
		c.problem(joinField(p, "target_regex"), "%s", err)
	}
	if most := c.limits.MaxPatternBytes; most > 0 && len(sr.TargetGlob) > most {
		c.problem(joinField(p, "target_glob"), "is %d bytes; at most %d ([limits] max_regex_bytes)", len(sr.TargetGlob), most)
	} else if _, err := compileGlob(sr.TargetGlob); err != nil {
		c.problem(joinField(p, "target_glob"), "%s", err)
	}
	if why := checkTargetDir(sr.TargetDir); why != "" {
		c.problem(joinField(p, "target_dir"), "%s", why)
	}
}

// checkTargetDir says why dir cannot be a target_dir, or "".
func checkTargetDir(dir string) string {
	clean := path.Clean(dir)
	switch {
	case strings.ContainsRune(dir, 0):
		return "contains a NUL byte"
	case CheckName(dir) != "":
		return CheckName(dir)
	case path.IsAbs(dir):
		return fmt.Sprintf("%q must be relative to the channel", clip(dir))
	case clean == ".." || strings.HasPrefix(clean, "../"):
		return fmt.Sprintf("%q leaves the channel", clip(dir))
	}
	return ""
}
