package spec

import "strconv"

// ParseTask reads a Kaapana task.json. Every string value it uses is passed
// through [SubstituteEnv] with lookup; a missing variable is a problem naming
// the variable and the field. With a nil lookup placeholders are left as they
// are and listed in Task.Placeholders (for validating a file without its
// environment). Fields pcnode ignores — unknown keys, and every key of
// `config` but `type` and `labels` — are warnings and are not substituted.
// Errors are as for [ParseProcessingContainer]: [ErrSyntax] with a nil task,
// or [Problems] with the task as far as it could be read.
func ParseTask(data []byte, lookup LookupEnv) (*Task, []Warning, error) {
	root, err := decodeJSON(data)
	if err != nil {
		return nil, nil, err
	}
	r := &reader{substitute: true, lookup: lookup}
	t := r.task(root)
	t.Placeholders = r.placeholders
	return t, r.warnings, r.problems.Err()
}

func (r *reader) task(v *jvalue) *Task {
	t := &Task{}
	m, ok := r.object(v, "", []string{"name", "image", "api_version", "taskTemplate", "config",
		"inputs", "outputs", "env", "command", "resources"},
		[]string{"name", "image", "taskTemplate"})
	if !ok {
		return t
	}
	t.Name = r.text(m["name"], "name")
	t.Image = r.text(m["image"], "image")
	if av, ok := m["api_version"]; ok {
		n, _ := r.integer(av, "api_version")
		t.APIVersion = int(n)
	}
	if tv, ok := m["taskTemplate"]; ok {
		switch tv.kind {
		case jString:
			t.TemplateIdentifier = r.text(tv, "taskTemplate")
		case jObject:
			tmpl := r.template(tv, "taskTemplate")
			t.InlineTemplate = &tmpl
		default:
			r.problem("taskTemplate", "must be a template identifier (string) or a template (object), not %s", tv.kind)
		}
	}
	if cv, ok := m["config"]; ok {
		t.Labels = r.config(cv, "config")
	}
	t.Inputs = r.bindings(m["inputs"], "inputs")
	t.Outputs = r.bindings(m["outputs"], "outputs")
	for i, ev := range r.array(m["env"], "env") {
		p := indexField("env", i)
		em, ok := r.object(ev, p, []string{"name", "value", "secret"}, []string{"name"})
		if !ok {
			t.Env = append(t.Env, EnvVar{})
			continue
		}
		_, hasValue := em["value"]
		_, hasSecret := em["secret"]
		if !hasValue && !hasSecret {
			r.problem(joinField(p, "value"), "required")
		}
		t.Env = append(t.Env, EnvVar{
			Name:   r.text(em["name"], joinField(p, "name")),
			Value:  r.text(em["value"], joinField(p, "value")),
			Secret: r.str(em["secret"], joinField(p, "secret")),
		})
	}
	if cv, ok := m["command"]; ok {
		t.Command = r.texts(cv, "command")
		if cv.kind == jArray && len(cv.arr) == 0 {
			r.warn("command", "an empty command keeps the template's command")
		}
	}
	if rv, ok := m["resources"]; ok {
		t.Resources = r.resources(rv, "resources")
	}
	return t
}

// config reads Kaapana's runner config: labels become task labels, type
// (docker or k8s) is accepted, everything else is a runner setting pcnode
// does not use.
func (r *reader) config(v *jvalue, path string) map[string]string {
	if v.kind != jObject {
		r.problem(path, "must be an object, not %s", v.kind)
		return nil
	}
	for _, k := range v.dups {
		r.warn(joinField(path, k), "duplicate key; the last one is used")
	}
	var labels map[string]string
	for _, mem := range v.obj {
		p := joinField(path, mem.key)
		switch mem.key {
		case "type":
			switch typ := r.str(mem.val, p); typ {
			case "docker", "k8s", "":
			default:
				r.warn(p, "unknown runner type %q; ignored", clip(typ))
			}
		case "labels":
			labels = r.labels(mem.val, p)
		default:
			r.warn(p, "runner setting; ignored by pcnode")
		}
	}
	return labels
}

func (r *reader) labels(v *jvalue, path string) map[string]string {
	if v.kind == jNull {
		return nil
	}
	if v.kind != jObject {
		r.problem(path, "must be an object, not %s", v.kind)
		return nil
	}
	for _, k := range v.dups {
		r.warn(joinField(path, k), "duplicate key; the last one is used")
	}
	labels := make(map[string]string, len(v.obj))
	for _, mem := range v.obj {
		p := joinField(path, mem.key)
		switch mem.val.kind {
		case jString:
			labels[mem.key] = r.text(mem.val, p)
		case jNumber:
			labels[mem.key] = mem.val.s
		case jBool:
			labels[mem.key] = strconv.FormatBool(mem.val.b)
		default:
			r.problem(p, "label value must be a string, number or boolean, not %s", mem.val.kind)
		}
	}
	return labels
}

// bindings reads Kaapana IOVolumes: {name, volume_source: {host_path}, scale_rule}.
func (r *reader) bindings(v *jvalue, path string) []Binding {
	var out []Binding
	for i, bv := range r.array(v, path) {
		p := indexField(path, i)
		m, ok := r.object(bv, p, []string{"name", "volume_source", "scale_rule"}, []string{"name", "volume_source"})
		if !ok {
			out = append(out, Binding{})
			continue
		}
		b := Binding{Name: r.text(m["name"], joinField(p, "name"))}
		if vs, ok := m["volume_source"]; ok {
			vp := joinField(p, "volume_source")
			vm, ok := r.object(vs, vp, []string{"host_path"}, []string{"host_path"})
			if ok {
				b.HostPath = r.text(vm["host_path"], joinField(vp, "host_path"))
			}
		}
		if sv, ok := m["scale_rule"]; ok {
			b.ScaleRule = r.scaleRule(sv, joinField(p, "scale_rule"))
		}
		out = append(out, b)
	}
	return out
}
