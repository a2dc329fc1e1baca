package main

import (
	"errors"
	"fmt"
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

// e2eRefusal is how a request must be refused: with code, and for
// InvalidArgument with a BadRequest violation on field (without "spec."),
// or on any field starting with fieldPrefix, whose description contains
// desc. For ResourceExhausted the status message must contain desc.
type e2eRefusal struct {
	code               codes.Code
	field, fieldPrefix string
	desc               string
}

// String names the expected refusal for failure messages.
func (r e2eRefusal) String() string {
	w := r.field
	if w == "" {
		w = r.fieldPrefix + "…"
	}
	return fmt.Sprintf("%v with a violation on %s mentioning %q", r.code, w, r.desc)
}

// matches reports whether one of ps is the violation r wants.
func (r e2eRefusal) matches(ps []*pcnodev1.Problem) bool {
	for _, p := range ps {
		f := strings.TrimPrefix(p.GetField(), "spec.")
		ok := r.field != "" && e2eField(p.GetField(), r.field) || r.fieldPrefix != "" && strings.HasPrefix(f, r.fieldPrefix)
		if ok && strings.Contains(p.GetDescription(), r.desc) {
			return true
		}
	}
	return false
}

// matchesError reports whether err is the refusal r wants.
func (r e2eRefusal) matchesError(err error) bool {
	var e *client.Error
	if !errors.As(client.FromError(err), &e) || e.Code != r.code {
		return false
	}
	if r.code == codes.InvalidArgument {
		return r.matches(e.Violations)
	}
	return strings.Contains(e.Message, r.desc)
}

// e2eWantRefused sends req on every submit path — SubmitTask, RunTask,
// SubmitTasks and ResolveTask (which answers with problems, or for a task
// that can never fit with fits_node false) — and fails t unless each
// refuses it as want says.
func e2eWantRefused(t *testing.T, d *daemontest.Daemon, req *pcnodev1.SubmitTaskRequest, want e2eRefusal) {
	t.Helper()
	ctx := t.Context()
	if _, err := d.Client.Tasks.SubmitTask(ctx, req); !want.matchesError(err) {
		t.Errorf("SubmitTask = %v, want %v", client.FromError(err), want)
	}

	// RunTask refuses it the same way.
	_, err := d.Client.Run(ctx, &pcnodev1.RunTaskRequest{Target: &pcnodev1.RunTaskRequest_Submit{Submit: req}}, nil)
	if !want.matchesError(err) {
		t.Errorf("RunTask = %v, want %v", err, want)
	}

	// SubmitTasks answers with the error and its problems.
	stream, err := d.Client.Tasks.SubmitTasks(ctx)
	if err != nil {
		t.Fatalf("SubmitTasks() = %v", err)
	}
	if err := stream.Send(&pcnodev1.SubmitTasksRequest{Submit: req}); err != nil {
		t.Fatalf("SubmitTasks Send = %v", err)
	}
	_ = stream.CloseSend()
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("SubmitTasks Recv = %v, want an answer carrying the error", client.FromError(err))
	}
	se := resp.GetError()
	ok := se.GetCode() == int32(want.code)
	if want.code == codes.InvalidArgument {
		ok = ok && want.matches(se.GetProblems())
	} else {
		ok = ok && strings.Contains(se.GetMessage(), want.desc)
	}
	if !ok {
		t.Errorf("SubmitTasks answer = %.300v, want error code %d: %v", resp, want.code, want)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("SubmitTasks after the last answer = %v, want EOF", err)
	}

	// ResolveTask reports the problem without an error; it takes no
	// idempotency key.
	if req.GetIdempotencyKey() != "" {
		return
	}
	res, err := d.Client.Tasks.ResolveTask(ctx, &pcnodev1.ResolveTaskRequest{Spec: req.GetSpec()})
	switch {
	case err != nil:
		t.Errorf("ResolveTask = %v, want the problems in the response", client.FromError(err))
	case want.code == codes.ResourceExhausted:
		if res.GetFitsNode() || len(res.GetProblems()) > 0 {
			t.Errorf("ResolveTask = fits_node %v, problems %v; want fits_node false and no problems", res.GetFitsNode(), res.GetProblems())
		}
	case !want.matches(res.GetProblems()):
		t.Errorf("ResolveTask problems = %.300v, want %v", res.GetProblems(), want)
	}
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

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e2eWantRefused(t, d, &pcnodev1.SubmitTaskRequest{Spec: tt.spec}, e2eRefusal{
				code: codes.InvalidArgument, field: tt.field, fieldPrefix: tt.fieldPrefix, desc: tt.desc,
			})
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
