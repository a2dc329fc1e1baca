package testimage_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/google/go-cmp/cmp"

	"github.com/pcnode/pcnode/internal/testimage"
	"github.com/pcnode/pcnode/internal/testimage/pattern"
)

// syncBuffer is a bytes.Buffer safe for the cio copy goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// result is how a container ended and what it wrote.
type result struct {
	code           uint32
	stdout, stderr string
}

// runContainer runs img with args (nil: the image's entrypoint and cmd)
// and the extra spec options, calls during once the task is running,
// waits for it to exit, and deletes the task, container and snapshot.
func runContainer(ctx context.Context, t *testing.T, c *client.Client, img client.Image, id string, args []string, during func(task client.Task, stderr *syncBuffer), opts ...oci.SpecOpts) result {
	t.Helper()
	specOpts := append([]oci.SpecOpts{oci.WithImageConfig(img)}, opts...)
	if args != nil {
		specOpts = append(specOpts, oci.WithProcessArgs(args...))
	}
	ctr, err := c.NewContainer(ctx, id,
		client.WithImage(img),
		client.WithNewSnapshot(id+"-snapshot", img),
		client.WithNewSpec(specOpts...))
	if err != nil {
		t.Fatalf("NewContainer(%q) = %v", id, err)
	}
	defer func() {
		if err := ctr.Delete(context.WithoutCancel(ctx), client.WithSnapshotCleanup); err != nil {
			t.Errorf("Delete container %q: %v", id, err)
		}
	}()
	var stdout, stderr syncBuffer
	task, err := ctr.NewTask(ctx, cio.NewCreator(cio.WithStreams(nil, &stdout, &stderr), cio.WithFIFODir(t.TempDir())))
	if err != nil {
		t.Fatalf("NewTask(%q) = %v", id, err)
	}
	exitCh, err := task.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait(%q) = %v", id, err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("Start(%q) = %v", id, err)
	}
	if during != nil {
		during(task, &stderr)
	}
	var status client.ExitStatus
	select {
	case status = <-exitCh:
	case <-time.After(30 * time.Second):
		_ = task.Kill(ctx, syscall.SIGKILL)
		status = <-exitCh
		t.Errorf("task %q did not exit within 30s; killed", id)
	}
	if err := status.Error(); err != nil {
		t.Fatalf("exit status of %q: %v", id, err)
	}
	if _, err := task.Delete(ctx); err != nil { // also waits for the output copies
		t.Errorf("Delete task %q: %v", id, err)
	}
	return result{code: status.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// waitForOutput polls until get() contains want.
func waitForOutput(t *testing.T, what string, get func() string, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(get(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q never appeared; have %q", what, want, get())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIntegrationHarness(t *testing.T) {
	ctx, c := testimage.Connect(t, "")
	ver, err := c.Version(ctx)
	if err != nil {
		t.Fatalf("Version() = %v", err)
	}
	t.Logf("containerd %s (revision %s)", ver.Version, ver.Revision)

	// Both archive formats import, name the image, and keep the config.
	for _, f := range []testimage.Format{testimage.FormatOCI, testimage.FormatDockerArchive} {
		name := "pcnode.test/harness-" + f.String() + ":v1"
		b, err := testimage.Build(ctx, testimage.Image{Name: name})
		if err != nil {
			t.Fatalf("Build(%q) = %v", name, err)
		}
		var buf bytes.Buffer
		if err := b.Write(&buf, f); err != nil {
			t.Fatalf("Write(%v) = %v", f, err)
		}
		imgs, err := testimage.Import(ctx, c, &buf)
		if err != nil {
			t.Fatalf("Import(%v) = %v", f, err)
		}
		var names []string
		for _, i := range imgs {
			names = append(names, i.Name)
		}
		if diff := cmp.Diff([]string{name}, names); diff != "" {
			t.Errorf("Import(%v) names (-want +got):\n%s", f, diff)
		}
		img := client.NewImage(c, imgs[0])
		cfg, err := img.Config(ctx)
		if err != nil {
			t.Fatalf("Config(%s) = %v", name, err)
		}
		if cfg.Digest != b.ConfigDesc.Digest {
			t.Errorf("imported %v config digest = %s, want %s", f, cfg.Digest, b.ConfigDesc.Digest)
		}
		if f == testimage.FormatOCI && img.Target().Digest != b.ManifestDesc.Digest {
			t.Errorf("imported OCI manifest digest = %s, want %s", img.Target().Digest, b.ManifestDesc.Digest)
		}
		unpacked, err := img.IsUnpacked(ctx, "")
		if err != nil || !unpacked {
			t.Errorf("IsUnpacked(%s) = %v, %v; want true", name, unpacked, err)
		}
		if err := c.ImageService().Delete(ctx, name, images.SynchronousDelete()); err != nil {
			t.Errorf("delete image %s: %v", name, err)
		}
	}

	img := testimage.Load(ctx, t, c, testimage.Image{})

	tests := []struct {
		name       string
		args       []string
		opts       []oci.SpecOpts
		during     func(t *testing.T, task client.Task, stderr *syncBuffer)
		wantCode   uint32
		wantStdout func(t *testing.T, stdout string)
		wantStderr string
	}{
		{
			name: "env, stdout, stderr, exit 0",
			args: []string{"/pctest", "env", "--", "write-stdout", "100000", "--", "write-stderr", "5000", "--", "exit", "0"},
			opts: []oci.SpecOpts{oci.WithEnv([]string{"HARNESS=yes"})},
			wantStdout: func(t *testing.T, stdout string) {
				env, data, ok := strings.Cut(stdout, "0000000000 ")
				if !ok {
					t.Fatalf("stdout has no pattern: %q", stdout)
				}
				if !strings.Contains(env, "HARNESS=yes\n") || !strings.Contains(env, testimage.ImagePath+"\n") {
					t.Errorf("env output = %q, want HARNESS=yes and the image PATH", env)
				}
				if got, want := "0000000000 "+data, string(pattern.Bytes(100000)); got != want {
					t.Errorf("stdout pattern: got %d bytes, want %d identical bytes", len(got), len(want))
				}
			},
			wantStderr: string(pattern.Bytes(5000)),
		},
		{name: "exit 3", args: []string{"/pctest", "exit", "3"}, wantCode: 3},
		{name: "failed step", args: []string{"/pctest", "cat", "/missing"}, wantCode: 1,
			wantStderr: "pctest: cat: open /missing: no such file or directory\n"},
		{
			name: "processing-container.json",
			args: []string{"/pctest", "cat", "/processing-container.json"},
			wantStdout: func(t *testing.T, stdout string) {
				if stdout != string(testimage.DefaultProcessingContainer()) {
					t.Errorf("cat /processing-container.json = %d bytes, want the default (%d bytes)", len(stdout), len(testimage.DefaultProcessingContainer()))
				}
			},
		},
		{
			name: "user nobody",
			args: []string{"/pctest", "id"},
			opts: []oci.SpecOpts{oci.WithUser("nobody")},
			wantStdout: func(t *testing.T, stdout string) {
				if !strings.HasPrefix(stdout, "uid=65534 gid=65534") {
					t.Errorf("id as nobody = %q, want uid=65534 gid=65534", stdout)
				}
			},
		},
		{
			name: "kaapana dummy upstream",
			args: []string{"python3", "-u", "upstream.py"},
			opts: []oci.SpecOpts{oci.WithEnv([]string{"TIME_SLEEP=0", "DUMMY=dummy"})},
			wantStdout: func(t *testing.T, stdout string) {
				for _, want := range []string{"upstream: DUMMY=dummy\n", "upstream: wrote channel1/result-1.txt (1000 bytes)\n", "upstream: done\n"} {
					if !strings.Contains(stdout, want) {
						t.Errorf("upstream stdout = %q, want it to contain %q", stdout, want)
					}
				}
			},
		},
		{name: "kaapana dummy downstream without inputs", args: []string{"python3", "-u", "downstream.py"}, wantCode: 1},
		{
			name: "SIGTERM",
			args: []string{"/pctest", "sleep", "forever"},
			during: func(t *testing.T, task client.Task, _ *syncBuffer) {
				time.Sleep(200 * time.Millisecond)
				if err := task.Kill(t.Context(), syscall.SIGTERM); err != nil {
					t.Errorf("Kill(SIGTERM) = %v", err)
				}
			},
			wantCode:   143,
			wantStderr: "pctest: received SIGTERM, exiting 143\n",
		},
		{
			name: "SIGTERM ignored, SIGKILL",
			args: []string{"/pctest", "ignore-sigterm", "--", "sleep", "forever"},
			during: func(t *testing.T, task client.Task, stderr *syncBuffer) {
				time.Sleep(200 * time.Millisecond)
				if err := task.Kill(t.Context(), syscall.SIGTERM); err != nil {
					t.Errorf("Kill(SIGTERM) = %v", err)
				}
				waitForOutput(t, "stderr", stderr.String, "pctest: SIGTERM ignored\n")
				if err := task.Kill(t.Context(), syscall.SIGKILL); err != nil {
					t.Errorf("Kill(SIGKILL) = %v", err)
				}
			},
			wantCode:   137,
			wantStderr: "pctest: SIGTERM ignored\n",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("harness-%d-%d", time.Now().UnixNano(), i)
			var during func(client.Task, *syncBuffer)
			if tt.during != nil {
				during = func(task client.Task, stderr *syncBuffer) { tt.during(t, task, stderr) }
			}
			res := runContainer(ctx, t, c, img, id, tt.args, during, tt.opts...)
			if res.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", res.code, tt.wantCode, res.stderr)
			}
			if tt.wantStdout != nil {
				tt.wantStdout(t, res.stdout)
			}
			if tt.wantStderr != "" && res.stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", res.stderr, tt.wantStderr)
			}
		})
	}
}
