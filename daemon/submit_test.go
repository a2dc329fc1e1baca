package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/pcnode/pcnode/daemon/config"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestSpecHash(t *testing.T) {
	base := func() *pcnodev1.TaskSpec {
		s := validSpec()
		s.Labels = map[string]string{}
		for i := range 20 {
			s.Labels[fmt.Sprintf("k%d", i)] = fmt.Sprint(i)
		}
		s.Env = []*pcnodev1.EnvVar{{Name: "A", Value: "1"}}
		return s
	}
	h := specHash(base())
	if len(h) != 32 {
		t.Fatalf("specHash = %x, want 32 bytes", h)
	}

	same := map[string]func(s *pcnodev1.TaskSpec){
		"identical":           func(*pcnodev1.TaskSpec) {},
		"registry auth":       func(s *pcnodev1.TaskSpec) { s.RegistryAuth = &pcnodev1.RegistryAuth{Username: "u", Password: "p"} },
		"empty registry auth": func(s *pcnodev1.TaskSpec) { s.RegistryAuth = &pcnodev1.RegistryAuth{} },
	}
	for name, edit := range same {
		t.Run("same/"+name, func(t *testing.T) {
			s := base()
			edit(s)
			before := proto.Clone(s)
			if got := specHash(s); !bytes.Equal(got, h) {
				t.Errorf("specHash(%s) = %x, want %x", name, got, h)
			}
			if !proto.Equal(before, s) {
				t.Errorf("specHash(%s) changed its argument", name)
			}
		})
	}

	differs := map[string]func(s *pcnodev1.TaskSpec){
		"name":        func(s *pcnodev1.TaskSpec) { s.Name = "other" },
		"image":       func(s *pcnodev1.TaskSpec) { s.Image += "x" },
		"label value": func(s *pcnodev1.TaskSpec) { s.Labels["k3"] = "changed" },
		"label added": func(s *pcnodev1.TaskSpec) { s.Labels["new"] = "" },
		"env value":   func(s *pcnodev1.TaskSpec) { s.Env[0].Value = "2" },
		"env order":   func(s *pcnodev1.TaskSpec) { s.Env = append([]*pcnodev1.EnvVar{{Name: "B"}}, s.Env...) },
		"priority":    func(s *pcnodev1.TaskSpec) { s.Priority = 1 },
		"inline": func(s *pcnodev1.TaskSpec) {
			s.Template = &pcnodev1.TaskSpec_InlineTemplate{InlineTemplate: &pcnodev1.TaskTemplate{Identifier: "segment"}}
		},
		"gpu selector": func(s *pcnodev1.TaskSpec) {
			s.Resources = &pcnodev1.ResourceRequirements{GpuSelector: &pcnodev1.GpuSelector{Model: "A100"}}
		},
	}
	seen := map[string]string{fmt.Sprintf("%x", h): "base"}
	for name, edit := range differs {
		t.Run("differs/"+name, func(t *testing.T) {
			s := base()
			edit(s)
			got := fmt.Sprintf("%x", specHash(s))
			if prev, ok := seen[got]; ok {
				t.Errorf("specHash(%s) = %s, same as %s", name, got, prev)
			}
			seen[got] = name
		})
	}
}

func TestSchedRequest(t *testing.T) {
	list := func(cpu, mem int64, gpus int32) *pcnodev1.ResourceList {
		return &pcnodev1.ResourceList{CpuMillis: cpu, MemoryBytes: mem, Gpus: gpus}
	}
	const gi = 1 << 30
	cfg := config.DefaultConfig() // default_cpu 1, default_memory 1Gi
	small := config.DefaultConfig()
	small.Resources.DefaultCPU = config.MustQuantity("250m")
	small.Resources.DefaultMemory = config.MustQuantity("512Mi")
	for _, tc := range []struct {
		name string
		cfg  config.Config
		spec *pcnodev1.TaskSpec
		inst *pcnodev1.TaskInstance
		want sched.Request
	}{
		{name: "defaults", cfg: cfg, spec: &pcnodev1.TaskSpec{},
			want: sched.Request{Requests: sched.Resources{MilliCPU: 1000, MemoryBytes: gi}}},
		{name: "configured defaults", cfg: small, spec: &pcnodev1.TaskSpec{},
			want: sched.Request{Requests: sched.Resources{MilliCPU: 250, MemoryBytes: 512 << 20}}},
		{name: "nil spec", cfg: cfg,
			want: sched.Request{Requests: sched.Resources{MilliCPU: 1000, MemoryBytes: gi}}},
		{name: "spec requests", cfg: cfg,
			spec: &pcnodev1.TaskSpec{Resources: &pcnodev1.ResourceRequirements{Requests: list(500, 2*gi, 0)}},
			want: sched.Request{Requests: sched.Resources{MilliCPU: 500, MemoryBytes: 2 * gi}}},
		{name: "limits without requests", cfg: cfg,
			spec: &pcnodev1.TaskSpec{Resources: &pcnodev1.ResourceRequirements{Limits: list(2000, 4*gi, 0)}},
			want: sched.Request{Requests: sched.Resources{MilliCPU: 2000, MemoryBytes: 4 * gi}}},
		{name: "requests below limits", cfg: cfg,
			spec: &pcnodev1.TaskSpec{Resources: &pcnodev1.ResourceRequirements{Requests: list(250, 0, 0), Limits: list(2000, 4*gi, 0)}},
			want: sched.Request{Requests: sched.Resources{MilliCPU: 250, MemoryBytes: 4 * gi}}},
		{name: "gpus from limits", cfg: cfg,
			spec: &pcnodev1.TaskSpec{Resources: &pcnodev1.ResourceRequirements{Limits: list(0, 0, 1)}},
			want: sched.Request{Requests: sched.Resources{MilliCPU: 1000, MemoryBytes: gi, GPUs: 1}}},
		{name: "gpus max of requests and limits", cfg: cfg,
			spec: &pcnodev1.TaskSpec{Resources: &pcnodev1.ResourceRequirements{Requests: list(0, 0, 1), Limits: list(0, 0, 2)}},
			want: sched.Request{Requests: sched.Resources{MilliCPU: 1000, MemoryBytes: gi, GPUs: 2}}},
		{name: "gpus requests over limits", cfg: cfg,
			spec: &pcnodev1.TaskSpec{Resources: &pcnodev1.ResourceRequirements{Requests: list(0, 0, 3), Limits: list(0, 0, 1)}},
			want: sched.Request{Requests: sched.Resources{MilliCPU: 1000, MemoryBytes: gi, GPUs: 3}}},
		{name: "priority and selector", cfg: cfg,
			spec: &pcnodev1.TaskSpec{Priority: -7, Resources: &pcnodev1.ResourceRequirements{
				Requests:    list(0, 0, 1),
				GpuSelector: &pcnodev1.GpuSelector{MinMemoryBytes: 40 * gi, Model: "A100"},
			}},
			want: sched.Request{Priority: -7, Requests: sched.Resources{MilliCPU: 1000, MemoryBytes: gi, GPUs: 1}, GPUMinMemoryBytes: 40 * gi, GPUModel: "A100"}},
		{name: "instance preferred", cfg: cfg,
			spec: &pcnodev1.TaskSpec{Resources: &pcnodev1.ResourceRequirements{Requests: list(500, 2*gi, 1)}},
			inst: &pcnodev1.TaskInstance{Resources: &pcnodev1.ResourceRequirements{Requests: list(3000, 8*gi, 0), Limits: list(0, 0, 2)}},
			want: sched.Request{Requests: sched.Resources{MilliCPU: 3000, MemoryBytes: 8 * gi, GPUs: 2}}},
		{name: "instance limits without requests", cfg: cfg,
			spec: &pcnodev1.TaskSpec{Resources: &pcnodev1.ResourceRequirements{Requests: list(500, 2*gi, 0)}},
			inst: &pcnodev1.TaskInstance{Resources: &pcnodev1.ResourceRequirements{Limits: list(1500, 3*gi, 0)}},
			want: sched.Request{Requests: sched.Resources{MilliCPU: 1500, MemoryBytes: 3 * gi}}},
		// The instance is the resolved task: when it has no resources,
		// the spec's are not looked at.
		{name: "instance without resources", cfg: cfg,
			spec: &pcnodev1.TaskSpec{Resources: &pcnodev1.ResourceRequirements{Requests: list(500, 2*gi, 1)}},
			inst: &pcnodev1.TaskInstance{},
			want: sched.Request{Requests: sched.Resources{MilliCPU: 1000, MemoryBytes: gi}}},
		// The GPU selector and priority come from the spec even with an instance.
		{name: "selector from spec with instance", cfg: cfg,
			spec: &pcnodev1.TaskSpec{Priority: 3, Resources: &pcnodev1.ResourceRequirements{GpuSelector: &pcnodev1.GpuSelector{Model: "H100"}}},
			inst: &pcnodev1.TaskInstance{Resources: &pcnodev1.ResourceRequirements{
				Requests:    list(100, 100, 1),
				GpuSelector: &pcnodev1.GpuSelector{Model: "ignored", MinMemoryBytes: 1},
			}},
			want: sched.Request{Priority: 3, Requests: sched.Resources{MilliCPU: 100, MemoryBytes: 100, GPUs: 1}, GPUModel: "H100"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Daemon{cfg: tc.cfg}
			got := d.schedRequest(tc.spec, tc.inst)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("schedRequest(%q) (-want +got):\n%s", tc.name, diff)
			}
		})
	}
}

func TestCapWarnings(t *testing.T) {
	long := strings.Repeat("é", maxWarningBytes) // two bytes each: the cut must fall between runes
	var many []string
	for i := range maxWarnings + 5 {
		many = append(many, fmt.Sprintf("w%d", i))
	}
	got := capWarnings(append([]string{long}, many...))
	if len(got) != maxWarnings+1 {
		t.Fatalf("capWarnings(%d) kept %d, want %d and a count", maxWarnings+6, len(got), maxWarnings+1)
	}
	if !utf8.ValidString(got[0]) || len(got[0]) > maxWarningBytes+3 || !strings.HasSuffix(got[0], "...") {
		t.Errorf("capWarnings clipped %d bytes to %q, want valid UTF-8 of at most %d bytes ending in ...", len(long), got[0], maxWarningBytes+3)
	}
	if want := "... and 6 more warnings"; got[maxWarnings] != want {
		t.Errorf("capWarnings last = %q, want %q", got[maxWarnings], want)
	}
	if got := capWarnings([]string{"a", "b"}); !cmp.Equal(got, []string{"a", "b"}) {
		t.Errorf("capWarnings(2) = %q, want them unchanged", got)
	}
}

func TestBoundInstance(t *testing.T) {
	cfg := config.DefaultConfig()
	d := &Daemon{cfg: cfg}
	most := cfg.Limits.MaxInstanceBytes.Bytes()
	small := &pcnodev1.TaskInstance{Image: "busybox", Env: []*pcnodev1.EnvVar{{Name: "A", Value: "1"}}}
	if inst, _, err := d.boundInstance(validSpec(), small, nil); err != nil || inst != small {
		t.Errorf("boundInstance(small) = %v, %v; want it back", inst, err)
	}
	big := &pcnodev1.TaskInstance{Image: "busybox", Env: []*pcnodev1.EnvVar{{Name: "A", Value: strings.Repeat("v", int(most))}}}
	for _, s := range []*pcnodev1.TaskSpec{validSpec(), {Template: &pcnodev1.TaskSpec_InlineTemplate{InlineTemplate: &pcnodev1.TaskTemplate{}}}} {
		_, _, err := d.boundInstance(s, big, nil)
		var inv *invalidError
		want := "spec.template_identifier"
		if s.GetInlineTemplate() != nil {
			want = "spec.inline_template"
		}
		if !errors.As(err, &inv) || inv.problems[0].GetField() != want || !strings.Contains(inv.problems[0].GetDescription(), "max_instance_bytes") {
			t.Errorf("boundInstance(%d bytes) = %v, want a problem on %s naming max_instance_bytes", proto.Size(big), err, want)
		}
	}
}
