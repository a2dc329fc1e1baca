package daemon

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/spec"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// testLimits are the node's default caps but for max_spec_bytes, raised
// to its ceiling so that the per-field caps can be reached.
var testLimits = func() config.Limits {
	l := config.DefaultConfig().Limits
	l.MaxSpecBytes = config.MustQuantity("4Mi")
	return l
}()

// validSpec is the smallest spec validateSpecFields accepts.
func validSpec() *pcnodev1.TaskSpec {
	return &pcnodev1.TaskSpec{
		Name:     "task",
		Image:    "registry.example.org/pc/total-segmentator:1.0",
		Template: &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "segment"},
	}
}

// fields returns the problems' field names, sorted.
func fields(p problems) []string {
	out := make([]string, 0, len(p))
	for _, x := range p {
		out = append(out, x.GetField())
	}
	slices.Sort(out)
	return out
}

func channels(n int) []*pcnodev1.ChannelBinding {
	out := make([]*pcnodev1.ChannelBinding, n)
	for i := range out {
		out[i] = &pcnodev1.ChannelBinding{Name: fmt.Sprintf("c%d", i), HostPath: fmt.Sprintf("/data/c%d", i)}
	}
	return out
}

func TestValidateSpecFields(t *testing.T) {
	for _, tc := range []struct {
		name      string
		edit      func(s *pcnodev1.TaskSpec)
		allowHost bool
		want      []string // field names, sorted; nil: valid
	}{
		{name: "minimal", edit: func(*pcnodev1.TaskSpec) {}},
		{name: "everything valid", edit: func(s *pcnodev1.TaskSpec) {
			s.Inputs = channels(testLimits.MaxChannels)
			s.Outputs = channels(2)
			s.Env = []*pcnodev1.EnvVar{{Name: "_A1", Value: "x\x01y"}, {Name: "b", Value: ""}}
			s.Command = []string{"python3", "-c", ""}
			s.Resources = &pcnodev1.ResourceRequirements{
				Requests:    &pcnodev1.ResourceList{MemoryBytes: 6 << 20, CpuMillis: 10, Gpus: 1},
				Limits:      &pcnodev1.ResourceList{},
				GpuSelector: &pcnodev1.GpuSelector{MinMemoryBytes: 0, Model: "A100"},
			}
			s.Labels = map[string]string{"a": "", "team/x.y_z-1": "v w", strings.Repeat("k", maxLabelKeyBytes): strings.Repeat("v", maxLabelValueBytes)}
			s.Priority = -maxPriority
			s.StartupTimeout = durationpb.New(0)
			s.ExecutionTimeout = durationpb.New(3600e9)
			s.StopGracePeriod = durationpb.New(1)
			s.Network = pcnodev1.NetworkMode_NETWORK_MODE_NONE
			s.PidsLimit = 0
			s.User = "1000:1000"
			// Credentials do not count towards max_spec_bytes.
			s.RegistryAuth = &pcnodev1.RegistryAuth{Username: strings.Repeat("u", 1024), Password: strings.Repeat("p", 16<<10)}
		}},

		{name: "name at limit", edit: func(s *pcnodev1.TaskSpec) { s.Name = strings.Repeat("n", maxNameBytes) }},
		{name: "name too long", edit: func(s *pcnodev1.TaskSpec) { s.Name = strings.Repeat("n", maxNameBytes+1) }, want: []string{"spec.name"}},
		{name: "name too long and control", edit: func(s *pcnodev1.TaskSpec) { s.Name = strings.Repeat("n", maxNameBytes) + "\n" }, want: []string{"spec.name", "spec.name"}},
		{name: "name newline", edit: func(s *pcnodev1.TaskSpec) { s.Name = "a\nb" }, want: []string{"spec.name"}},
		{name: "name escape", edit: func(s *pcnodev1.TaskSpec) { s.Name = "\x1b[31mred" }, want: []string{"spec.name"}},
		{name: "name DEL", edit: func(s *pcnodev1.TaskSpec) { s.Name = "a\x7f" }, want: []string{"spec.name"}},
		{name: "name NUL", edit: func(s *pcnodev1.TaskSpec) { s.Name = "a\x00" }, want: []string{"spec.name"}},
		{name: "name tab", edit: func(s *pcnodev1.TaskSpec) { s.Name = "a\tb" }, want: []string{"spec.name"}},
		{name: "name unicode allowed", edit: func(s *pcnodev1.TaskSpec) { s.Name = "Größe ✓" }},
		{name: "name not UTF-8", edit: func(s *pcnodev1.TaskSpec) { s.Name = "a\xffb" }, want: []string{"spec.name"}},
		{name: "name empty allowed", edit: func(s *pcnodev1.TaskSpec) { s.Name = "" }},

		{name: "image missing", edit: func(s *pcnodev1.TaskSpec) { s.Image = "" }, want: []string{"spec.image"}},
		{name: "image space", edit: func(s *pcnodev1.TaskSpec) { s.Image = "a b" }, want: []string{"spec.image"}},
		{name: "image tab", edit: func(s *pcnodev1.TaskSpec) { s.Image = "a\tb" }, want: []string{"spec.image"}},
		{name: "image newline", edit: func(s *pcnodev1.TaskSpec) { s.Image = "a\nb" }, want: []string{"spec.image"}},
		{name: "image at limit", edit: func(s *pcnodev1.TaskSpec) { s.Image = strings.Repeat("i", 512) }},
		{name: "image too long", edit: func(s *pcnodev1.TaskSpec) { s.Image = strings.Repeat("i", 513) }, want: []string{"spec.image"}},

		{name: "template missing", edit: func(s *pcnodev1.TaskSpec) { s.Template = nil }, want: []string{"spec.template"}},
		{name: "template identifier empty", edit: func(s *pcnodev1.TaskSpec) {
			s.Template = &pcnodev1.TaskSpec_TemplateIdentifier{}
		}, want: []string{"spec.template_identifier"}},
		{name: "template identifier control", edit: func(s *pcnodev1.TaskSpec) {
			s.Template = &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "a\rb"}
		}, want: []string{"spec.template_identifier"}},
		{name: "template identifier too long", edit: func(s *pcnodev1.TaskSpec) {
			s.Template = &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: strings.Repeat("t", maxNameBytes+1)}
		}, want: []string{"spec.template_identifier"}},
		{name: "inline template nil", edit: func(s *pcnodev1.TaskSpec) {
			s.Template = &pcnodev1.TaskSpec_InlineTemplate{}
		}, want: []string{"spec.inline_template"}},
		{name: "inline template", edit: func(s *pcnodev1.TaskSpec) {
			s.Template = &pcnodev1.TaskSpec_InlineTemplate{InlineTemplate: &pcnodev1.TaskTemplate{Identifier: "x"}}
		}},

		{name: "input name missing", edit: func(s *pcnodev1.TaskSpec) {
			s.Inputs = []*pcnodev1.ChannelBinding{{HostPath: "/data/in"}}
		}, want: []string{"spec.inputs[0].name"}},
		{name: "input name control", edit: func(s *pcnodev1.TaskSpec) {
			s.Inputs = []*pcnodev1.ChannelBinding{{Name: "a\x00", HostPath: "/data/in"}}
		}, want: []string{"spec.inputs[0].name"}},
		{name: "input host path missing", edit: func(s *pcnodev1.TaskSpec) {
			s.Inputs = []*pcnodev1.ChannelBinding{{Name: "in"}, {Name: "in2"}}
		}, want: []string{"spec.inputs[0].host_path", "spec.inputs[1].host_path"}},
		{name: "input nil binding", edit: func(s *pcnodev1.TaskSpec) {
			s.Inputs = []*pcnodev1.ChannelBinding{nil}
		}, want: []string{"spec.inputs[0].host_path", "spec.inputs[0].name"}},
		{name: "output host path NUL", edit: func(s *pcnodev1.TaskSpec) {
			s.Outputs = []*pcnodev1.ChannelBinding{{Name: "ok", HostPath: "/data/ok"}, {Name: "out", HostPath: "/data/\x00out"}}
		}, want: []string{"spec.outputs[1].host_path"}},
		{name: "too many inputs", edit: func(s *pcnodev1.TaskSpec) { s.Inputs = channels(testLimits.MaxChannels + 1) }, want: []string{"spec.inputs"}},
		{name: "too many outputs", edit: func(s *pcnodev1.TaskSpec) { s.Outputs = channels(testLimits.MaxChannels + 1) }, want: []string{"spec.outputs"}},

		{name: "env name digit first", edit: func(s *pcnodev1.TaskSpec) {
			s.Env = []*pcnodev1.EnvVar{{Name: "OK"}, {Name: "1A"}}
		}, want: []string{"spec.env[1].name"}},
		{name: "env name empty", edit: func(s *pcnodev1.TaskSpec) { s.Env = []*pcnodev1.EnvVar{{Value: "x"}} }, want: []string{"spec.env[0].name"}},
		{name: "env name dash", edit: func(s *pcnodev1.TaskSpec) { s.Env = []*pcnodev1.EnvVar{{Name: "A-B"}} }, want: []string{"spec.env[0].name"}},
		{name: "env name equals", edit: func(s *pcnodev1.TaskSpec) { s.Env = []*pcnodev1.EnvVar{{Name: "A=B"}} }, want: []string{"spec.env[0].name"}},
		{name: "env name trailing newline", edit: func(s *pcnodev1.TaskSpec) { s.Env = []*pcnodev1.EnvVar{{Name: "A\n"}} }, want: []string{"spec.env[0].name"}},
		{name: "env value NUL", edit: func(s *pcnodev1.TaskSpec) { s.Env = []*pcnodev1.EnvVar{{Name: "A", Value: "x\x00y"}} }, want: []string{"spec.env[0].value"}},
		{name: "env value at limit", edit: func(s *pcnodev1.TaskSpec) {
			s.Env = []*pcnodev1.EnvVar{{Name: "A", Value: strings.Repeat("v", spec.MaxArgStrlen-3)}}
		}},
		{name: "env value too long", edit: func(s *pcnodev1.TaskSpec) {
			s.Env = []*pcnodev1.EnvVar{{Name: "A", Value: strings.Repeat("v", spec.MaxArgStrlen-2)}}
		}, want: []string{"spec.env[0].value"}},
		{name: "too many env", edit: func(s *pcnodev1.TaskSpec) {
			for i := range testLimits.MaxEnvEntries + 1 {
				s.Env = append(s.Env, &pcnodev1.EnvVar{Name: fmt.Sprintf("V%d", i)})
			}
		}, want: []string{"spec.env"}},

		{name: "too many args", edit: func(s *pcnodev1.TaskSpec) { s.Command = make([]string, testLimits.MaxCommandArgs+1) }, want: []string{"spec.command"}},
		{name: "args at limit", edit: func(s *pcnodev1.TaskSpec) {
			s.Command = make([]string, testLimits.MaxCommandArgs)
			s.Command[0] = strings.Repeat("a", spec.MaxArgStrlen-1)
		}},
		{name: "arg NUL", edit: func(s *pcnodev1.TaskSpec) { s.Command = []string{"sh", "-c\x00"} }, want: []string{"spec.command[1]"}},
		{name: "arg too long", edit: func(s *pcnodev1.TaskSpec) { s.Command = []string{strings.Repeat("a", spec.MaxArgStrlen)} }, want: []string{"spec.command[0]"}},

		{name: "negative requests", edit: func(s *pcnodev1.TaskSpec) {
			s.Resources = &pcnodev1.ResourceRequirements{Requests: &pcnodev1.ResourceList{MemoryBytes: -1, CpuMillis: -1, Gpus: -1}}
		}, want: []string{"spec.resources.requests.cpu_millis", "spec.resources.requests.gpus", "spec.resources.requests.memory_bytes"}},
		{name: "negative limits", edit: func(s *pcnodev1.TaskSpec) {
			s.Resources = &pcnodev1.ResourceRequirements{Limits: &pcnodev1.ResourceList{MemoryBytes: -5, CpuMillis: 0, Gpus: -2}}
		}, want: []string{"spec.resources.limits.gpus", "spec.resources.limits.memory_bytes"}},
		{name: "negative gpu min memory", edit: func(s *pcnodev1.TaskSpec) {
			s.Resources = &pcnodev1.ResourceRequirements{GpuSelector: &pcnodev1.GpuSelector{MinMemoryBytes: -1}}
		}, want: []string{"spec.resources.gpu_selector.min_memory_bytes"}},
		{name: "gpu model control", edit: func(s *pcnodev1.TaskSpec) {
			s.Resources = &pcnodev1.ResourceRequirements{GpuSelector: &pcnodev1.GpuSelector{Model: "A100\n"}}
		}, want: []string{"spec.resources.gpu_selector.model"}},
		{name: "gpu model too long", edit: func(s *pcnodev1.TaskSpec) {
			s.Resources = &pcnodev1.ResourceRequirements{GpuSelector: &pcnodev1.GpuSelector{Model: strings.Repeat("m", maxNameBytes+1)}}
		}, want: []string{"spec.resources.gpu_selector.model"}},

		{name: "too many labels", edit: func(s *pcnodev1.TaskSpec) {
			s.Labels = map[string]string{}
			for i := range testLimits.MaxLabels + 1 {
				s.Labels[fmt.Sprintf("l%d", i)] = "v"
			}
		}, want: []string{"spec.labels"}},
		{name: "label key empty", edit: func(s *pcnodev1.TaskSpec) { s.Labels = map[string]string{"": "v"} }, want: []string{"spec.labels"}},
		{name: "label key leading dash", edit: func(s *pcnodev1.TaskSpec) { s.Labels = map[string]string{"-a": "v"} }, want: []string{"spec.labels"}},
		{name: "label key trailing dot", edit: func(s *pcnodev1.TaskSpec) { s.Labels = map[string]string{"a.": "v"} }, want: []string{"spec.labels"}},
		{name: "label key space", edit: func(s *pcnodev1.TaskSpec) { s.Labels = map[string]string{"a b": "v"} }, want: []string{"spec.labels"}},
		{name: "label key colon", edit: func(s *pcnodev1.TaskSpec) { s.Labels = map[string]string{"a:b": "v"} }, want: []string{"spec.labels"}},
		{name: "label key too long", edit: func(s *pcnodev1.TaskSpec) {
			s.Labels = map[string]string{strings.Repeat("k", maxLabelKeyBytes+1): "v"}
		}, want: []string{"spec.labels"}},
		{name: "two bad label keys", edit: func(s *pcnodev1.TaskSpec) { s.Labels = map[string]string{"-a": "", "b-": ""} }, want: []string{"spec.labels", "spec.labels"}},
		{name: "label value control", edit: func(s *pcnodev1.TaskSpec) { s.Labels = map[string]string{"team": "a\nb"} }, want: []string{"spec.labels[team]"}},
		{name: "label value too long", edit: func(s *pcnodev1.TaskSpec) {
			s.Labels = map[string]string{"team": strings.Repeat("v", maxLabelValueBytes+1)}
		}, want: []string{"spec.labels[team]"}},

		{name: "priority max", edit: func(s *pcnodev1.TaskSpec) { s.Priority = maxPriority }},
		{name: "priority too high", edit: func(s *pcnodev1.TaskSpec) { s.Priority = maxPriority + 1 }, want: []string{"spec.priority"}},
		{name: "priority too low", edit: func(s *pcnodev1.TaskSpec) { s.Priority = -maxPriority - 1 }, want: []string{"spec.priority"}},

		{name: "startup timeout negative", edit: func(s *pcnodev1.TaskSpec) { s.StartupTimeout = durationpb.New(-1) }, want: []string{"spec.startup_timeout"}},
		{name: "execution timeout negative", edit: func(s *pcnodev1.TaskSpec) { s.ExecutionTimeout = &durationpb.Duration{Seconds: -10} }, want: []string{"spec.execution_timeout"}},
		{name: "grace negative", edit: func(s *pcnodev1.TaskSpec) { s.StopGracePeriod = durationpb.New(-1e9) }, want: []string{"spec.stop_grace_period"}},
		{name: "durations invalid", edit: func(s *pcnodev1.TaskSpec) {
			s.StartupTimeout = &durationpb.Duration{Seconds: 1, Nanos: -1}            // mixed signs
			s.ExecutionTimeout = &durationpb.Duration{Nanos: 1e9}                     // nanos out of range
			s.StopGracePeriod = &durationpb.Duration{Seconds: 315576000001, Nanos: 0} // over 10000 years
		}, want: []string{"spec.execution_timeout", "spec.startup_timeout", "spec.stop_grace_period"}},

		{name: "network host refused", edit: func(s *pcnodev1.TaskSpec) { s.Network = pcnodev1.NetworkMode_NETWORK_MODE_HOST }, want: []string{"spec.network"}},
		{name: "network host allowed", allowHost: true, edit: func(s *pcnodev1.TaskSpec) { s.Network = pcnodev1.NetworkMode_NETWORK_MODE_HOST }},
		{name: "network none", edit: func(s *pcnodev1.TaskSpec) { s.Network = pcnodev1.NetworkMode_NETWORK_MODE_NONE }},
		{name: "network unknown", allowHost: true, edit: func(s *pcnodev1.TaskSpec) { s.Network = pcnodev1.NetworkMode(7) }, want: []string{"spec.network"}},
		{name: "network negative", edit: func(s *pcnodev1.TaskSpec) { s.Network = pcnodev1.NetworkMode(-1) }, want: []string{"spec.network"}},

		{name: "pids negative", edit: func(s *pcnodev1.TaskSpec) { s.PidsLimit = -1 }, want: []string{"spec.pids_limit"}},
		{name: "pids positive", edit: func(s *pcnodev1.TaskSpec) { s.PidsLimit = 10 }},

		{name: "user uid", edit: func(s *pcnodev1.TaskSpec) { s.User = "0" }},
		{name: "user uid gid", edit: func(s *pcnodev1.TaskSpec) { s.User = "1000:100" }},
		{name: "user name", edit: func(s *pcnodev1.TaskSpec) { s.User = "root" }, want: []string{"spec.user"}},
		{name: "user name group", edit: func(s *pcnodev1.TaskSpec) { s.User = "1000:users" }, want: []string{"spec.user"}},
		{name: "user empty gid", edit: func(s *pcnodev1.TaskSpec) { s.User = "1000:" }, want: []string{"spec.user"}},
		{name: "user empty uid", edit: func(s *pcnodev1.TaskSpec) { s.User = ":1000" }, want: []string{"spec.user"}},
		{name: "user negative", edit: func(s *pcnodev1.TaskSpec) { s.User = "-1" }, want: []string{"spec.user"}},
		{name: "user 11 digits", edit: func(s *pcnodev1.TaskSpec) { s.User = "12345678901" }, want: []string{"spec.user"}},
		{name: "user three parts", edit: func(s *pcnodev1.TaskSpec) { s.User = "1:2:3" }, want: []string{"spec.user"}},
		{name: "user trailing newline", edit: func(s *pcnodev1.TaskSpec) { s.User = "1000\n" }, want: []string{"spec.user"}},

		{name: "registry username too long", edit: func(s *pcnodev1.TaskSpec) {
			s.RegistryAuth = &pcnodev1.RegistryAuth{Username: strings.Repeat("u", 1025)}
		}, want: []string{"spec.registry_auth"}},
		{name: "registry password too long", edit: func(s *pcnodev1.TaskSpec) {
			s.RegistryAuth = &pcnodev1.RegistryAuth{Password: strings.Repeat("p", 16<<10+1)}
		}, want: []string{"spec.registry_auth"}},

		{name: "several at once", edit: func(s *pcnodev1.TaskSpec) {
			s.Image = ""
			s.Template = nil
			s.Priority = 5000
			s.PidsLimit = -3
		}, want: []string{"spec.image", "spec.pids_limit", "spec.priority", "spec.template"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.edit(s)
			p := validateSpecFields(s, tc.allowHost, testLimits)
			if diff := cmp.Diff(tc.want, fields(p), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("validateSpecFields(%q) fields (-want +got):\n%s\nproblems: %v", tc.name, diff, p)
			}
			for _, x := range p {
				if x.GetDescription() == "" {
					t.Errorf("validateSpecFields(%q): problem %q has no description", tc.name, x.GetField())
				}
			}
		})
	}
}

// The whole spec is capped before any field is looked at, credentials not
// counted; at the cap it is accepted.
func TestValidateSpecFieldsSize(t *testing.T) {
	lim := config.DefaultConfig().Limits
	most := int(lim.MaxSpecBytes.Bytes())
	sized := func(n int) *pcnodev1.TaskSpec {
		s := validSpec()
		s.Env = []*pcnodev1.EnvVar{{Name: "PAD", Value: ""}}
		s.Env[0].Value = strings.Repeat("v", n-specBytes(s)) // the length prefix grows by a byte or two on the way
		for specBytes(s) > n {
			s.Env[0].Value = s.Env[0].Value[1:]
		}
		for specBytes(s) < n {
			s.Env[0].Value += "v"
		}
		return s
	}
	at := sized(most)
	if got := specBytes(at); got != most {
		t.Fatalf("specBytes(sized) = %d, want %d", got, most)
	}
	if p := validateSpecFields(at, false, lim); len(p) != 0 {
		t.Errorf("validateSpecFields(%d bytes, the cap) = %v, want none", most, p)
	}
	at.RegistryAuth = &pcnodev1.RegistryAuth{Username: "u", Password: strings.Repeat("p", 16<<10)}
	if p := validateSpecFields(at, false, lim); len(p) != 0 {
		t.Errorf("validateSpecFields(the cap and 16 KiB of credentials) = %v, want none", p)
	}
	over := sized(most + 1)
	over.Name = "t\nsk" // as long as "task", and not reported: the size is checked first and alone
	p := validateSpecFields(over, false, lim)
	if got, want := fields(p), []string{"spec"}; !cmp.Equal(got, want) || !strings.Contains(p[0].GetDescription(), "max_spec_bytes") {
		t.Errorf("validateSpecFields(%d bytes) = %v, want one problem on spec naming max_spec_bytes", most+1, p)
	}
}

func TestValidateSpecFieldsNil(t *testing.T) {
	p := validateSpecFields(nil, true, testLimits)
	if got, want := fields(p), []string{"spec"}; !cmp.Equal(got, want) {
		t.Errorf("validateSpecFields(nil) fields = %q, want %q", got, want)
	}
}

// The descriptions quote what was wrong, so a caller can fix it.
func TestValidateSpecFieldsDescriptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(s *pcnodev1.TaskSpec)
		want string
	}{
		{"control", func(s *pcnodev1.TaskSpec) { s.Name = "a\x1b" }, "contains control character U+001B"},
		{"env name", func(s *pcnodev1.TaskSpec) { s.Env = []*pcnodev1.EnvVar{{Name: "1A"}} }, `"1A" is not a POSIX environment variable name`},
		{"label key", func(s *pcnodev1.TaskSpec) { s.Labels = map[string]string{"-a": ""} }, `key "-a" must be 1-63 bytes`},
		{"priority", func(s *pcnodev1.TaskSpec) { s.Priority = 1001 }, "1001 is outside -1000..1000"},
		{"user", func(s *pcnodev1.TaskSpec) { s.User = "root" }, `got "root"`},
		{"host network", func(s *pcnodev1.TaskSpec) { s.Network = pcnodev1.NetworkMode_NETWORK_MODE_HOST }, "tasks.allow_host_network"},
		{"network", func(s *pcnodev1.TaskSpec) { s.Network = 9 }, "unknown network mode 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := validSpec()
			tc.edit(s)
			p := validateSpecFields(s, false, testLimits)
			if len(p) != 1 || !strings.Contains(p[0].GetDescription(), tc.want) {
				t.Errorf("validateSpecFields(%q) = %v, want one problem containing %q", tc.name, p, tc.want)
			}
		})
	}
}

func TestValidateIdempotencyKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want []string
	}{
		{key: ""},
		{key: "a"},
		{key: "airflow/dag-1/run:2024-01-01T00:00:00+00:00@task.1=x_y"},
		{key: strings.Repeat("k", maxKeyBytes)},
		{key: strings.Repeat("k", maxKeyBytes+1), want: []string{"idempotency_key"}},
		{key: "a b", want: []string{"idempotency_key"}},
		{key: "a\nb", want: []string{"idempotency_key"}},
		{key: "a\x00", want: []string{"idempotency_key"}},
		{key: "ä", want: []string{"idempotency_key"}},
		{key: "a#b", want: []string{"idempotency_key"}},
		{key: "a?b", want: []string{"idempotency_key"}},
		{key: `a\b`, want: []string{"idempotency_key"}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			var p problems
			validateIdempotencyKey(&p, "idempotency_key", tc.key)
			if got := fields(p); !cmp.Equal(got, tc.want, cmpopts.EquateEmpty()) {
				t.Errorf("validateIdempotencyKey(%q) fields = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
	// The field is the caller's, and earlier problems are kept.
	p := problems{{Field: "x", Description: "y"}}
	validateIdempotencyKey(&p, "requests[3].idempotency_key", "bad key")
	if got, want := fields(p), []string{"requests[3].idempotency_key", "x"}; !cmp.Equal(got, want) {
		t.Errorf("validateIdempotencyKey appended fields = %q, want %q", got, want)
	}
}

func TestCheckText(t *testing.T) {
	for _, tc := range []struct {
		s    string
		max  int
		want int // problems
	}{
		{"", 0, 0},
		{"abc", 3, 0},
		{"abcd", 3, 1},
		{"\t", 1, 1},
		{"\x1f", 1, 1},
		{" ", 1, 0},
		{"\x7f", 1, 1},
		{"\xc3", 10, 1},
		{"\xc3\x00", 1, 2},   // too long, and not UTF-8 (stops there)
		{"a\x01\x02", 10, 1}, // one control problem only
	} {
		t.Run(fmt.Sprintf("%q", tc.s), func(t *testing.T) {
			var p problems
			p.checkText("f", tc.s, tc.max)
			if len(p) != tc.want {
				t.Errorf("checkText(%q, %d) = %v, want %d problems", tc.s, tc.max, p, tc.want)
			}
		})
	}
}

// checkText's doc promises to refuse control characters other than tab;
// Unicode's C1 controls (U+0080-U+009F, category Cc) are control characters
// too, and U+009B (CSI) starts a terminal escape sequence like ESC [.
func TestCheckTextC1Controls(t *testing.T) {
	for _, s := range []string{"a\u009b31mred", "a\u0085b", "\u0080"} {
		var p problems
		p.checkText("f", s, 100)
		if len(p) != 1 {
			t.Errorf("checkText(%q) = %v, want one control-character problem", s, p)
		}
	}
}
