package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Run submits (or attaches to) a task and calls fn for every event until the
// task has finished; it returns the final task. An error from fn ends the
// stream and is returned as is.
func (c *Client) Run(ctx context.Context, req *pcnodev1.RunTaskRequest, fn func(*pcnodev1.TaskEvent) error) (*pcnodev1.Task, error) {
	var last *pcnodev1.Task
	for ev, err := range c.RunEvents(ctx, req) {
		if err != nil {
			return last, err
		}
		if t := ev.GetStateChange(); t != nil {
			last = t
		}
		if fn != nil {
			if err := fn(ev); err != nil {
				return last, err
			}
		}
	}
	return last, nil
}

// RunEvents submits (or attaches to) a task and yields every event until
// the task has finished; the last event is its final state change. A
// failure is yielded once, with a nil event, and ends the sequence; a stream
// that ends before the task finished yields an error wrapping
// io.ErrUnexpectedEOF. Breaking out of the loop cancels the stream.
func (c *Client) RunEvents(ctx context.Context, req *pcnodev1.RunTaskRequest) iter.Seq2[*pcnodev1.TaskEvent, error] {
	return func(yield func(*pcnodev1.TaskEvent, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.Tasks.RunTask(ctx, req)
		if err != nil {
			yield(nil, FromError(err))
			return
		}
		var last *pcnodev1.Task
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				if last == nil || !isFinal(last.GetState()) {
					yield(nil, fmt.Errorf("RunTask: stream ended before the task finished (last state %v): %w", last.GetState(), io.ErrUnexpectedEOF))
				}
				return
			}
			if err != nil {
				yield(nil, FromError(err))
				return
			}
			ev := resp.GetEvent()
			if t := ev.GetStateChange(); t != nil {
				last = t
			}
			if !yield(ev, nil) {
				return
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
