package spec

// ProcessingContainer is the content of an image's /processing-container.json.
// It mirrors pcnode.v1.ProcessingContainer.
type ProcessingContainer struct {
	// Name is the human name, e.g. "Dummy-processing-container".
	Name string
	// Description says what the container's tooling does.
	Description string
	// APIVersion is the format version; 0 (absent) is read as 1, the only one.
	APIVersion int
	// Templates are the task templates; identifiers must be unique.
	Templates []TaskTemplate
}

// Template returns the template with the given identifier and its index, or
// nil and -1.
func (pc *ProcessingContainer) Template(identifier string) (*TaskTemplate, int) {
	for i := range pc.Templates {
		if pc.Templates[i].Identifier == identifier {
			return &pc.Templates[i], i
		}
	}
	return nil, -1
}

// TaskTemplate is one use case of a processing-container. It mirrors
// pcnode.v1.TaskTemplate.
type TaskTemplate struct {
	// Identifier is what a task names to select this template.
	Identifier string
	// Description says how the template uses the container's tools.
	Description string
	// Env declares the configurable environment variables with defaults.
	Env []EnvVarTemplate
	// Inputs are mounted read-only.
	Inputs []Channel
	// Outputs are mounted read-write.
	Outputs []Channel
	// Command is the argv to run; empty means the image's entrypoint and cmd.
	Command []string
	// Resources are the defaults for tasks made from this template.
	Resources Resources
}

// EnvType is the declared type of an environment variable's value.
type EnvType string

// The env types a template may declare. The empty type accepts any string.
const (
	EnvTypeUnspecified EnvType = ""
	EnvTypeString      EnvType = "string"
	EnvTypeInteger     EnvType = "integer"
	EnvTypeNumber      EnvType = "number"
	EnvTypeBoolean     EnvType = "boolean"
)

// envTypeAliases are the Python spellings Kaapana's published
// processing-container.json files use ("type": "int"), each the same type as
// its JSON Schema name.
var envTypeAliases = map[EnvType]EnvType{
	"str":   EnvTypeString,
	"int":   EnvTypeInteger,
	"float": EnvTypeNumber,
	"bool":  EnvTypeBoolean,
}

// Canonical returns the type's JSON Schema name: Kaapana's Python spellings
// "str", "int", "float" and "bool" become "string", "integer", "number" and
// "boolean"; every other value, known or not, is returned unchanged. The
// parsers store canonical names, so only a type set directly in Go can be an
// alias; validation treats both alike.
func (t EnvType) Canonical() EnvType {
	if c, ok := envTypeAliases[t]; ok {
		return c
	}
	return t
}

// EnvVarTemplate declares one environment variable of a template. It mirrors
// pcnode.v1.EnvVarTemplate.
type EnvVarTemplate struct {
	// Name is a POSIX variable name, [A-Za-z_][A-Za-z0-9_]*.
	Name string
	// Value is the default value.
	Value string
	// Description says what the variable changes.
	Description string
	// Type is the declared type; values and overrides must parse as it.
	Type EnvType
	// Choices are the allowed values; empty allows any value of Type.
	Choices []string
	// Adjustable says whether a task may override the value; nil means true.
	Adjustable *bool
}

// IsAdjustable reports whether a task may override the variable.
func (e *EnvVarTemplate) IsAdjustable() bool { return e.Adjustable == nil || *e.Adjustable }

// Channel is an input or output location inside the container. It mirrors
// pcnode.v1.ChannelTemplate.
type Channel struct {
	// Name is unique among the template's inputs and outputs.
	Name string
	// MountedPath is the absolute, clean path inside the container.
	MountedPath string
	// Description says what data the channel carries.
	Description string
	// ScaleRule optionally scales memory with the data bound to an input.
	ScaleRule *ScaleRule
}

// ScaleRuleMode says how a channel's data is measured.
type ScaleRuleMode string

// The scale-rule modes.
const (
	// ModeSum is the sum of the sizes of all matching files.
	ModeSum ScaleRuleMode = "sum"
	// ModeMaxFileSize is the size of the largest matching file.
	ModeMaxFileSize ScaleRuleMode = "max_file_size"
	// ModeMaxItemSum is the largest per-item sum, an item being a directory
	// directly under the channel root, measured at item/target_dir.
	ModeMaxItemSum ScaleRuleMode = "max_item_sum"
)

// ScaleRuleType says which memory value a scale rule raises.
type ScaleRuleType string

// The scale-rule types.
const (
	// TypeLimit raises the memory limit.
	TypeLimit ScaleRuleType = "limit"
	// TypeRequest raises the memory request (and the limit, if the request
	// passes it).
	TypeRequest ScaleRuleType = "request"
)

// ScaleRule raises a memory value to ScaleFactor × the measured size of the
// data bound to an input channel. It mirrors pcnode.v1.ScaleRule; the JSON
// names are Kaapana's.
type ScaleRule struct {
	// ScaleFactor multiplies the measured size in bytes; must be positive.
	ScaleFactor int64 `json:"scale_factor"`
	// Type is which value the rule raises.
	Type ScaleRuleType `json:"type"`
	// Mode is how the data is measured.
	Mode ScaleRuleMode `json:"mode"`
	// TargetDir is relative to the channel's host path; "" is the root.
	TargetDir string `json:"target_dir"`
	// TargetRegex must match the whole path of a file relative to TargetDir;
	// "" means ".*".
	TargetRegex string `json:"target_regex"`
	// TargetGlob must match a file's base name (or, with "/", its last path
	// segments); applied recursively. "" means "*".
	TargetGlob string `json:"target_glob"`
}

// withDefaults returns the rule with Kaapana's defaults filled in.
func (r ScaleRule) withDefaults() ScaleRule {
	if r.TargetRegex == "" {
		r.TargetRegex = ".*"
	}
	if r.TargetGlob == "" {
		r.TargetGlob = "*"
	}
	return r
}

// Resources are requests and limits in plain units. They mirror
// pcnode.v1.ResourceRequirements.
type Resources struct {
	// Requests are reserved for the task by the scheduler.
	Requests ResourceList `json:"requests"`
	// Limits are enforced on the container.
	Limits ResourceList `json:"limits"`
}

// ResourceList is a set of quantities; zero means not set. It mirrors
// pcnode.v1.ResourceList.
type ResourceList struct {
	// MemoryBytes is memory in bytes.
	MemoryBytes int64 `json:"memory_bytes"`
	// CPUMillis is CPU in thousandths of a core.
	CPUMillis int64 `json:"cpu_millis"`
	// GPUs is a whole number of GPUs ("nvidia.com/gpu").
	GPUs int64 `json:"gpus"`
}

// override returns l with every value that o sets (non-zero) replaced.
func (l ResourceList) override(o ResourceList) ResourceList {
	if o.MemoryBytes != 0 {
		l.MemoryBytes = o.MemoryBytes
	}
	if o.CPUMillis != 0 {
		l.CPUMillis = o.CPUMillis
	}
	if o.GPUs != 0 {
		l.GPUs = o.GPUs
	}
	return l
}

// Task is what a caller submits: an image, a template, host paths bound to
// the template's channels, and overrides. It mirrors the parts of
// pcnode.v1.TaskSpec that concern the instance; Kaapana's task.json is one
// spelling of it. A Task may be built directly (the daemon does so for a spec
// that came over the API); check it with [Task.Validate].
type Task struct {
	// Name is free text for people; at most [MaxNameLen] bytes.
	Name string
	// Image is the image reference.
	Image string
	// APIVersion is the format version; 0 (absent) is read as 1.
	APIVersion int
	// TemplateIdentifier names a template of the image's processing-container.
	// Exactly one of TemplateIdentifier and InlineTemplate is set.
	TemplateIdentifier string
	// InlineTemplate is a template given in full.
	InlineTemplate *TaskTemplate
	// Inputs bind host directories to the template's input channels.
	Inputs []Binding
	// Outputs bind host directories to the template's output channels.
	Outputs []Binding
	// Env overrides template variables by name and adds new ones.
	Env []EnvVar
	// Command replaces the template's command when not empty.
	Command []string
	// Resources override the template's requests and limits where set.
	Resources Resources
	// Labels are free key/value pairs (task.json: config.labels).
	Labels map[string]string
	// Placeholders lists the `{{ env.NAME }}` placeholders that ParseTask left
	// in place because it was given no lookup. Checks that need the real value
	// skip these fields; Resolve refuses a task that still has any.
	Placeholders []Placeholder
}

// Binding binds a template channel to a host directory. It mirrors
// pcnode.v1.ChannelBinding.
type Binding struct {
	// Name is the template channel's name.
	Name string
	// HostPath is the absolute host directory (task.json: volume_source.host_path).
	HostPath string
	// ScaleRule replaces the template channel's rule (inputs only).
	ScaleRule *ScaleRule
}

// EnvVar is one environment variable. It mirrors pcnode.v1.EnvVar.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Secret names a node secret whose content is the value, read by the
	// daemon when it creates the container; Value is then empty. A task.json
	// spells it {"name": "PASSWORD", "secret": "project-password"}.
	Secret string `json:"secret,omitempty"`
}

// Placeholder is an unsubstituted `{{ env.NAME }}` in a task field.
type Placeholder struct {
	// Field is the JSON path of the string holding the placeholder.
	Field string `json:"field"`
	// Variable is the environment variable it names.
	Variable string `json:"variable"`
}

// Instance is a template merged with a task: exactly what will run. It mirrors
// pcnode.v1.TaskInstance.
type Instance struct {
	// Image is the image reference as given.
	Image string `json:"image"`
	// TemplateIdentifier is the template used ("" for an inline template without one).
	TemplateIdentifier string `json:"template_identifier"`
	// Env is the final environment: template order, then added variables.
	Env []EnvVar `json:"env"`
	// Command is the final argv; empty means the image's entrypoint and cmd.
	Command []string `json:"command"`
	// Inputs are mounted read-only, in template order.
	Inputs []Mount `json:"inputs"`
	// Outputs are mounted read-write, in template order.
	Outputs []Mount `json:"outputs"`
	// Resources are the requests and limits after overrides and scale rules.
	Resources Resources `json:"resources"`
	// ScaleResults say what each scale rule measured and whether it changed a value.
	ScaleResults []ScaleResult `json:"scale_results"`
}

// Mount is a channel bound to a host path at its mounted path. It mirrors
// pcnode.v1.Mount.
type Mount struct {
	// Name is the channel name.
	Name string `json:"name"`
	// HostPath is the host path as given in the task.
	HostPath string `json:"host_path"`
	// MountedPath is the path inside the container.
	MountedPath string `json:"mounted_path"`
	// ReadOnly is true for inputs.
	ReadOnly bool `json:"read_only"`
}

// ScaleResult reports one scale rule. It mirrors pcnode.v1.ScaleResult.
type ScaleResult struct {
	// Channel is the input channel the rule belongs to.
	Channel string `json:"channel"`
	// Rule is the rule as applied, defaults filled in.
	Rule ScaleRule `json:"rule"`
	// MeasuredBytes is the measured size.
	MeasuredBytes int64 `json:"measured_bytes"`
	// ComputedBytes is ScaleFactor × MeasuredBytes; a product above
	// MaxMemoryBytes is a problem, never a result.
	ComputedBytes int64 `json:"computed_bytes"`
	// Applied says whether the rule raised a value: to ComputedBytes, or to
	// the node's memory floor when ComputedBytes is below it.
	Applied bool `json:"applied"`
}
