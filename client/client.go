package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// DefaultSocket is pcnoded's default API socket.
const DefaultSocket = "/run/pcnode/pcnoded.sock"

// EnvAddress names the environment variable that overrides the default address.
const EnvAddress = "PCNODE_ADDRESS"

// Client is a connection to one pcnoded.
type Client struct {
	conn   *grpc.ClientConn
	Tasks  pcnodev1.TaskServiceClient
	Nodes  pcnodev1.NodeServiceClient
	Images pcnodev1.ImageServiceClient
}

// DefaultAddress is $PCNODE_ADDRESS or DefaultSocket.
func DefaultAddress() string {
	if a := os.Getenv(EnvAddress); a != "" {
		return a
	}
	return DefaultSocket
}

// Dial connects to address: a unix socket path ("/run/pcnode/pcnoded.sock"
// or "unix:///…"). The connection is lazy; the first call reports an
// unreachable daemon.
func Dial(address string, opts ...grpc.DialOption) (*Client, error) {
	target := address
	switch {
	case strings.HasPrefix(address, "unix:"):
	case strings.HasPrefix(address, "/"):
		target = "unix://" + address
	default:
		return nil, fmt.Errorf("address %q: want a unix socket path (TCP needs TLS, which this client does not configure yet)", address)
	}
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20)),
	}, opts...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, err
	}
	return &Client{
		conn:   conn,
		Tasks:  pcnodev1.NewTaskServiceClient(conn),
		Nodes:  pcnodev1.NewNodeServiceClient(conn),
		Images: pcnodev1.NewImageServiceClient(conn),
	}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Error is a failed call: its gRPC code, message and field violations.
type Error struct {
	Code       codes.Code
	Message    string
	Violations []*pcnodev1.Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	for _, v := range e.Violations {
		if !strings.Contains(e.Message, v.GetField()+": "+v.GetDescription()) || len(e.Violations) > 1 {
			fmt.Fprintf(&b, "\n  %s: %s", v.GetField(), v.GetDescription())
		}
	}
	return b.String()
}

// FromError converts a gRPC error into *Error (other errors pass through).
// It is the one place where status errors become Go errors.
func FromError(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message()}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				e.Violations = append(e.Violations, &pcnodev1.Problem{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	if e.Code == codes.Unavailable {
		e.Message = "pcnoded is not reachable: " + e.Message
	}
	return e
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

// Run submits (or attaches to) a task and calls fn for every event until the
// task has finished; it returns the final task.
func (c *Client) Run(ctx context.Context, req *pcnodev1.RunTaskRequest, fn func(*pcnodev1.TaskEvent) error) (*pcnodev1.Task, error) {
	stream, err := c.Tasks.RunTask(ctx, req)
	if err != nil {
		return nil, FromError(err)
	}
	var last *pcnodev1.Task
	for {
		resp, err := stream.Recv()
		if err != nil {
			if last != nil && isFinal(last.GetState()) && errors.Is(err, io.EOF) {
				return last, nil
			}
			return last, FromError(err)
		}
		ev := resp.GetEvent()
		if t := ev.GetStateChange(); t != nil {
			last = t
		}
		if fn != nil {
			if err := fn(ev); err != nil {
				return last, err
			}
		}
	}
}

// IsFinal reports whether s is a final state.
func IsFinal(s pcnodev1.TaskState) bool { return isFinal(s) }

func isFinal(s pcnodev1.TaskState) bool {
	switch s {
	case pcnodev1.TaskState_TASK_STATE_SUCCEEDED, pcnodev1.TaskState_TASK_STATE_FAILED, pcnodev1.TaskState_TASK_STATE_CANCELLED:
		return true
	}
	return false
}
