package specpb

import (
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pcnode/pcnode/daemon/spec"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func readPC(t *testing.T, path string) *spec.ProcessingContainer {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pc, _, err := spec.ParseProcessingContainer(b)
	if err != nil {
		t.Fatalf("ParseProcessingContainer(%s) = %v", path, err)
	}
	return pc
}

// Every template field survives spec → API → spec.
func TestTemplateRoundTrip(t *testing.T) {
	for _, path := range []string{
		"../spec/testdata/kaapana/dummy/processing-container.json",
		"../spec/testdata/pcnode/processing-container.json",
	} {
		t.Run(path, func(t *testing.T) {
			pc := readPC(t, path)
			api := ProcessingContainer(pc)
			if len(api.GetTemplates()) != len(pc.Templates) {
				t.Fatalf("ProcessingContainer() has %d templates, want %d", len(api.GetTemplates()), len(pc.Templates))
			}
			for i := range pc.Templates {
				got := TemplateFromProto(api.GetTemplates()[i])
				if diff := cmp.Diff(&pc.Templates[i], got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("template %d round trip (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

// A task.json's spec survives spec → API → spec.
func TestTaskRoundTrip(t *testing.T) {
	b, err := os.ReadFile("../spec/testdata/kaapana/dummy/tasks/downstream-task.json")
	if err != nil {
		t.Fatal(err)
	}
	task, _, err := spec.ParseTask(b, spec.MapEnv(map[string]string{
		"registryUrl": "r.example", "output_dir": "/data/x", "namespace": "n",
		"registryUsername": "u", "registryPassword": "p",
	}))
	if err != nil {
		t.Fatalf("ParseTask = %v", err)
	}
	got := Task(TaskSpec(task))
	if diff := cmp.Diff(task, got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(spec.Task{}, "Placeholders")); diff != "" {
		t.Errorf("task round trip (-want +got):\n%s", diff)
	}
}

// Enum values the API does not define become spellings validation refuses.
func TestUnknownEnums(t *testing.T) {
	tpl := TemplateFromProto(&pcnodev1.TaskTemplate{
		Identifier: "t", Description: "d",
		Env: []*pcnodev1.EnvVarTemplate{{Name: "A", Value: "1", Type: pcnodev1.EnvVarType(42)}},
		Inputs: []*pcnodev1.ChannelTemplate{{Name: "in", MountedPath: "/in", ScaleRule: &pcnodev1.ScaleRule{
			ScaleFactor: 2, Mode: pcnodev1.ScaleRuleMode(9), Type: pcnodev1.ScaleRuleType_SCALE_RULE_TYPE_UNSPECIFIED,
		}}},
	})
	if got := tpl.Env[0].Type; got != "unknown(42)" {
		t.Errorf("env type = %q, want unknown(42)", got)
	}
	if got := tpl.Inputs[0].ScaleRule.Mode; got != "unknown(9)" {
		t.Errorf("scale rule mode = %q, want unknown(9)", got)
	}
	if got := tpl.Inputs[0].ScaleRule.Type; got != "" {
		t.Errorf("scale rule type = %q, want empty (unset)", got)
	}
	if ps := tpl.Validate(); len(ps) < 2 {
		t.Errorf("Validate() = %v, want problems for the env type and the scale rule", ps)
	}
}
