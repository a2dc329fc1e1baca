package daemon

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Limits on caller-given strings and numbers.
const (
	maxNameBytes       = 256
	maxKeyBytes        = 128
	maxLabelKeyBytes   = 63
	maxLabelValueBytes = 256
	maxLabels          = 64
	maxEnv             = 1024
	maxEnvValueBytes   = 128 << 10
	maxArgs            = 4096
	maxArgBytes        = 128 << 10
	maxChannels        = 64
	maxPriority        = 1000
)

var (
	envNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	labelKeyRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$`)
	userRE     = regexp.MustCompile(`^[0-9]{1,10}(:[0-9]{1,10})?$`)
	idemKeyRE  = regexp.MustCompile(`^[A-Za-z0-9._:/@+=-]+$`)
)

// problems collects field violations.
type problems []*pcnodev1.Problem

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &pcnodev1.Problem{Field: field, Description: fmt.Sprintf(format, args...)})
}

// checkText rejects strings that are not UTF-8 or carry control characters
// (other than tab) — they end up in logs and tables.
func (p *problems) checkText(field, s string, max int) {
	if len(s) > max {
		p.add(field, "longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		p.add(field, "not valid UTF-8")
		return
	}
	for _, r := range s {
		if r != '\t' && unicode.IsControl(r) {
			p.add(field, "contains control character %U", r)
			return
		}
	}
}

// validateSpecFields checks what can be checked of a spec without the image,
// the file system or the node: shapes, sizes and ranges. allowHostNetwork is
// the node's policy.
func validateSpecFields(spec *pcnodev1.TaskSpec, allowHostNetwork bool) problems {
	var p problems
	if spec == nil {
		p.add("spec", "required")
		return p
	}
	p.checkText("spec.name", spec.GetName(), maxNameBytes)
	if spec.GetImage() == "" {
		p.add("spec.image", "required")
	} else {
		p.checkText("spec.image", spec.GetImage(), 512)
		if strings.ContainsAny(spec.GetImage(), " \t") {
			p.add("spec.image", "must not contain spaces")
		}
	}
	switch t := spec.GetTemplate().(type) {
	case nil:
		p.add("spec.template", "template_identifier or inline_template is required")
	case *pcnodev1.TaskSpec_TemplateIdentifier:
		if t.TemplateIdentifier == "" {
			p.add("spec.template_identifier", "must not be empty")
		}
		p.checkText("spec.template_identifier", t.TemplateIdentifier, maxNameBytes)
	case *pcnodev1.TaskSpec_InlineTemplate:
		if t.InlineTemplate == nil {
			p.add("spec.inline_template", "must not be empty")
		}
	}
	for field, chans := range map[string][]*pcnodev1.ChannelBinding{"spec.inputs": spec.GetInputs(), "spec.outputs": spec.GetOutputs()} {
		if len(chans) > maxChannels {
			p.add(field, "more than %d channels", maxChannels)
		}
		for i, c := range chans {
			f := fmt.Sprintf("%s[%d]", field, i)
			if c.GetName() == "" {
				p.add(f+".name", "required")
			}
			p.checkText(f+".name", c.GetName(), maxNameBytes)
			if c.GetHostPath() == "" {
				p.add(f+".host_path", "required")
			}
			if strings.ContainsRune(c.GetHostPath(), 0) {
				p.add(f+".host_path", "contains a NUL byte")
			}
		}
	}
	if len(spec.GetEnv()) > maxEnv {
		p.add("spec.env", "more than %d variables", maxEnv)
	}
	for i, e := range spec.GetEnv() {
		f := fmt.Sprintf("spec.env[%d]", i)
		if !envNameRE.MatchString(e.GetName()) {
			p.add(f+".name", "%q is not a POSIX environment variable name", e.GetName())
		}
		if len(e.GetValue()) > maxEnvValueBytes {
			p.add(f+".value", "longer than %d bytes", maxEnvValueBytes)
		}
		if strings.ContainsRune(e.GetValue(), 0) {
			p.add(f+".value", "contains a NUL byte")
		}
	}
	if len(spec.GetCommand()) > maxArgs {
		p.add("spec.command", "more than %d arguments", maxArgs)
	}
	for i, a := range spec.GetCommand() {
		if len(a) > maxArgBytes || strings.ContainsRune(a, 0) {
			p.add(fmt.Sprintf("spec.command[%d]", i), "longer than %d bytes or contains a NUL byte", maxArgBytes)
		}
	}
	if r := spec.GetResources(); r != nil {
		for name, l := range map[string]*pcnodev1.ResourceList{"requests": r.GetRequests(), "limits": r.GetLimits()} {
			f := "spec.resources." + name
			if l.GetMemoryBytes() < 0 {
				p.add(f+".memory_bytes", "must not be negative")
			}
			if l.GetCpuMillis() < 0 {
				p.add(f+".cpu_millis", "must not be negative")
			}
			if l.GetGpus() < 0 {
				p.add(f+".gpus", "must not be negative")
			}
		}
		if r.GetGpuSelector().GetMinMemoryBytes() < 0 {
			p.add("spec.resources.gpu_selector.min_memory_bytes", "must not be negative")
		}
		p.checkText("spec.resources.gpu_selector.model", r.GetGpuSelector().GetModel(), maxNameBytes)
	}
	if len(spec.GetLabels()) > maxLabels {
		p.add("spec.labels", "more than %d labels", maxLabels)
	}
	for k, v := range spec.GetLabels() {
		if len(k) > maxLabelKeyBytes || !labelKeyRE.MatchString(k) {
			p.add("spec.labels", "key %q must be 1-%d bytes of [A-Za-z0-9._/-], starting and ending alphanumeric", k, maxLabelKeyBytes)
		}
		p.checkText("spec.labels["+k+"]", v, maxLabelValueBytes)
	}
	if pr := spec.GetPriority(); pr < -maxPriority || pr > maxPriority {
		p.add("spec.priority", "%d is outside -%d..%d", pr, maxPriority, maxPriority)
	}
	for name, d := range durations(spec) {
		if d == nil {
			continue
		}
		if err := d.CheckValid(); err != nil {
			p.add(name, "%v", err)
		} else if d.AsDuration() < 0 {
			p.add(name, "must not be negative")
		}
	}
	switch spec.GetNetwork() {
	case pcnodev1.NetworkMode_NETWORK_MODE_UNSPECIFIED, pcnodev1.NetworkMode_NETWORK_MODE_NONE:
	case pcnodev1.NetworkMode_NETWORK_MODE_HOST:
		if !allowHostNetwork {
			p.add("spec.network", "host network is not allowed on this node (tasks.allow_host_network)")
		}
	default:
		p.add("spec.network", "unknown network mode %d", spec.GetNetwork())
	}
	if spec.GetPidsLimit() < 0 {
		p.add("spec.pids_limit", "must not be negative")
	}
	if u := spec.GetUser(); u != "" && !validUser(u) {
		p.add("spec.user", "must be \"uid\" or \"uid:gid\" (numeric, below 4294967295), got %q", u)
	}
	if a := spec.GetRegistryAuth(); a != nil {
		if len(a.GetUsername()) > 1024 || len(a.GetPassword()) > 16<<10 {
			p.add("spec.registry_auth", "credentials too long")
		}
	}
	return p
}

// validUser reports whether u is "uid" or "uid:gid" with ids in range.
func validUser(u string) bool {
	if !userRE.MatchString(u) {
		return false
	}
	for _, id := range strings.Split(u, ":") {
		if v, err := strconv.ParseUint(id, 10, 32); err != nil || v == 1<<32-1 {
			return false
		}
	}
	return true
}

// durations returns the spec's durations by field name.
func durations(spec *pcnodev1.TaskSpec) map[string]*durationpb.Duration {
	return map[string]*durationpb.Duration{
		"spec.startup_timeout":   spec.GetStartupTimeout(),
		"spec.execution_timeout": spec.GetExecutionTimeout(),
		"spec.stop_grace_period": spec.GetStopGracePeriod(),
	}
}

// validateIdempotencyKey checks a submit request's key.
func validateIdempotencyKey(p *problems, field, key string) {
	if key == "" {
		return
	}
	if len(key) > maxKeyBytes || !idemKeyRE.MatchString(key) {
		p.add(field, "must be 1-%d bytes of [A-Za-z0-9._:/@+=-]", maxKeyBytes)
	}
}
