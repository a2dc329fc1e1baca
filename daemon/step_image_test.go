package daemon

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pcnode/pcnode/daemon/runtime"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestResolveImage(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	r := stepRunner(t, d, task.GetId())
	want := rt.images[stepImage].Digest
	for run := range 2 { // the second as after a crash right after the first
		got, err := r.resolveImage(task)
		if err != nil {
			t.Fatalf("resolveImage() run %d error = %v", run, err)
		}
		if got.GetImageDigest() != want {
			t.Errorf("resolveImage() run %d digest = %q, want %q", run, got.GetImageDigest(), want)
		}
		if got.GetInstance().GetResources().GetLimits() == nil {
			t.Errorf("resolveImage() run %d left no default limits on the instance", run)
		}
	}
	if n := rt.count("Pull", stepImage); n != 0 {
		t.Errorf("resolveImage() pulled a present image %d times, want 0", n)
	}
}

// TestResolveImageContainerdUnavailable: containerd unreachable is no
// image error: the step says so, for the runner to queue the task again
// (TestRequeueWhenImageUnavailable).
func TestResolveImageContainerdUnavailable(t *testing.T) {
	rt := newFakeRuntime(stepImage)
	rt.failNext("GetImage", stepImage, fmt.Errorf("get image: %w", runtime.ErrUnavailable))
	d, root := stepDaemon(t, rt)
	task := stepTask(t, d, root)
	_, err := stepRunner(t, d, task.GetId()).resolveImage(task)
	var cd *containerdDownError
	if !errors.As(err, &cd) || cd.mayExist {
		t.Fatalf("resolveImage(containerd unavailable) error = %v, want a containerdDownError", err)
	}
	if n := rt.count("Pull", stepImage); n != 0 {
		t.Errorf("resolveImage(containerd unavailable) pulled %d times, want 0", n)
	}
}

func TestResolveImageFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(*fakeRuntime)
		pulls  int
	}{
		{"not in the registry", func(f *fakeRuntime) { delete(f.images, stepImage) }, 1},
		{"pull refused", func(f *fakeRuntime) {
			delete(f.images, stepImage)
			f.failNext("Pull", stepImage, fmt.Errorf("pull: %w", runtime.ErrUnauthorized))
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newFakeRuntime(stepImage)
			tc.inject(rt)
			d, root := stepDaemon(t, rt)
			task := stepTask(t, d, root)
			r := stepRunner(t, d, task.GetId())
			_, err := r.resolveImage(task)
			var se *stepError
			if !errors.As(err, &se) || se.reason != pcnodev1.TaskReason_TASK_REASON_IMAGE_ERROR {
				t.Fatalf("resolveImage(%s) error = %v, want an IMAGE_ERROR step error", tc.name, err)
			}
			if n := rt.count("Pull", stepImage); n != tc.pulls {
				t.Errorf("resolveImage(%s) pulled %d times, want %d", tc.name, n, tc.pulls)
			}
			if got := getTask(t, d, task.GetId()); got.GetImageDigest() != "" {
				t.Errorf("resolveImage(%s) recorded digest %q, want none", tc.name, got.GetImageDigest())
			}
		})
	}
}
