package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// imageLookup is a containerRuntime whose GetImage answers with err; every
// other method is absent (calling one panics), so a test proves resolve
// needs nothing else when the image is not on the node.
type imageLookup struct {
	containerRuntime
	err error
}

func (f imageLookup) GetImage(_ context.Context, ref string) (runtime.Image, error) {
	if f.err != nil {
		return runtime.Image{}, fmt.Errorf("image %q: %w", ref, f.err)
	}
	return runtime.Image{Name: ref}, nil
}

func inlineSpec(root string) *pcnodev1.TaskSpec {
	return &pcnodev1.TaskSpec{
		Name:  "inline",
		Image: "registry.example.org/pc:1",
		Template: &pcnodev1.TaskSpec_InlineTemplate{InlineTemplate: &pcnodev1.TaskTemplate{
			Identifier: "seg",
			Command:    []string{"run"},
			Inputs:     []*pcnodev1.ChannelTemplate{{Name: "in", MountedPath: "/in"}},
			Outputs:    []*pcnodev1.ChannelTemplate{{Name: "out", MountedPath: "/out"}},
		}},
		Inputs:  []*pcnodev1.ChannelBinding{{Name: "in", HostPath: filepath.Join(root, "in")}},
		Outputs: []*pcnodev1.ChannelBinding{{Name: "out", HostPath: filepath.Join(root, "new/out")}},
	}
}

func TestResolveImageNotOnNode(t *testing.T) {
	d, root := testDaemon(t, "in")
	d.rt = imageLookup{err: runtime.ErrImageNotFound}

	t.Run("template identifier", func(t *testing.T) {
		s := inlineSpec(root)
		s.Template = &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "seg"}
		s.Resources = &pcnodev1.ResourceRequirements{Requests: &pcnodev1.ResourceList{CpuMillis: 200}}
		res, err := d.resolve(context.Background(), s)
		if err != nil {
			t.Fatalf("resolve = %v", err)
		}
		if res.instance != nil || len(res.warnings) != 1 || !strings.Contains(res.warnings[0], "not on the node") {
			t.Errorf("resolve = instance %v, warnings %q; want no instance and a warning that the image is pulled later", res.instance, res.warnings)
		}
		want := sched.Request{Requests: sched.Resources{MilliCPU: 200, MemoryBytes: 1 << 30}}
		if diff := cmp.Diff(want, res.request); diff != "" {
			t.Errorf("resolve request (-want +got):\n%s", diff)
		}
	})

	t.Run("inline template", func(t *testing.T) {
		res, err := d.resolve(context.Background(), inlineSpec(root))
		if err != nil {
			t.Fatalf("resolve = %v", err)
		}
		inst := res.instance
		if inst == nil {
			t.Fatal("resolve of an inline template gave no instance")
		}
		// Host paths are the resolved ones the policy checked.
		if got, want := inst.GetInputs()[0].GetHostPath(), filepath.Join(root, "in"); got != want {
			t.Errorf("instance input host path = %q, want %q", got, want)
		}
		if got, want := inst.GetOutputs()[0].GetHostPath(), filepath.Join(root, "new/out"); got != want {
			t.Errorf("instance output host path = %q, want %q", got, want)
		}
		if len(res.warnings) != 0 {
			t.Errorf("resolve warnings = %q, want none", res.warnings)
		}
	})
}

func TestResolveRefusals(t *testing.T) {
	d, root := testDaemon(t, "in")
	for _, tc := range []struct {
		name   string
		rtErr  error
		edit   func(s *pcnodev1.TaskSpec)
		fields []string
	}{
		{name: "field shapes", rtErr: runtime.ErrImageNotFound, edit: func(s *pcnodev1.TaskSpec) { s.Priority = 5000; s.User = "root" },
			fields: []string{"spec.priority", "spec.user"}},
		{name: "host paths", rtErr: runtime.ErrImageNotFound, edit: func(s *pcnodev1.TaskSpec) {
			s.Inputs[0].HostPath = "/etc"
			s.Outputs[0].HostPath = "relative"
		}, fields: []string{"spec.inputs[0].host_path", "spec.outputs[0].host_path"}},
		{name: "invalid reference", rtErr: runtime.ErrInvalidReference, edit: func(s *pcnodev1.TaskSpec) {
			s.Template = &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "seg"}
		}, fields: []string{"spec.image"}},
		// An invalid reference can never be pulled: it is refused whatever
		// the template, not discovered when the task starts.
		{name: "invalid reference inline", rtErr: runtime.ErrInvalidReference, edit: func(*pcnodev1.TaskSpec) {},
			fields: []string{"spec.image"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.rt = imageLookup{err: tc.rtErr}
			s := inlineSpec(root)
			tc.edit(s)
			res, err := d.resolve(context.Background(), s)
			var inv *invalidError
			if !errors.As(err, &inv) {
				t.Fatalf("resolve(%q) = %+v, %v; want an invalid error for %q", tc.name, res, err, tc.fields)
			}
			if diff := cmp.Diff(tc.fields, fields(inv.problems)); diff != "" {
				t.Errorf("resolve(%q) fields (-want +got):\n%s", tc.name, diff)
			}
		})
	}
}
