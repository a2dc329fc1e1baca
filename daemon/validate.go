package daemon

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/spec"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Limits on caller-given strings and numbers that are part of the API's
// contract; the node's own caps are its [limits] configuration (see
// nodeLimits).
const (
	maxNameBytes       = 256
	maxKeyBytes        = 128
	maxLabelKeyBytes   = 63
	maxLabelValueBytes = 256
	maxPriority        = 1000
)

// nodeLimits is the spec package's view of the [limits] section.
func nodeLimits(l config.Limits) spec.Limits {
	return spec.Limits{
		MaxEnvEntries:   l.MaxEnvEntries,
		MaxEnvChoices:   l.MaxEnvChoices,
		MaxCommandArgs:  l.MaxCommandArgs,
		MaxChannels:     l.MaxChannels,
		MaxPatternBytes: int(l.MaxRegexBytes.Bytes()),
		MaxRegexInsts:   l.MaxRegexInsts,
		MaxExecBytes:    l.MaxExecBytes.Bytes(),
		MaxLabels:       l.MaxLabels,
		MaxLabelBytes:   int(l.MaxLabelBytes.Bytes()),
		MinMemoryBytes:  l.MinMemory.Bytes(),
		MinCPUMillis:    l.MinCPU.Millis(),
		MaxCPUMillis:    l.MaxCPU.Millis(),
	}
}

// specBytes is the serialized size of a spec as the [limits] max_spec_bytes
// cap counts it: without its registry credentials, which are capped on
// their own and never stored.
func specBytes(s *pcnodev1.TaskSpec) int {
	n := proto.Size(s)
	if a := s.GetRegistryAuth(); a != nil {
		num := s.ProtoReflect().Descriptor().Fields().ByName("registry_auth").Number()
		n -= protowire.SizeTag(num) + protowire.SizeBytes(proto.Size(a))
	}
	return n
}

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

// checkText rejects strings longer than max bytes, and strings that
// spec.CheckName refuses: not UTF-8, control characters (tab and newline
// included), bidirectional controls and invisible format characters. They
// end up in logs and tables, where they would disguise what is shown.
func (p *problems) checkText(field, s string, max int) {
	if len(s) > max {
		p.add(field, "longer than %d bytes", max)
	}
	if why := spec.CheckName(s); why != "" {
		p.add(field, "%s", why)
	}
}

// validateSpecFields checks what can be checked of a spec without the image,
// the file system or the node: shapes, sizes and ranges, and the whole
// spec's size first. allowHostNetwork is the node's policy, lim its caps.
// What the spec shares with a task.json (its template, env, command,
// resources, labels) is checked again, deeper, by spec.Limits.Validate.
func validateSpecFields(ts *pcnodev1.TaskSpec, allowHostNetwork bool, lim config.Limits) problems {
	var p problems
	if ts == nil {
		p.add("spec", "required")
		return p
	}
	if n, most := specBytes(ts), lim.MaxSpecBytes.Bytes(); int64(n) > most {
		// Nothing else is looked at: walking an oversized spec is work the
		// caller chose.
		p.add("spec", "is %d bytes serialized; at most %d ([limits] max_spec_bytes)", n, most)
		return p
	}
	maxChannels, maxEnv, maxArgs, maxLabels := lim.MaxChannels, lim.MaxEnvEntries, lim.MaxCommandArgs, lim.MaxLabels
	p.checkText("spec.name", ts.GetName(), maxNameBytes)
	if ts.GetImage() == "" {
		p.add("spec.image", "required")
	} else {
		p.checkText("spec.image", ts.GetImage(), 512)
		if strings.ContainsRune(ts.GetImage(), ' ') {
			p.add("spec.image", "must not contain spaces")
		}
	}
	switch t := ts.GetTemplate().(type) {
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
	for field, chans := range map[string][]*pcnodev1.ChannelBinding{"spec.inputs": ts.GetInputs(), "spec.outputs": ts.GetOutputs()} {
		if len(chans) > maxChannels {
			p.add(field, "more than %d channels ([limits] max_channels)", maxChannels)
			continue
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
			// Before the host path policy sees it: a newline or an
			// invisible character in a path is refused for what it is.
			if why := hostPathChars(c.GetHostPath()); why != "" {
				p.add(f+".host_path", "%s", why)
			}
		}
	}
	if len(ts.GetEnv()) > maxEnv {
		p.add("spec.env", "more than %d variables ([limits] max_env_entries)", maxEnv)
		return p
	}
	for i, e := range ts.GetEnv() {
		f := fmt.Sprintf("spec.env[%d]", i)
		if !envNameRE.MatchString(e.GetName()) {
			p.add(f+".name", "%q is not a POSIX environment variable name", e.GetName())
		}
		if n := len(e.GetName()) + 1 + len(e.GetValue()); n+1 > spec.MaxArgStrlen {
			p.add(f+".value", "NAME=VALUE is %d bytes; the kernel accepts at most %d in one variable (MAX_ARG_STRLEN)", n, spec.MaxArgStrlen-1)
		}
		if strings.ContainsRune(e.GetValue(), 0) {
			p.add(f+".value", "contains a NUL byte")
		}
		if sec := e.GetSecret(); sec != "" {
			if why := spec.CheckSecretName(sec); why != "" {
				p.add(f+".secret", "%s", why)
			}
			if e.GetValue() != "" {
				p.add(f+".value", "must be empty when secret is given (the value is the secret's content)")
			}
		}
	}
	if len(ts.GetCommand()) > maxArgs {
		p.add("spec.command", "more than %d arguments ([limits] max_command_args)", maxArgs)
		return p
	}
	for i, a := range ts.GetCommand() {
		if len(a)+1 > spec.MaxArgStrlen || strings.ContainsRune(a, 0) {
			p.add(fmt.Sprintf("spec.command[%d]", i), "longer than %d bytes (MAX_ARG_STRLEN) or contains a NUL byte", spec.MaxArgStrlen-1)
		}
	}
	if r := ts.GetResources(); r != nil {
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
	if len(ts.GetLabels()) > maxLabels {
		p.add("spec.labels", "more than %d labels ([limits] max_labels)", maxLabels)
		return p
	}
	for k, v := range ts.GetLabels() {
		if len(k) > maxLabelKeyBytes || !labelKeyRE.MatchString(k) {
			p.add("spec.labels", "key %q must be 1-%d bytes of [A-Za-z0-9._/-], starting and ending alphanumeric", k, maxLabelKeyBytes)
		}
		p.checkText("spec.labels["+k+"]", v, maxLabelValueBytes)
	}
	if pr := ts.GetPriority(); pr < -maxPriority || pr > maxPriority {
		p.add("spec.priority", "%d is outside -%d..%d", pr, maxPriority, maxPriority)
	}
	for name, d := range durations(ts) {
		if d == nil {
			continue
		}
		if err := d.CheckValid(); err != nil {
			p.add(name, "%v", err)
		} else if d.AsDuration() < 0 {
			p.add(name, "must not be negative")
		}
	}
	switch ts.GetNetwork() {
	case pcnodev1.NetworkMode_NETWORK_MODE_UNSPECIFIED, pcnodev1.NetworkMode_NETWORK_MODE_NONE:
	case pcnodev1.NetworkMode_NETWORK_MODE_HOST:
		if !allowHostNetwork {
			p.add("spec.network", "host network is not allowed on this node (tasks.allow_host_network)")
		}
	default:
		p.add("spec.network", "unknown network mode %d", ts.GetNetwork())
	}
	if ts.GetPidsLimit() < 0 {
		p.add("spec.pids_limit", "must not be negative")
	}
	if u := ts.GetUser(); u != "" && !validUser(u) {
		p.add("spec.user", "must be \"uid\" or \"uid:gid\" (numeric, below 4294967295), got %q", u)
	}
	if a := ts.GetRegistryAuth(); a != nil {
		if len(a.GetUsername()) > 1024 || len(a.GetPassword()) > 16<<10 {
			p.add("spec.registry_auth", "credentials too long")
		}
	}
	return p
}

// hostPathChars says why a host path cannot be used, or "": a NUL byte,
// or any character spec.CheckName refuses in a name (newlines, tabs and
// other controls, bidirectional and invisible format characters), which a
// path never needs and which disguise it in logs and tables.
func hostPathChars(path string) string {
	if strings.ContainsRune(path, 0) {
		return "contains a NUL byte"
	}
	return spec.CheckName(path)
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
