package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// pullRuntime has no image on the node; Pull fails as an authenticating
// registry does without credentials, and records the credentials of
// every pull.
type pullRuntime struct {
	containerRuntime
	pulls []*runtime.Auth
}

func (f *pullRuntime) GetImage(_ context.Context, ref string) (runtime.Image, error) {
	return runtime.Image{}, fmt.Errorf("image %q: %w", ref, runtime.ErrImageNotFound)
}

func (f *pullRuntime) Pull(_ context.Context, ref string, auth *runtime.Auth, _ func(runtime.Progress)) (runtime.Image, error) {
	f.pulls = append(f.pulls, auth)
	if auth == nil {
		return runtime.Image{}, fmt.Errorf("pull %s: registry.example.org: 401 Unauthorized", ref)
	}
	return runtime.Image{Name: ref, Digest: "sha256:0123"}, nil
}

const testPassword = "pw-3c1e9b77-never-stored"

// TestSubmitKeepsRegistryAuthInMemory: a submit with credentials stores a
// task that says it had some and holds none; the credentials are held in
// memory for the pull. After a restart (enqueued again without them) the
// task gets the lost-credentials warning once.
func TestSubmitKeepsRegistryAuthInMemory(t *testing.T) {
	d := cancelDaemon(t, &pullRuntime{})
	ctx := context.Background()
	spec := &pcnodev1.TaskSpec{
		Name:         "with-auth",
		Image:        "registry.example.org/pc:1",
		Template:     &pcnodev1.TaskSpec_TemplateIdentifier{TemplateIdentifier: "seg"},
		RegistryAuth: &pcnodev1.RegistryAuth{Username: "airflow", Password: testPassword},
	}
	task, existing, err := d.Submit(ctx, &pcnodev1.SubmitTaskRequest{Spec: spec, IdempotencyKey: "dag/run/ti"})
	if err != nil || existing {
		t.Fatalf("submit() = %v, %v", existing, err)
	}
	stored, err := d.store.GetTask(ctx, task.GetId())
	if err != nil {
		t.Fatal(err)
	}
	if !stored.GetRegistryAuthInMemory() || stored.GetSpec().GetRegistryAuth() != nil {
		t.Errorf("stored task: registry_auth_in_memory %v, spec.registry_auth %v; want true and none", stored.GetRegistryAuthInMemory(), stored.GetSpec().GetRegistryAuth())
	}
	b, err := proto.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), testPassword) {
		t.Error("the stored task holds the password")
	}
	if qt := d.queued[task.GetId()]; qt == nil || qt.auth == nil || qt.auth.Password != testPassword {
		t.Errorf("queued[%s] = %+v, want the submit's credentials in memory", task.GetId(), qt)
	}
	if slices.Contains(stored.GetWarnings(), authLostWarning) {
		t.Errorf("warnings = %q before any restart, want no lost-credentials warning", stored.GetWarnings())
	}

	// Without credentials a task is not marked.
	plain := proto.Clone(spec).(*pcnodev1.TaskSpec)
	plain.RegistryAuth = &pcnodev1.RegistryAuth{}
	plain.Name = "without-auth"
	if p, _, err := d.Submit(ctx, &pcnodev1.SubmitTaskRequest{Spec: plain}); err != nil || p.GetRegistryAuthInMemory() {
		t.Errorf("submit(empty registry_auth) = registry_auth_in_memory %v, %v; want false", p.GetRegistryAuthInMemory(), err)
	}

	// A restart: the task is enqueued again, with no credentials. Twice
	// (two restarts): one warning.
	for range 2 {
		d.sched.Remove(task.GetId())
		delete(d.queued, task.GetId())
		cur, err := d.store.GetTask(ctx, task.GetId())
		if err != nil {
			t.Fatal(err)
		}
		d.enqueue(ctx, cur, d.schedRequest(cur.GetSpec(), cur.GetInstance()), nil)
	}
	after, err := d.store.GetTask(ctx, task.GetId())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, w := range after.GetWarnings() {
		if w == authLostWarning {
			n++
		}
	}
	if n != 1 || after.GetState() != pcnodev1.TaskState_TASK_STATE_QUEUED {
		t.Errorf("after two restarts: %v, warnings %q; want QUEUED with one %q", after.GetState(), after.GetWarnings(), authLostWarning)
	}
	if qt := d.queued[task.GetId()]; qt == nil || qt.auth != nil {
		t.Fatalf("queued[%s] after the restart = %+v, want no credentials", task.GetId(), qt)
	}
	// A retried submit (same key, same spec) gives them back.
	again, existing, err := d.Submit(ctx, &pcnodev1.SubmitTaskRequest{Spec: spec, IdempotencyKey: "dag/run/ti"})
	if err != nil || !existing || again.GetId() != task.GetId() {
		t.Fatalf("retried submit() = %s, %v, %v; want the existing task %s", again.GetId(), existing, err, task.GetId())
	}
	if qt := d.queued[task.GetId()]; qt == nil || qt.auth == nil || qt.auth.Password != testPassword {
		t.Errorf("queued[%s] after a retried submit = %+v, want its credentials again", task.GetId(), qt)
	}
}

// TestEnsureImageLostAuth: a pull that fails for a task whose submit
// credentials were lost says so; otherwise the pull error is unchanged.
func TestEnsureImageLostAuth(t *testing.T) {
	for _, tc := range []struct {
		name     string
		inMemory bool
		auth     *runtime.Auth
		wantErr  bool
		wantLost bool
	}{
		{"credentials lost in a restart", true, nil, true, true},
		{"credentials held", true, &runtime.Auth{Username: "airflow", Password: testPassword}, false, false},
		{"never had credentials", false, nil, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &pullRuntime{}
			d := cancelDaemon(t, rt)
			task := &pcnodev1.Task{Id: "t1", Spec: &pcnodev1.TaskSpec{Image: "registry.example.org/pc:1"}, RegistryAuthInMemory: tc.inMemory}
			_, err := d.ensureImage(context.Background(), task, tc.auth, nil)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ensureImage(%q) = %v, want error %v", tc.name, err, tc.wantErr)
			}
			if len(rt.pulls) != 1 || rt.pulls[0] != tc.auth {
				t.Errorf("ensureImage(%q) pulled with %v, want one pull with %v", tc.name, rt.pulls, tc.auth)
			}
			if err == nil {
				return
			}
			lost := strings.Contains(err.Error(), "never stored, and were lost when the daemon restarted") && strings.Contains(err.Error(), "resubmit")
			if lost != tc.wantLost || !strings.Contains(err.Error(), "401 Unauthorized") {
				t.Errorf("ensureImage(%q) = %q, want the registry's error, and the lost-credentials explanation %v", tc.name, err, tc.wantLost)
			}
		})
	}
	// A runtime that cannot be reached is not blamed on the credentials.
	d := cancelDaemon(t, unreachableRuntime{})
	task := &pcnodev1.Task{Id: "t1", Spec: &pcnodev1.TaskSpec{Image: "registry.example.org/pc:1"}, RegistryAuthInMemory: true}
	if _, err := d.ensureImage(context.Background(), task, nil, nil); !errors.Is(err, runtime.ErrUnavailable) || strings.Contains(err.Error(), "resubmit") {
		t.Errorf("ensureImage(containerd down) = %v, want ErrUnavailable without the credentials explanation", err)
	}
}

type unreachableRuntime struct{ containerRuntime }

func (unreachableRuntime) GetImage(context.Context, string) (runtime.Image, error) {
	return runtime.Image{}, fmt.Errorf("image: %w", runtime.ErrImageNotFound)
}

func (unreachableRuntime) Pull(context.Context, string, *runtime.Auth, func(runtime.Progress)) (runtime.Image, error) {
	return runtime.Image{}, fmt.Errorf("pull: %w", runtime.ErrUnavailable)
}
