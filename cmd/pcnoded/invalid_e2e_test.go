package main

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"

	"github.com/pcnode/pcnode/client"
	"github.com/pcnode/pcnode/internal/daemontest"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// e2eTree lists every entry under dirs (path, type and size), without
// following symbolic links.
func e2eTree(t *testing.T, dirs ...string) []string {
	t.Helper()
	var out []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			out = append(out, p+" "+info.Mode().String()+" "+strings.Repeat("*", int(min(info.Size(), 64))))
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", dir, err)
		}
	}
	return out
}

// e2eField reports whether a violation's field is want, with or without
// the "spec." prefix the API may put before spec fields.
func e2eField(field, want string) bool {
	return strings.TrimPrefix(field, "spec.") == want
}

// TestIntegrationInvalidSpecs submits specs that must be refused: host
// paths outside the data roots (directly, through "..", through symbolic
// links), unknown templates and channels, unbound channels. Each is
// INVALID_ARGUMENT with a BadRequest field violation naming the field, on
// every submit path, and leaves nothing behind.
func TestIntegrationInvalidSpecs(t *testing.T) {
	d := daemontest.Start(t, daemontest.Options{})
	img := e2eTestImage(t, d).GetName()
	root := d.DataRoots[0]
	outside := t.TempDir() // not under any data root
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(root, "etc-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../"+filepath.Base(outside), filepath.Join(root, "relative-escape")); err != nil {
		t.Fatal(err)
	}
	okIn := d.DataDir(t, "in")
	if err := os.WriteFile(filepath.Join(okIn, "a.txt"), []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The parent of outside is the test's temporary directory, which holds
	// the data root: make the relative symlink point outside for real.
	if err := os.Symlink(outside, filepath.Join(filepath.Dir(root), filepath.Base(outside))); err != nil && !errors.Is(err, fs.ErrExist) {
		t.Fatal(err)
	}

	out := func(name, path string) []*pcnodev1.ChannelBinding {
		return []*pcnodev1.ChannelBinding{e2eBind(name, path)}
	}
	writeOut := func(outputs []*pcnodev1.ChannelBinding) *pcnodev1.TaskSpec {
		s := e2eSpec(img, "write-output")
		s.Outputs = outputs
		return s
	}
	copySpec := func(in, outPath string) *pcnodev1.TaskSpec {
		s := e2eSpec(img, "copy")
		s.Inputs = out("in", in)
		s.Outputs = out("out", outPath)
		return s
	}
	tests := []struct {
		name  string
		spec  *pcnodev1.TaskSpec
		field string // the violation's field, without "spec."
		// desc, when set, must appear in that violation's description.
		desc string
		// fieldPrefix accepts any field starting with it instead of field.
		fieldPrefix string
	}{
		{name: "output outside the data roots", spec: writeOut(out("out", filepath.Join(outside, "out"))), field: "outputs[0].host_path"},
		{name: "output is a data root's parent", spec: writeOut(out("out", filepath.Dir(root))), field: "outputs[0].host_path"},
		{name: "input outside the data roots", spec: copySpec("/etc", filepath.Join(root, "copy-out")), field: "inputs[0].host_path"},
		{name: "dot-dot out of a data root", spec: writeOut(out("out", root+"/sub/../../"+filepath.Base(outside)+"/dotdot")), field: "outputs[0].host_path"},
		{name: "dot-dot in the middle", spec: copySpec(root+"/in/"+strings.Repeat("../", strings.Count(root, "/")+1)+"etc", filepath.Join(root, "copy-out")), field: "inputs[0].host_path"},
		{name: "symlink pointing outside", spec: writeOut(out("out", filepath.Join(root, "escape", "out"))), field: "outputs[0].host_path"},
		{name: "symlink itself as output", spec: writeOut(out("out", filepath.Join(root, "escape"))), field: "outputs[0].host_path"},
		{name: "relative symlink pointing outside", spec: writeOut(out("out", filepath.Join(root, "relative-escape", "out"))), field: "outputs[0].host_path"},
		{name: "symlink to /etc as input", spec: copySpec(filepath.Join(root, "etc-link"), filepath.Join(root, "copy-out")), field: "inputs[0].host_path"},
		{name: "relative path", spec: writeOut(out("out", "relative/out")), field: "outputs[0].host_path"},
		{name: "unknown template", spec: e2eSpec(img, "no-such-template"), field: "template_identifier", desc: "no-such-template"},
		{name: "unknown output channel", spec: writeOut(out("nope", filepath.Join(root, "nope"))), fieldPrefix: "outputs[0]", desc: "nope"},
		{name: "unknown input channel", spec: func() *pcnodev1.TaskSpec {
			s := copySpec(okIn, filepath.Join(root, "copy-out"))
			s.Inputs = append(s.Inputs, e2eBind("extra", okIn))
			return s
		}(), fieldPrefix: "inputs[1]", desc: "extra"},
		{name: "unbound output channel", spec: writeOut(nil), fieldPrefix: "outputs", desc: "out"},
		{name: "unbound input channel", spec: func() *pcnodev1.TaskSpec {
			s := copySpec(okIn, filepath.Join(root, "copy-out"))
			s.Inputs = nil
			return s
		}(), fieldPrefix: "inputs", desc: "in"},
	}
	before := e2eTree(t, root, outside)

	match := func(ps []*pcnodev1.Problem, field, prefix, desc string) bool {
		for _, p := range ps {
			ok := field != "" && e2eField(p.GetField(), field) || prefix != "" && strings.HasPrefix(strings.TrimPrefix(p.GetField(), "spec."), prefix)
			if ok && strings.Contains(p.GetDescription(), desc) {
				return true
			}
		}
		return false
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.field
			if w == "" {
				w = tt.fieldPrefix + "…"
			}

			// SubmitTask.
			_, err := d.Client.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{Spec: tt.spec})
			err = client.FromError(err)
			var e *client.Error
			if !errors.As(err, &e) || e.Code != codes.InvalidArgument {
				t.Fatalf("SubmitTask(%s) = %v, want InvalidArgument", tt.name, err)
			}
			if !match(e.Violations, tt.field, tt.fieldPrefix, tt.desc) {
				t.Errorf("SubmitTask(%s) violations = %v, want one on %s mentioning %q", tt.name, e.Violations, w, tt.desc)
			}

			// RunTask refuses it the same way.
			_, err = d.Client.Run(t.Context(), &pcnodev1.RunTaskRequest{Target: &pcnodev1.RunTaskRequest_Submit{Submit: &pcnodev1.SubmitTaskRequest{Spec: tt.spec}}}, nil)
			if !errors.As(err, &e) || e.Code != codes.InvalidArgument || !match(e.Violations, tt.field, tt.fieldPrefix, tt.desc) {
				t.Errorf("RunTask(%s) = %v, want InvalidArgument with a violation on %s", tt.name, err, w)
			}

			// SubmitTasks answers with the error and its problems.
			stream, err := d.Client.Tasks.SubmitTasks(t.Context())
			if err != nil {
				t.Fatalf("SubmitTasks() = %v", err)
			}
			if err := stream.Send(&pcnodev1.SubmitTasksRequest{Submit: &pcnodev1.SubmitTaskRequest{Spec: tt.spec}}); err != nil {
				t.Fatalf("SubmitTasks Send = %v", err)
			}
			_ = stream.CloseSend()
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("SubmitTasks Recv = %v, want an answer carrying the error", client.FromError(err))
			}
			if se := resp.GetError(); se.GetCode() != int32(codes.InvalidArgument) || !match(se.GetProblems(), tt.field, tt.fieldPrefix, tt.desc) {
				t.Errorf("SubmitTasks(%s) answer = %v, want error code %d with a problem on %s", tt.name, resp, codes.InvalidArgument, w)
			}
			if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
				t.Errorf("SubmitTasks after the last answer = %v, want EOF", err)
			}

			// ResolveTask reports the problem without an error.
			res, err := d.Client.Tasks.ResolveTask(t.Context(), &pcnodev1.ResolveTaskRequest{Spec: tt.spec})
			if err != nil {
				t.Errorf("ResolveTask(%s) = %v, want the problems in the response", tt.name, client.FromError(err))
			} else if !match(res.GetProblems(), tt.field, tt.fieldPrefix, tt.desc) {
				t.Errorf("ResolveTask(%s) problems = %v, want one on %s", tt.name, res.GetProblems(), w)
			}
		})
	}

	// Nothing was created: no task, no directory, no file.
	list, err := d.Client.Tasks.ListTasks(t.Context(), &pcnodev1.ListTasksRequest{})
	if err != nil {
		t.Fatalf("ListTasks() = %v", client.FromError(err))
	}
	if n := len(list.GetTasks()); n != 0 {
		t.Errorf("ListTasks() after refused specs = %d tasks, want none: %v", n, list.GetTasks())
	}
	if diff := cmp.Diff(before, e2eTree(t, root, outside)); diff != "" {
		t.Errorf("data root and outside directory changed by refused specs (-before +after):\n%s", diff)
	}
	for _, p := range []string{"/etc/dotdot", "/etc/out"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists after refused specs", p)
		}
	}
}
