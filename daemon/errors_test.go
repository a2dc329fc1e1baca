package daemon

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/pcnode/pcnode/daemon/hostpath"
	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	"github.com/pcnode/pcnode/daemon/spec"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// badRequest returns the field violations of a status error's BadRequest
// detail, or nil when it has none.
func badRequest(t *testing.T, err error) []*errdetails.BadRequest_FieldViolation {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("%v is not a status error", err)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br.GetFieldViolations()
		}
	}
	return nil
}

func TestToStatusInvalid(t *testing.T) {
	p := problems{
		{Field: "spec.name", Description: "longer than 256 bytes"},
		{Field: "spec.env[0].name", Description: `"1A" is not a POSIX environment variable name`},
		{Field: "spec.image", Description: "required"},
		{Field: "spec.env[0].name", Description: "second problem, same field"},
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"bare", invalid(p)},
		{"wrapped", fmt.Errorf("submitting: %w", invalid(p))},
		{"joined", errors.Join(errors.New("other"), invalid(p))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := toStatus(tc.err)
			if got := status.Code(err); got != codes.InvalidArgument {
				t.Fatalf("toStatus(%q) code = %v, want %v", tc.err, got, codes.InvalidArgument)
			}
			// Sorted by field, stable for equal fields.
			want := []*errdetails.BadRequest_FieldViolation{
				{Field: "spec.env[0].name", Description: `"1A" is not a POSIX environment variable name`},
				{Field: "spec.env[0].name", Description: "second problem, same field"},
				{Field: "spec.image", Description: "required"},
				{Field: "spec.name", Description: "longer than 256 bytes"},
			}
			if diff := cmp.Diff(want, badRequest(t, err), protocmp.Transform()); diff != "" {
				t.Errorf("toStatus(%q) field violations (-want +got):\n%s", tc.err, diff)
			}
			wantMsg := `spec.env[0].name: "1A" is not a POSIX environment variable name (and 3 more)`
			if got := status.Convert(err).Message(); got != wantMsg {
				t.Errorf("toStatus(%q) message = %q, want %q", tc.err, got, wantMsg)
			}
		})
	}
}

func TestInvalidErrorMessage(t *testing.T) {
	many := make(problems, 13)
	for i := range many {
		many[i] = &pcnodev1.Problem{Field: fmt.Sprintf("f%02d", i), Description: "bad"}
	}
	for _, tc := range []struct {
		name string
		p    problems
		want string
	}{
		{"none", nil, "invalid request"},
		{"one", problems{{Field: "a", Description: "bad"}}, "a: bad"},
		{"two", problems{{Field: "b", Description: "worse"}, {Field: "a", Description: "bad"}}, "a: bad (and 1 more)"},
		{"thirteen", many, "f00: bad (and 12 more)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := invalid(tc.p).Error(); got != tc.want {
				t.Errorf("invalid(%q).Error() = %q, want %q", tc.name, got, tc.want)
			}
		})
	}
}

func TestItoa(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 11, 99, 100, 1234567} {
		if got, want := itoa(n), fmt.Sprint(n); got != want {
			t.Errorf("itoa(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestToStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		code    codes.Code
		message string
	}{
		{"status passes through", status.Error(codes.Unauthenticated, "who"), codes.Unauthenticated, "who"},
		{"coded", WithCode(codes.FailedPrecondition, errors.New("draining")), codes.FailedPrecondition, "draining"},
		{"coded wrapped", fmt.Errorf("task t1: %w", WithCode(codes.ResourceExhausted, errors.New("too big"))), codes.ResourceExhausted, "task t1: too big"},
		// An explicit code wins over what it wraps.
		{"coded over sentinel", WithCode(codes.Aborted, fmt.Errorf("x: %w", store.ErrNotFound)), codes.Aborted, "x: task not found"},
		{"coded over context", WithCode(codes.Unavailable, context.Canceled), codes.Unavailable, "context canceled"},
		{"canceled", fmt.Errorf("waiting: %w", context.Canceled), codes.Canceled, "waiting: context canceled"},
		{"deadline", fmt.Errorf("pull: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "pull: context deadline exceeded"},
		// Context errors are checked before sentinels.
		{"context before sentinel", errors.Join(store.ErrNotFound, context.Canceled), codes.Canceled, "task not found\ncontext canceled"},
		{"sentinel", fmt.Errorf("get t1: %w", store.ErrNotFound), codes.NotFound, "get t1: task not found"},
		{"plain", errors.New("boom"), codes.Internal, "boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := toStatus(tc.err)
			st, ok := status.FromError(err)
			if !ok {
				t.Fatalf("toStatus(%q) = %v, not a status error", tc.err, err)
			}
			if st.Code() != tc.code || st.Message() != tc.message {
				t.Errorf("toStatus(%q) = %v %q, want %v %q", tc.err, st.Code(), st.Message(), tc.code, tc.message)
			}
			if len(st.Details()) != 0 {
				t.Errorf("toStatus(%q) details = %v, want none", tc.err, st.Details())
			}
		})
	}
	if err := toStatus(nil); err != nil {
		t.Errorf("toStatus(nil) = %v, want nil", err)
	}
}

func TestSentinelCode(t *testing.T) {
	for _, tc := range []struct {
		sentinel error
		want     codes.Code
	}{
		{store.ErrNotFound, codes.NotFound},
		{runtime.ErrImageNotFound, codes.NotFound},
		{errNoProcessingContainer, codes.NotFound},
		{runtime.ErrFileNotFound, codes.NotFound},

		{store.ErrKeyConflict, codes.AlreadyExists},
		{store.ErrExists, codes.AlreadyExists},
		{runtime.ErrAlreadyExists, codes.AlreadyExists},

		{store.ErrInvalidArgument, codes.InvalidArgument},
		{store.ErrInvalidPageToken, codes.InvalidArgument},
		{runtime.ErrInvalidReference, codes.InvalidArgument},
		{runtime.ErrInvalidArchive, codes.InvalidArgument},
		{runtime.ErrInvalidArgument, codes.InvalidArgument},
		{spec.ErrInvalid, codes.InvalidArgument},
		{spec.Problems{{Field: "x", Description: "y"}}, codes.InvalidArgument},
		{hostpath.ErrOutsideRoots, codes.InvalidArgument},
		{&hostpath.Error{Field: "f", Path: "/etc", Reason: "is outside the data roots", Err: hostpath.ErrOutsideRoots}, codes.InvalidArgument},
		{spec.ErrSyntax, codes.InvalidArgument},
		{spec.ErrTooLarge, codes.InvalidArgument},
		{runtime.ErrFileTooLarge, codes.InvalidArgument},

		{sched.ErrNeverFits, codes.ResourceExhausted},
		{&sched.FitError{ID: "t", Requested: sched.Resources{GPUs: 2}, Never: true}, codes.ResourceExhausted},
		{runtime.ErrUnauthorized, codes.PermissionDenied},
		{runtime.ErrDeviceUnavailable, codes.FailedPrecondition},
		{store.ErrClosed, codes.Unavailable},

		// Not mapped: internal.
		{&sched.FitError{ID: "t", Requested: sched.Resources{GPUs: 2}}, codes.Internal},
		{store.ErrCorrupt, codes.Internal},
		{store.ErrLocked, codes.Internal},
		{runtime.ErrNotFound, codes.Internal},
		{sched.ErrDuplicate, codes.Internal},
		{errors.New("anything"), codes.Internal},
	} {
		t.Run(tc.sentinel.Error(), func(t *testing.T) {
			for _, err := range []error{tc.sentinel, fmt.Errorf("op: %w", tc.sentinel), fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", tc.sentinel))} {
				if got := sentinelCode(err); got != tc.want {
					t.Errorf("sentinelCode(%q) = %v, want %v", err, got, tc.want)
				}
				st := status.Convert(toStatus(err))
				if st.Code() != tc.want || st.Message() != err.Error() {
					t.Errorf("toStatus(%q) = %v %q, want %v %q", err, st.Code(), st.Message(), tc.want, err.Error())
				}
			}
		})
	}
}

func TestSpecInvalid(t *testing.T) {
	ps := spec.Problems{
		{Field: "taskTemplate", Description: "no such template"},
		{Field: "inputs[0].volume_source.host_path", Description: "required"},
		{Field: "", Description: "the task as a whole"},
		{Field: "resources.limits.memory", Description: "below requests"},
		{Field: `resources.requests["nvidia.com/gpu"]`, Description: "not a whole number"},
		{Field: "config.labels.team", Description: "too long"},
		{Field: "taskTemplate.env[0].value", Description: "not an integer"},
		{Field: "env[1].name", Description: "duplicate"},
	}
	want := []*pcnodev1.Problem{
		{Field: "spec", Description: "the task as a whole"},
		{Field: "spec.env[1].name", Description: "duplicate"},
		{Field: "spec.inline_template.env[0].value", Description: "not an integer"},
		{Field: "spec.inputs[0].host_path", Description: "required"},
		{Field: "spec.labels.team", Description: "too long"},
		{Field: "spec.resources.limits.memory_bytes", Description: "below requests"},
		{Field: "spec.resources.requests.gpus", Description: "not a whole number"},
		{Field: "spec.template_identifier", Description: "no such template"},
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"bare", ps},
		{"wrapped", fmt.Errorf("/processing-container.json of img: %w", ps)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := specInvalid(tc.err, "spec.")
			var inv *invalidError
			if !errors.As(err, &inv) {
				t.Fatalf("specInvalid(%q) = %T %v, want *invalidError", tc.err, err, err)
			}
			if diff := cmp.Diff(want, []*pcnodev1.Problem(inv.problems), protocmp.Transform()); diff != "" {
				t.Errorf("specInvalid(%q) problems (-want +got):\n%s", tc.err, diff)
			}
			if got := status.Code(toStatus(err)); got != codes.InvalidArgument {
				t.Errorf("toStatus(specInvalid(%q)) code = %v, want %v", tc.err, got, codes.InvalidArgument)
			}
		})
	}

	t.Run("other prefix", func(t *testing.T) {
		err := specInvalid(spec.Problems{{Field: "", Description: "d"}, {Field: "templates[0].resources.limits.cpu", Description: "c"}}, "processing_container.")
		var inv *invalidError
		if !errors.As(err, &inv) {
			t.Fatalf("specInvalid = %T %v, want *invalidError", err, err)
		}
		if got, want := fields(inv.problems), []string{"processing_container", "processing_container.templates[0].resources.limits.cpu_millis"}; !cmp.Equal(got, want) {
			t.Errorf("specInvalid fields = %q, want %q", got, want)
		}
	})
}

func TestSpecInvalidSentinels(t *testing.T) {
	for _, sentinel := range []error{spec.ErrSyntax, spec.ErrTooLarge, spec.ErrMissingEnv, spec.ErrPlaceholder, spec.ErrQuantity} {
		t.Run(sentinel.Error(), func(t *testing.T) {
			in := fmt.Errorf("task.json line 3: %w", sentinel)
			err := specInvalid(in, "spec.")
			var inv *invalidError
			if !errors.As(err, &inv) {
				t.Fatalf("specInvalid(%q) = %T %v, want *invalidError", in, err, err)
			}
			want := []*pcnodev1.Problem{{Field: "spec", Description: in.Error()}}
			if diff := cmp.Diff(want, []*pcnodev1.Problem(inv.problems), protocmp.Transform()); diff != "" {
				t.Errorf("specInvalid(%q) problems (-want +got):\n%s", in, diff)
			}
		})
	}
	for _, in := range []error{nil, errors.New("read failed"), fmt.Errorf("x: %w", runtime.ErrImageNotFound), context.Canceled} {
		if got := specInvalid(in, "spec."); got != in {
			t.Errorf("specInvalid(%v) = %v, want it unchanged", in, got)
		}
	}
}

func TestSubmitError(t *testing.T) {
	p := problems{{Field: "spec.name", Description: "b"}, {Field: "spec.image", Description: "a"}}
	for _, tc := range []struct {
		name string
		err  error
		want *pcnodev1.SubmitError
	}{
		{"invalid", fmt.Errorf("request 2: %w", invalid(p)), &pcnodev1.SubmitError{
			Code:     int32(codes.InvalidArgument),
			Message:  "spec.image: a (and 1 more)",
			Problems: []*pcnodev1.Problem{{Field: "spec.image", Description: "a"}, {Field: "spec.name", Description: "b"}},
		}},
		{"coded", WithCode(codes.ResourceExhausted, errors.New("needs 9 GPUs")), &pcnodev1.SubmitError{
			Code: int32(codes.ResourceExhausted), Message: "needs 9 GPUs",
		}},
		{"sentinel", fmt.Errorf("key k: %w", store.ErrKeyConflict), &pcnodev1.SubmitError{
			Code: int32(codes.AlreadyExists), Message: "key k: idempotency key already used with a different spec",
		}},
		{"spec problems", specInvalid(spec.Problems{{Field: "taskTemplate", Description: "unknown"}}, "spec."), &pcnodev1.SubmitError{
			Code: int32(codes.InvalidArgument), Message: "spec.template_identifier: unknown",
			Problems: []*pcnodev1.Problem{{Field: "spec.template_identifier", Description: "unknown"}},
		}},
		{"internal", errors.New("disk on fire"), &pcnodev1.SubmitError{Code: int32(codes.Internal), Message: "disk on fire"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, SubmitError(tc.err), protocmp.Transform()); diff != "" {
				t.Errorf("submitError(%q) (-want +got):\n%s", tc.err, diff)
			}
		})
	}
}

func TestProblemsAddErr(t *testing.T) {
	root := t.TempDir()
	pol, err := hostpath.New([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	_, outside := pol.Check("spec.inputs[2].host_path", "/etc", true)
	_, relative := pol.Check("spec.outputs[0].host_path", "data/out", false)
	_, missing := pol.Check("spec.inputs[0].host_path", root+"/nope", true)
	for _, tc := range []struct {
		name string
		err  error
		want []*pcnodev1.Problem
	}{
		{"host path error", &hostpath.Error{Field: "spec.inputs[0].host_path", Path: "/x", Reason: "is outside the data roots", Err: hostpath.ErrOutsideRoots},
			[]*pcnodev1.Problem{{Field: "spec.inputs[0].host_path", Description: "is outside the data roots"}}},
		{"wrapped host path error", fmt.Errorf("checking: %w", &hostpath.Error{Field: "f", Reason: "r", Err: hostpath.ErrNotClean}),
			[]*pcnodev1.Problem{{Field: "f", Description: "r"}}},
		{"invalid error", invalid(problems{{Field: "a", Description: "1"}, {Field: "b", Description: "2"}}),
			[]*pcnodev1.Problem{{Field: "a", Description: "1"}, {Field: "b", Description: "2"}}},
		{"other error", errors.New("I/O error"), []*pcnodev1.Problem{{Field: "", Description: "I/O error"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p problems
			p.addErr(tc.err)
			if diff := cmp.Diff(tc.want, []*pcnodev1.Problem(p), protocmp.Transform()); diff != "" {
				t.Errorf("addErr(%q) (-want +got):\n%s", tc.err, diff)
			}
		})
	}
	// Real refusals from the policy keep the caller's field and a reason
	// that is not empty and does not repeat the field.
	for _, tc := range []struct {
		err   error
		field string
	}{
		{outside, "spec.inputs[2].host_path"},
		{relative, "spec.outputs[0].host_path"},
		{missing, "spec.inputs[0].host_path"},
	} {
		var p problems
		p.addErr(tc.err)
		if len(p) != 1 || p[0].GetField() != tc.field || p[0].GetDescription() == "" || p[0].GetDescription() == tc.err.Error() {
			t.Errorf("addErr(%q) = %v, want one problem for %s with the reason only", tc.err, p, tc.field)
		}
	}
}
