package client

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

func TestFromError(t *testing.T) {
	st := status.New(codes.InvalidArgument, "spec.inputs[0].host_path: outside the data roots (and 1 more)")
	st, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{
		{Field: "spec.inputs[0].host_path", Description: "outside the data roots"},
		{Field: "spec.image", Description: "required"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := FromError(st.Err())
	var e *Error
	if !errors.As(got, &e) {
		t.Fatalf("FromError() = %T, want *Error", got)
	}
	if e.Code != codes.InvalidArgument {
		t.Errorf("Code = %v, want InvalidArgument", e.Code)
	}
	want := []*pcnodev1.Problem{
		{Field: "spec.inputs[0].host_path", Description: "outside the data roots"},
		{Field: "spec.image", Description: "required"},
	}
	if diff := cmp.Diff(want, e.Violations, protocmp.Transform()); diff != "" {
		t.Errorf("Violations (-want +got):\n%s", diff)
	}
	if msg := got.Error(); !strings.Contains(msg, "spec.image: required") {
		t.Errorf("Error() = %q, want it to list every violation", msg)
	}
	if Code(got) != codes.InvalidArgument {
		t.Errorf("Code(FromError()) = %v, want InvalidArgument", Code(got))
	}
	if FromError(got) != got {
		t.Error("FromError(converted) converted it again")
	}
	if s, ok := status.FromError(got); !ok || s.Code() != codes.InvalidArgument || len(s.Details()) != 1 {
		t.Errorf("status.FromError(converted) = %v, %v; want the original status with its details", s, ok)
	}
}

func TestFromErrorOther(t *testing.T) {
	if FromError(nil) != nil {
		t.Error("FromError(nil) != nil")
	}
	plain := errors.New("plain")
	if got := FromError(plain); got != plain {
		t.Errorf("FromError(plain) = %v, want it unchanged", got)
	}
	if got := FromError(io.EOF); got != io.EOF {
		t.Errorf("FromError(io.EOF) = %v, want io.EOF unchanged", got)
	}
	if got := FromError(status.Error(codes.Unavailable, "connection refused")); !strings.Contains(got.Error(), "not reachable") {
		t.Errorf("FromError(Unavailable) = %q, want it to say the daemon is not reachable", got)
	}
	if Code(nil) != codes.OK {
		t.Errorf("Code(nil) = %v, want OK", Code(nil))
	}
}

// TestErrorsIs is the table of codes and what errors.Is matches.
func TestErrorsIs(t *testing.T) {
	all := []error{ErrNotFound, ErrInvalidArgument, ErrResourceExhausted, ErrPermissionDenied, ErrUnauthenticated,
		ErrAlreadyExists, ErrFailedPrecondition, ErrUnavailable, ErrOutOfRange, ErrUnimplemented,
		context.Canceled, context.DeadlineExceeded}
	for _, tc := range []struct {
		code codes.Code
		want error // nil: none of them
	}{
		{codes.NotFound, ErrNotFound},
		{codes.InvalidArgument, ErrInvalidArgument},
		{codes.ResourceExhausted, ErrResourceExhausted},
		{codes.PermissionDenied, ErrPermissionDenied},
		{codes.Unauthenticated, ErrUnauthenticated},
		{codes.AlreadyExists, ErrAlreadyExists},
		{codes.FailedPrecondition, ErrFailedPrecondition},
		{codes.Unavailable, ErrUnavailable},
		{codes.OutOfRange, ErrOutOfRange},
		{codes.Unimplemented, ErrUnimplemented},
		{codes.Canceled, context.Canceled},
		{codes.DeadlineExceeded, context.DeadlineExceeded},
		{codes.Internal, nil},
		{codes.Unknown, nil},
		{codes.Aborted, nil},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			err := FromError(status.Error(tc.code, "boom"))
			for _, s := range all {
				if got := errors.Is(err, s); got != (s == tc.want) {
					t.Errorf("errors.Is(%v error, %v) = %v, want %v", tc.code, s, got, !got)
				}
			}
		})
	}
}

// TestOutOfRangeRevision: the oldest revision of a compacted watch comes
// out of the ErrorInfo.
func TestOutOfRangeRevision(t *testing.T) {
	st, err := status.New(codes.OutOfRange, "after_revision 3 is compacted; the oldest kept is 120").WithDetails(
		&errdetails.ErrorInfo{Reason: ReasonRevisionCompacted, Domain: "pcnode", Metadata: map[string]string{"oldest_revision": "120"}})
	if err != nil {
		t.Fatal(err)
	}
	got := FromError(st.Err())
	var e *Error
	if !errors.Is(got, ErrOutOfRange) || !errors.As(got, &e) || e.OldestRevision != 120 || e.Reason != ReasonRevisionCompacted {
		t.Errorf("FromError(compacted) = %#v, want ErrOutOfRange with OldestRevision 120 and reason %s", got, ReasonRevisionCompacted)
	}
}

// TestErrorsConvertedAtTheBoundary: the generated clients of a Client
// already return *Error, for unary calls and streams.
func TestErrorsConvertedAtTheBoundary(t *testing.T) {
	st, err := status.New(codes.InvalidArgument, "spec.image: required").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "spec.image", Description: "required"}}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeTasks{
		submitTask: func(context.Context, *pcnodev1.SubmitTaskRequest) (*pcnodev1.SubmitTaskResponse, error) {
			return nil, st.Err()
		},
		getTask: func(_ context.Context, req *pcnodev1.GetTaskRequest) (*pcnodev1.GetTaskResponse, error) {
			return nil, status.Errorf(codes.NotFound, "task %q not found", req.GetTaskId())
		},
	}
	f.streamLogs = func(req *pcnodev1.StreamLogsRequest, _ grpc.ServerStreamingServer[pcnodev1.StreamLogsResponse]) error {
		return status.Errorf(codes.PermissionDenied, "StreamLogs needs role viewer")
	}
	c := dial(t, serveUnix(t, f))
	_, err = c.Tasks.SubmitTask(t.Context(), &pcnodev1.SubmitTaskRequest{})
	var e *Error
	if !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &e) || len(e.Violations) != 1 || e.Violations[0].GetField() != "spec.image" {
		t.Errorf("SubmitTask() = %#v, want ErrInvalidArgument naming spec.image", err)
	}
	// The generated clients' errors keep gRPC's wording; FromError gives
	// the text for people, with the details.
	if got, want := err.Error(), "rpc error: code = InvalidArgument desc = spec.image: required"; got != want {
		t.Errorf("SubmitTask() error text = %q, want %q", got, want)
	}
	human := FromError(err)
	if got := human.Error(); got != "spec.image: required" || !errors.Is(human, ErrInvalidArgument) || Code(human) != codes.InvalidArgument {
		t.Errorf("FromError(SubmitTask()) = %q (code %v), want the message alone, still InvalidArgument", got, Code(human))
	}
	if !errors.As(human, &e) || len(e.Violations) != 1 {
		t.Errorf("FromError(SubmitTask()) = %#v, want the violation kept", human)
	}
	if _, err := c.Tasks.GetTask(t.Context(), &pcnodev1.GetTaskRequest{TaskId: "nope"}); !errors.Is(err, ErrNotFound) || status.Code(err) != codes.NotFound {
		t.Errorf("GetTask(nope) = %v, want ErrNotFound (and status.Code NotFound)", err)
	}
	s, err := c.Tasks.StreamLogs(t.Context(), &pcnodev1.StreamLogsRequest{TaskId: "t"})
	if err == nil {
		_, err = s.Recv()
	}
	if !errors.Is(err, ErrPermissionDenied) {
		t.Errorf("StreamLogs().Recv() = %v, want ErrPermissionDenied", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Tasks.GetTask(ctx, &pcnodev1.GetTaskRequest{TaskId: "t"}); !errors.Is(err, context.Canceled) {
		t.Errorf("GetTask(cancelled ctx) = %v, want context.Canceled", err)
	}
}
