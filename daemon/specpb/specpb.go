package specpb

import (
	"fmt"

	"github.com/pcnode/pcnode/daemon/spec"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

var (
	envTypes = map[spec.EnvType]pcnodev1.EnvVarType{
		spec.EnvTypeUnspecified: pcnodev1.EnvVarType_ENV_VAR_TYPE_UNSPECIFIED,
		spec.EnvTypeString:      pcnodev1.EnvVarType_ENV_VAR_TYPE_STRING,
		spec.EnvTypeInteger:     pcnodev1.EnvVarType_ENV_VAR_TYPE_INTEGER,
		spec.EnvTypeNumber:      pcnodev1.EnvVarType_ENV_VAR_TYPE_NUMBER,
		spec.EnvTypeBoolean:     pcnodev1.EnvVarType_ENV_VAR_TYPE_BOOLEAN,
	}
	modes = map[spec.ScaleRuleMode]pcnodev1.ScaleRuleMode{
		spec.ModeSum:         pcnodev1.ScaleRuleMode_SCALE_RULE_MODE_SUM,
		spec.ModeMaxFileSize: pcnodev1.ScaleRuleMode_SCALE_RULE_MODE_MAX_FILE_SIZE,
		spec.ModeMaxItemSum:  pcnodev1.ScaleRuleMode_SCALE_RULE_MODE_MAX_ITEM_SUM,
	}
	types = map[spec.ScaleRuleType]pcnodev1.ScaleRuleType{
		spec.TypeLimit:   pcnodev1.ScaleRuleType_SCALE_RULE_TYPE_LIMIT,
		spec.TypeRequest: pcnodev1.ScaleRuleType_SCALE_RULE_TYPE_REQUEST,
	}
)

// reverse finds the spec value of an API enum; values the API does not
// define become a spelling spec's validation refuses, naming the number.
func reverse[K ~string, V comparable](m map[K]V, v V, zero V) K {
	if v == zero {
		return ""
	}
	for k, mv := range m {
		if mv == v {
			return k
		}
	}
	return K(fmt.Sprintf("unknown(%v)", v))
}

// TaskSpec converts a spec.Task (e.g. a parsed task.json) into an API spec.
func TaskSpec(t *spec.Task) *pcnodev1.TaskSpec {
	out := &pcnodev1.TaskSpec{
		Name:      t.Name,
		Image:     t.Image,
		Inputs:    bindingsToProto(t.Inputs),
		Outputs:   bindingsToProto(t.Outputs),
		Env:       envToProto(t.Env),
		Command:   append([]string(nil), t.Command...),
		Resources: resourcesToProto(t.Resources),
		Labels:    t.Labels,
	}
	if t.InlineTemplate != nil {
		out.Template = &pcnodev1.TaskSpec_InlineTemplate{InlineTemplate: Template(t.InlineTemplate)}
	} else {
		out.Template = &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: t.TemplateIdentifier}
	}
	return out
}

// Task converts an API spec into a spec.Task for validation and resolution.
func Task(s *pcnodev1.TaskSpec) *spec.Task {
	t := &spec.Task{
		Name:               s.GetName(),
		Image:              s.GetImage(),
		APIVersion:         1,
		TemplateIdentifier: s.GetTemplateIdentifier(),
		Inputs:             bindingsFromProto(s.GetInputs()),
		Outputs:            bindingsFromProto(s.GetOutputs()),
		Command:            append([]string(nil), s.GetCommand()...),
		Resources:          resourcesFromProto(s.GetResources()),
		Labels:             s.GetLabels(),
	}
	if it := s.GetInlineTemplate(); it != nil {
		t.InlineTemplate = TemplateFromProto(it)
	}
	for _, e := range s.GetEnv() {
		t.Env = append(t.Env, spec.EnvVar{Name: e.GetName(), Value: e.GetValue(), Secret: e.GetSecret()})
	}
	return t
}

// ProcessingContainer converts a parsed processing-container.json.
func ProcessingContainer(pc *spec.ProcessingContainer) *pcnodev1.ProcessingContainer {
	out := &pcnodev1.ProcessingContainer{Name: pc.Name, Description: pc.Description, ApiVersion: int32(pc.APIVersion)}
	for i := range pc.Templates {
		out.Templates = append(out.Templates, Template(&pc.Templates[i]))
	}
	return out
}

// Template converts a task template to the API.
func Template(t *spec.TaskTemplate) *pcnodev1.TaskTemplate {
	out := &pcnodev1.TaskTemplate{
		Identifier:  t.Identifier,
		Description: t.Description,
		Inputs:      channelsToProto(t.Inputs),
		Outputs:     channelsToProto(t.Outputs),
		Command:     append([]string(nil), t.Command...),
		Resources:   resourcesToProto(t.Resources),
	}
	for _, e := range t.Env {
		ev := &pcnodev1.EnvVarTemplate{
			Name: e.Name, Value: e.Value, Description: e.Description,
			Type: envTypes[e.Type.Canonical()], Choices: append([]string(nil), e.Choices...),
		}
		if e.Adjustable != nil {
			a := *e.Adjustable
			ev.Adjustable = &a
		}
		out.Env = append(out.Env, ev)
	}
	return out
}

// TemplateFromProto converts an API template (an inline template).
func TemplateFromProto(t *pcnodev1.TaskTemplate) *spec.TaskTemplate {
	out := &spec.TaskTemplate{
		Identifier:  t.GetIdentifier(),
		Description: t.GetDescription(),
		Inputs:      channelsFromProto(t.GetInputs()),
		Outputs:     channelsFromProto(t.GetOutputs()),
		Command:     append([]string(nil), t.GetCommand()...),
		Resources:   resourcesFromProto(t.GetResources()),
	}
	for _, e := range t.GetEnv() {
		ev := spec.EnvVarTemplate{
			Name: e.GetName(), Value: e.GetValue(), Description: e.GetDescription(),
			Type:    reverse(envTypes, e.GetType(), pcnodev1.EnvVarType_ENV_VAR_TYPE_UNSPECIFIED),
			Choices: append([]string(nil), e.GetChoices()...),
		}
		if e.Adjustable != nil {
			a := e.GetAdjustable()
			ev.Adjustable = &a
		}
		out.Env = append(out.Env, ev)
	}
	return out
}

// Instance converts a resolved instance.
func Instance(in *spec.Instance) *pcnodev1.TaskInstance {
	if in == nil {
		return nil
	}
	out := &pcnodev1.TaskInstance{
		Image:              in.Image,
		TemplateIdentifier: in.TemplateIdentifier,
		Env:                envToProto(in.Env),
		Command:            append([]string(nil), in.Command...),
		Inputs:             mountsToProto(in.Inputs),
		Outputs:            mountsToProto(in.Outputs),
		Resources:          resourcesToProto(in.Resources),
	}
	for _, r := range in.ScaleResults {
		rule := r.Rule
		out.ScaleResults = append(out.ScaleResults, &pcnodev1.ScaleResult{
			Channel: r.Channel, Rule: scaleRuleToProto(&rule),
			MeasuredBytes: r.MeasuredBytes, ComputedBytes: r.ComputedBytes, Applied: r.Applied,
		})
	}
	return out
}

// Problems converts spec problems.
func Problems(ps spec.Problems) []*pcnodev1.Problem {
	out := make([]*pcnodev1.Problem, 0, len(ps))
	for _, p := range ps {
		out = append(out, &pcnodev1.Problem{Field: p.Field, Description: p.Description})
	}
	return out
}

// Warnings renders spec warnings as the API's strings.
func Warnings(ws []spec.Warning) []string {
	out := make([]string, 0, len(ws))
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}

func bindingsToProto(bs []spec.Binding) []*pcnodev1.ChannelBinding {
	var out []*pcnodev1.ChannelBinding
	for _, b := range bs {
		out = append(out, &pcnodev1.ChannelBinding{Name: b.Name, HostPath: b.HostPath, ScaleRule: scaleRuleToProto(b.ScaleRule)})
	}
	return out
}

func bindingsFromProto(bs []*pcnodev1.ChannelBinding) []spec.Binding {
	var out []spec.Binding
	for _, b := range bs {
		out = append(out, spec.Binding{Name: b.GetName(), HostPath: b.GetHostPath(), ScaleRule: scaleRuleFromProto(b.GetScaleRule())})
	}
	return out
}

func channelsToProto(cs []spec.Channel) []*pcnodev1.ChannelTemplate {
	var out []*pcnodev1.ChannelTemplate
	for _, c := range cs {
		out = append(out, &pcnodev1.ChannelTemplate{Name: c.Name, MountedPath: c.MountedPath, Description: c.Description, ScaleRule: scaleRuleToProto(c.ScaleRule)})
	}
	return out
}

func channelsFromProto(cs []*pcnodev1.ChannelTemplate) []spec.Channel {
	var out []spec.Channel
	for _, c := range cs {
		out = append(out, spec.Channel{Name: c.GetName(), MountedPath: c.GetMountedPath(), Description: c.GetDescription(), ScaleRule: scaleRuleFromProto(c.GetScaleRule())})
	}
	return out
}

func scaleRuleToProto(r *spec.ScaleRule) *pcnodev1.ScaleRule {
	if r == nil {
		return nil
	}
	return &pcnodev1.ScaleRule{
		ScaleFactor: r.ScaleFactor, Type: types[r.Type], Mode: modes[r.Mode],
		TargetDir: r.TargetDir, TargetRegex: r.TargetRegex, TargetGlob: r.TargetGlob,
	}
}

func scaleRuleFromProto(r *pcnodev1.ScaleRule) *spec.ScaleRule {
	if r == nil {
		return nil
	}
	return &spec.ScaleRule{
		ScaleFactor: r.GetScaleFactor(),
		Type:        reverse(types, r.GetType(), pcnodev1.ScaleRuleType_SCALE_RULE_TYPE_UNSPECIFIED),
		Mode:        reverse(modes, r.GetMode(), pcnodev1.ScaleRuleMode_SCALE_RULE_MODE_UNSPECIFIED),
		TargetDir:   r.GetTargetDir(), TargetRegex: r.GetTargetRegex(), TargetGlob: r.GetTargetGlob(),
	}
}

func envToProto(es []spec.EnvVar) []*pcnodev1.EnvVar {
	var out []*pcnodev1.EnvVar
	for _, e := range es {
		out = append(out, &pcnodev1.EnvVar{Name: e.Name, Value: e.Value, Secret: e.Secret})
	}
	return out
}

func mountsToProto(ms []spec.Mount) []*pcnodev1.Mount {
	var out []*pcnodev1.Mount
	for _, m := range ms {
		out = append(out, &pcnodev1.Mount{Name: m.Name, HostPath: m.HostPath, MountedPath: m.MountedPath, ReadOnly: m.ReadOnly})
	}
	return out
}

func listToProto(l spec.ResourceList) *pcnodev1.ResourceList {
	return &pcnodev1.ResourceList{MemoryBytes: l.MemoryBytes, CpuMillis: l.CPUMillis, Gpus: int32(l.GPUs)}
}

func resourcesToProto(r spec.Resources) *pcnodev1.ResourceRequirements {
	return &pcnodev1.ResourceRequirements{Requests: listToProto(r.Requests), Limits: listToProto(r.Limits)}
}

func resourcesFromProto(r *pcnodev1.ResourceRequirements) spec.Resources {
	l := func(p *pcnodev1.ResourceList) spec.ResourceList {
		return spec.ResourceList{MemoryBytes: p.GetMemoryBytes(), CPUMillis: p.GetCpuMillis(), GPUs: int64(p.GetGpus())}
	}
	return spec.Resources{Requests: l(r.GetRequests()), Limits: l(r.GetLimits())}
}
