package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Sentinel errors. Every error the client returns for a failed call is an
// *Error; errors.Is(err, ErrX) reports whether its gRPC code is the one named.
var (
	// ErrNotFound is returned when the task, image or other object named does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidArgument is returned when the request is invalid; the
	// *Error's Violations name each wrong field.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrResourceExhausted is returned when a limit was hit (a task that can
	// never fit the node, a stream cap); the message names the limit.
	ErrResourceExhausted = errors.New("resource exhausted")
	// ErrPermissionDenied is returned when the caller's identity lacks the role the call needs.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnauthenticated is returned when the daemon could not tell who the caller is.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrAlreadyExists is returned when an idempotency key was reused with a different spec.
	ErrAlreadyExists = errors.New("already exists")
	// ErrFailedPrecondition is returned when the object is in the wrong state
	// for the call (deleting a running task, submitting to a draining node).
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnavailable is returned when the daemon cannot be reached (or is
	// shutting down). Calls without side effects were already retried.
	ErrUnavailable = errors.New("unavailable")
	// ErrOutOfRange is returned when a watch asked to resume from a revision
	// older than the daemon keeps; the *Error's OldestRevision says which is
	// the oldest it has. Re-list, then watch again.
	ErrOutOfRange = errors.New("out of range")
	// ErrUnimplemented is returned when the daemon does not serve the call (an older pcnoded).
	ErrUnimplemented = errors.New("unimplemented")
)

// sentinels maps codes to the sentinel errors.Is matches. Canceled and
// DeadlineExceeded match the context package's errors instead.
var sentinels = map[codes.Code]error{
	codes.NotFound:           ErrNotFound,
	codes.InvalidArgument:    ErrInvalidArgument,
	codes.ResourceExhausted:  ErrResourceExhausted,
	codes.PermissionDenied:   ErrPermissionDenied,
	codes.Unauthenticated:    ErrUnauthenticated,
	codes.AlreadyExists:      ErrAlreadyExists,
	codes.FailedPrecondition: ErrFailedPrecondition,
	codes.Unavailable:        ErrUnavailable,
	codes.OutOfRange:         ErrOutOfRange,
	codes.Unimplemented:      ErrUnimplemented,
	codes.Canceled:           context.Canceled,
	codes.DeadlineExceeded:   context.DeadlineExceeded,
}

// ReasonRevisionCompacted is the ErrorInfo reason of a watch whose
// after_revision is older than the daemon keeps.
const ReasonRevisionCompacted = "REVISION_COMPACTED"

// Error is a failed call: its gRPC code, message and details.
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Message is the daemon's message.
	Message string
	// Violations are the BadRequest field violations of an InvalidArgument error.
	Violations []*pcnodev1.Problem
	// Reason and Metadata are the ErrorInfo detail, when the daemon sent one.
	Reason   string
	Metadata map[string]string
	// OldestRevision is the oldest revision a watch can resume from, set on
	// an ErrOutOfRange error of WatchTasks (ErrorInfo metadata "oldest_revision").
	OldestRevision uint64

	st *status.Status
	// grpcText: made by the connection's interceptors; Error reads as
	// gRPC's own text, so that what callers of the generated clients log or
	// match keeps its wording (and the code).
	grpcText bool
}

// Error is the daemon's message with every field violation. An *Error
// returned by the generated clients reads as gRPC's text ("rpc error: code
// = NotFound desc = …"); FromError turns it into the text for people.
func (e *Error) Error() string {
	if e.grpcText {
		return e.GRPCStatus().Err().Error()
	}
	var b strings.Builder
	b.WriteString(e.Message)
	for _, v := range e.Violations {
		if !strings.Contains(e.Message, v.GetField()+": "+v.GetDescription()) || len(e.Violations) > 1 {
			fmt.Fprintf(&b, "\n  %s: %s", v.GetField(), v.GetDescription())
		}
	}
	return b.String()
}

// Is reports whether target is the sentinel of e's code (context.Canceled
// and context.DeadlineExceeded for those codes).
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.Code]
	return ok && s == target
}

// GRPCStatus returns the status e was made from, so that status.Code and
// status.FromError keep working on converted errors.
func (e *Error) GRPCStatus() *status.Status {
	if e.st != nil {
		return e.st
	}
	return status.New(e.Code, e.Message)
}

// FromError converts a gRPC error into *Error (other errors, io.EOF among
// them, pass through). It is the one place where status errors become Go
// errors; an error already converted keeps its details (and is given the
// text for people, see Error.Error).
func FromError(err error) error {
	if e, ok := err.(*Error); ok && e.grpcText {
		c := *e
		c.grpcText = false
		return &c
	}
	return convert(err)
}

// convert is FromError for the interceptors.
func convert(err error) error {
	if err == nil {
		return nil
	}
	var done *Error
	if errors.As(err, &done) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message(), st: st}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				e.Violations = append(e.Violations, &pcnodev1.Problem{Field: v.GetField(), Description: v.GetDescription()})
			}
		case *errdetails.ErrorInfo:
			e.Reason, e.Metadata = d.GetReason(), d.GetMetadata()
			if r, err := strconv.ParseUint(d.GetMetadata()["oldest_revision"], 10, 64); err == nil {
				e.OldestRevision = r
			}
		}
	}
	if e.Code == codes.Unavailable {
		e.Message = "pcnoded is not reachable: " + e.Message
	}
	return e
}

// grpcError is convert for the interceptors: an *Error that reads as gRPC's text.
func grpcError(err error) error {
	c := convert(err)
	if e, ok := c.(*Error); ok && c != err {
		e.grpcText = true
	}
	return c
}

// Code returns err's gRPC code (codes.Unknown for non-API errors, OK for nil).
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return status.Code(err)
}

// unaryErrors converts every unary call's error once, at the boundary, so
// that the generated clients of a Client return *Error too.
func unaryErrors(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	return grpcError(invoker(ctx, method, req, reply, cc, opts...))
}

// streamErrors does the same for streams: opening them, and every Send,
// Recv and Header.
func streamErrors(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, grpcError(err)
	}
	return convertingStream{s}, nil
}

type convertingStream struct{ grpc.ClientStream }

func (s convertingStream) SendMsg(m any) error { return grpcError(s.ClientStream.SendMsg(m)) }
func (s convertingStream) RecvMsg(m any) error { return grpcError(s.ClientStream.RecvMsg(m)) }
func (s convertingStream) CloseSend() error    { return grpcError(s.ClientStream.CloseSend()) }
