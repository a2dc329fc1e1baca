package spec

// ParseProcessingContainer reads a processing-container.json as Kaapana
// writes it. Unknown fields and duplicate keys come back as warnings. A file
// that is not JSON is an error wrapping [ErrSyntax] (and the container is
// nil); values of the wrong JSON type, missing required fields and bad
// quantities come back as a [Problems] error together with the container as
// far as it could be read, so that a caller can go on to
// [ProcessingContainer.Validate] and report everything at once.
func ParseProcessingContainer(data []byte) (*ProcessingContainer, []Warning, error) {
	root, err := decodeJSON(data)
	if err != nil {
		return nil, nil, err
	}
	r := &reader{}
	pc := r.processingContainer(root)
	return pc, r.warnings, r.problems.Err()
}

func (r *reader) processingContainer(v *jvalue) *ProcessingContainer {
	pc := &ProcessingContainer{}
	m, ok := r.object(v, "", []string{"name", "description", "api_version", "templates"},
		[]string{"name", "description", "templates"})
	if !ok {
		return pc
	}
	pc.Name = r.str(m["name"], "name")
	pc.Description = r.str(m["description"], "description")
	if av, ok := m["api_version"]; ok {
		n, _ := r.integer(av, "api_version")
		pc.APIVersion = int(n)
	}
	for i, tv := range r.array(m["templates"], "templates") {
		pc.Templates = append(pc.Templates, r.template(tv, indexField("templates", i)))
	}
	return pc
}

// template reads a task template, from a processing-container or inline in a
// task. In a task its strings are substituted like the rest of the file.
func (r *reader) template(v *jvalue, path string) TaskTemplate {
	var t TaskTemplate
	m, ok := r.object(v, path, []string{"identifier", "description", "env", "inputs", "outputs", "command", "resources"},
		[]string{"identifier", "description", "env", "inputs", "outputs"})
	if !ok {
		return t
	}
	t.Identifier = r.text(m["identifier"], joinField(path, "identifier"))
	t.Description = r.text(m["description"], joinField(path, "description"))
	envPath := joinField(path, "env")
	for i, ev := range r.array(m["env"], envPath) {
		t.Env = append(t.Env, r.envTemplate(ev, indexField(envPath, i)))
	}
	t.Inputs = r.channels(m["inputs"], joinField(path, "inputs"), true)
	t.Outputs = r.channels(m["outputs"], joinField(path, "outputs"), false)
	t.Command = r.texts(m["command"], joinField(path, "command"))
	if rv, ok := m["resources"]; ok {
		t.Resources = r.resources(rv, joinField(path, "resources"))
	}
	return t
}

func (r *reader) envTemplate(v *jvalue, path string) EnvVarTemplate {
	var e EnvVarTemplate
	m, ok := r.object(v, path, []string{"name", "value", "description", "type", "choices", "adjustable"},
		[]string{"name", "value"})
	if !ok {
		return e
	}
	e.Name = r.text(m["name"], joinField(path, "name"))
	e.Value = r.text(m["value"], joinField(path, "value"))
	e.Description = r.text(m["description"], joinField(path, "description"))
	e.Type = EnvType(r.text(m["type"], joinField(path, "type"))).Canonical()
	if cv, ok := m["choices"]; ok {
		e.Choices = r.texts(cv, joinField(path, "choices"))
		if e.Choices == nil {
			e.Choices = []string{}
		}
	}
	if av, ok := m["adjustable"]; ok {
		if b, ok := r.boolean(av, joinField(path, "adjustable")); ok {
			e.Adjustable = &b
		}
	}
	return e
}

func (r *reader) channels(v *jvalue, path string, input bool) []Channel {
	var out []Channel
	for i, cv := range r.array(v, path) {
		p := indexField(path, i)
		m, ok := r.object(cv, p, []string{"name", "mounted_path", "description", "scale_rule"},
			[]string{"name", "mounted_path"})
		if !ok {
			out = append(out, Channel{})
			continue
		}
		c := Channel{
			Name:        r.text(m["name"], joinField(p, "name")),
			MountedPath: r.text(m["mounted_path"], joinField(p, "mounted_path")),
			Description: r.text(m["description"], joinField(p, "description")),
		}
		if sv, ok := m["scale_rule"]; ok {
			if input {
				c.ScaleRule = r.scaleRule(sv, joinField(p, "scale_rule"))
			} else {
				r.warn(joinField(p, "scale_rule"), "scale rules apply to input channels only; ignored")
			}
		}
		out = append(out, c)
	}
	return out
}

func (r *reader) scaleRule(v *jvalue, path string) *ScaleRule {
	m, ok := r.object(v, path, []string{"scale_factor", "type", "mode", "target_dir", "target_regex", "target_glob"},
		[]string{"scale_factor", "type", "mode"})
	if !ok {
		return nil
	}
	sr := &ScaleRule{
		Type:        ScaleRuleType(r.text(m["type"], joinField(path, "type"))),
		Mode:        ScaleRuleMode(r.text(m["mode"], joinField(path, "mode"))),
		TargetDir:   r.text(m["target_dir"], joinField(path, "target_dir")),
		TargetRegex: r.text(m["target_regex"], joinField(path, "target_regex")),
		TargetGlob:  r.text(m["target_glob"], joinField(path, "target_glob")),
	}
	if fv, ok := m["scale_factor"]; ok {
		sr.ScaleFactor, _ = r.integer(fv, joinField(path, "scale_factor"))
	}
	return sr
}

// resources reads {"requests": {...}, "limits": {...}} with quantities as
// strings or numbers.
func (r *reader) resources(v *jvalue, path string) Resources {
	var res Resources
	m, ok := r.object(v, path, []string{"requests", "limits"}, nil)
	if !ok {
		return res
	}
	if lv, ok := m["requests"]; ok {
		res.Requests = r.resourceList(lv, joinField(path, "requests"))
	}
	if lv, ok := m["limits"]; ok {
		res.Limits = r.resourceList(lv, joinField(path, "limits"))
	}
	return res
}

func (r *reader) resourceList(v *jvalue, path string) ResourceList {
	var l ResourceList
	if v.kind != jObject {
		r.problem(path, "must be an object, not %s", v.kind)
		return l
	}
	for _, k := range v.dups {
		r.warn(joinField(path, k), "duplicate key; the last one is used")
	}
	for _, mem := range v.obj {
		p := joinField(path, mem.key)
		var dst *int64
		switch mem.key {
		case ResourceMemory:
			dst = &l.MemoryBytes
		case ResourceCPU:
			dst = &l.CPUMillis
		case ResourceGPU:
			dst = &l.GPUs
		default:
			r.warn(p, "unknown resource; ignored (pcnode knows memory, cpu and nvidia.com/gpu)")
			continue
		}
		var s string
		switch mem.val.kind {
		case jString:
			before := len(r.problems)
			s = r.text(mem.val, p)
			if len(r.problems) > before || r.placeholderAt(p) {
				continue // reported, or left as a placeholder: nothing to parse
			}
		case jNumber:
			s = mem.val.s
		case jNull:
			*dst = 0
			continue
		default:
			r.problem(p, "must be a quantity string or a number, not %s", mem.val.kind)
			continue
		}
		n, err := ParseQuantity(mem.key, s)
		if err != nil {
			r.problem(p, "%s", err)
			continue
		}
		*dst = n
	}
	return l
}
