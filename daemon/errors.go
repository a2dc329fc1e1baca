package daemon

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/pcnode/pcnode/daemon/hostpath"
	"github.com/pcnode/pcnode/daemon/runtime"
	"github.com/pcnode/pcnode/daemon/sched"
	"github.com/pcnode/pcnode/daemon/spec"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// invalidError is a refused spec or request: every problem found, each with
// its field. It becomes INVALID_ARGUMENT (or code, when set: a spec that is
// well formed but names what the node lacks, such as a secret, is
// FAILED_PRECONDITION) with google.rpc.BadRequest details.
type invalidError struct {
	problems problems
	code     codes.Code
}

func (e *invalidError) Error() string {
	if len(e.problems) == 0 {
		return "invalid request"
	}
	msg := e.problems[0].GetField() + ": " + e.problems[0].GetDescription()
	if n := len(e.problems) - 1; n > 0 {
		msg += " (and " + itoa(n) + " more)"
	}
	return msg
}

// Invalid is the error of a refused request: every problem in ps, each
// with its field. The error mapper turns it into INVALID_ARGUMENT with
// google.rpc.BadRequest details.
func Invalid(ps []*pcnodev1.Problem) error { return invalid(problems(ps)) }

// InvalidProblems returns the problems of a refused spec or request (an
// error of Invalid, or one the node made the same way), and whether err is
// one.
func InvalidProblems(err error) ([]*pcnodev1.Problem, bool) {
	var inv *invalidError
	if !errors.As(err, &inv) {
		return nil, false
	}
	return inv.problems, true
}

func invalid(p problems) error {
	sort.SliceStable(p, func(i, j int) bool { return p[i].GetField() < p[j].GetField() })
	return &invalidError{problems: p}
}

// preconditionFailed is invalid with FAILED_PRECONDITION: each problem
// names a field whose value the node cannot honour now.
func preconditionFailed(p problems) error {
	sort.SliceStable(p, func(i, j int) bool { return p[i].GetField() < p[j].GetField() })
	return &invalidError{problems: p, code: codes.FailedPrecondition}
}

func itoa(n int) string { return strconv.Itoa(n) }

// codedError carries an explicit gRPC code for errors made in this package.
type codedError struct {
	code codes.Code
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// WithCode gives err the gRPC code the error mapper turns it into.
func WithCode(code codes.Code, err error) error { return &codedError{code: code, err: err} }

// toStatus turns an error into a gRPC status error. It is called once, at
// the service boundary.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var inv *invalidError
	if errors.As(err, &inv) {
		code := codes.InvalidArgument
		if inv.code != codes.OK {
			code = inv.code
		}
		st := status.New(code, inv.Error())
		br := &errdetails.BadRequest{}
		for _, p := range inv.problems {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
				Field: p.GetField(), Description: p.GetDescription(),
			})
		}
		if withDetails, derr := st.WithDetails(br); derr == nil {
			st = withDetails
		}
		return st.Err()
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return status.Error(ce.code, err.Error())
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(sentinelCode(err), err.Error())
}

// SubmitError describes a refused spec inside a SubmitTasks stream.
func SubmitError(err error) *pcnodev1.SubmitError {
	st, _ := status.FromError(toStatus(err))
	se := &pcnodev1.SubmitError{Code: int32(st.Code()), Message: st.Message()}
	var inv *invalidError
	if errors.As(err, &inv) {
		se.Problems = inv.problems
	}
	return se
}

// addErr adds a host path refusal (or any error) as a problem.
func (p *problems) addErr(err error) {
	var he *hostpath.Error
	if errors.As(err, &he) {
		p.add(he.Field, "%s", he.Reason)
		return
	}
	var inv *invalidError
	if errors.As(err, &inv) {
		*p = append(*p, inv.problems...)
		return
	}
	p.add("", "%v", err)
}

// specInvalid turns spec.Problems into an invalidError whose fields are
// prefixed with prefix ("spec." for a TaskSpec). Other errors pass through.
func specInvalid(err error, prefix string) error {
	var ps spec.Problems
	if !errors.As(err, &ps) {
		for _, s := range []error{spec.ErrSyntax, spec.ErrTooLarge, spec.ErrMissingEnv, spec.ErrPlaceholder, spec.ErrQuantity} {
			if errors.Is(err, s) {
				var p problems
				p.add(strings.TrimSuffix(prefix, "."), "%v", err)
				return invalid(p)
			}
		}
		return err
	}
	var p problems
	for _, x := range ps {
		f := x.Field
		if f == "" {
			f = strings.TrimSuffix(prefix, ".")
		} else {
			f = prefix + spec.APIField(f)
		}
		p.add(f, "%s", x.Description)
	}
	return invalid(p)
}

// sentinelCode maps the packages' sentinel errors to gRPC codes.
func sentinelCode(err error) codes.Code {
	switch {
	case errors.Is(err, runtime.ErrUnavailable):
		// The message names containerd and its address (runtime).
		return codes.Unavailable
	case errors.Is(err, store.ErrNotFound), errors.Is(err, runtime.ErrImageNotFound),
		errors.Is(err, errNoProcessingContainer), errors.Is(err, runtime.ErrFileNotFound):
		return codes.NotFound
	case errors.Is(err, store.ErrKeyConflict), errors.Is(err, store.ErrExists), errors.Is(err, runtime.ErrAlreadyExists):
		return codes.AlreadyExists
	case errors.Is(err, store.ErrInvalidArgument), errors.Is(err, store.ErrInvalidPageToken),
		errors.Is(err, runtime.ErrInvalidReference), errors.Is(err, runtime.ErrInvalidArchive),
		errors.Is(err, runtime.ErrInvalidArgument), errors.Is(err, spec.ErrInvalid), errors.Is(err, hostpath.ErrOutsideRoots),
		errors.Is(err, spec.ErrSyntax), errors.Is(err, spec.ErrTooLarge), errors.Is(err, runtime.ErrFileTooLarge),
		errors.Is(err, runtime.ErrNotRegularFile):
		return codes.InvalidArgument
	case errors.Is(err, sched.ErrNeverFits):
		return codes.ResourceExhausted
	case errors.Is(err, runtime.ErrUnauthorized):
		return codes.PermissionDenied
	case errors.Is(err, runtime.ErrDeviceUnavailable):
		return codes.FailedPrecondition
	case errors.Is(err, store.ErrClosed):
		return codes.Unavailable
	}
	return codes.Internal
}

func (d *Daemon) unaryErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	resp, err := h(ctx, req)
	if err != nil {
		err = toStatus(err)
		if status.Code(err) == codes.Internal {
			d.log.Error("internal error", "method", info.FullMethod, "err", err)
		}
	}
	return resp, err
}

func (d *Daemon) streamErrors(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	err := h(srv, ss)
	if err != nil {
		err = toStatus(err)
		if status.Code(err) == codes.Internal {
			d.log.Error("internal error", "method", info.FullMethod, "err", err)
		}
	}
	return err
}
