package client

import (
	"cmp"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Backoff between reconnects of a resuming stream: doubling from
// resumeInitial to resumeMax, with ±20 % jitter, back to the start after a
// stream that delivered something.
var (
	resumeInitial = 100 * time.Millisecond
	resumeMax     = 5 * time.Second
)

// backoff is exponential backoff with ±20 % jitter, doubling from min to
// max; the zero value goes from resumeInitial to resumeMax.
type backoff struct{ min, max, next time.Duration }

// reset starts again from min.
func (b *backoff) reset() { b.next = 0 }

// wait sleeps the next backoff or until ctx is done.
func (b *backoff) wait(ctx context.Context) error {
	lo, hi := cmp.Or(b.min, resumeInitial), cmp.Or(b.max, resumeMax)
	if b.next == 0 {
		b.next = lo
	}
	d := time.Duration(float64(b.next) * (0.8 + 0.4*rand.Float64()))
	b.next = min(2*b.next, hi)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// resumable reports whether a stream that failed with err is worth opening
// again: the daemon was unreachable or the connection (or the stream on
// it) was reset. Everything else (NotFound, PermissionDenied, OutOfRange, a
// stream cap) is final.
func resumable(err error) bool {
	switch Code(err) {
	case codes.Unavailable:
		return true
	case codes.Internal:
		// grpc-go's words for an HTTP/2 RST_STREAM it did not expect.
		return strings.Contains(err.Error(), "RST_STREAM")
	}
	return false
}

// FollowLogs streams the log of task taskID from the entry after sequence
// afterSeq (0: from the start) until the task has finished, calling fn
// with every batch of entries and every gap, in order. When the stream
// drops (the daemon restarts, the network or a proxy cuts it) it opens it
// again with backoff after the last sequence delivered, so fn sees every
// entry once, without gaps other than the LogGap responses the daemon sends
// for entries rotated away. It returns nil once the task has finished and
// its log was delivered, fn's error as is, ctx's error, or the first error
// that is not a dropped stream (ErrNotFound for an unknown task).
func (c *Client) FollowLogs(ctx context.Context, taskID string, afterSeq uint64, fn func(*pcnodev1.StreamLogsResponse) error) error {
	last := afterSeq
	var bo backoff
	for {
		delivered, err := c.followOnce(ctx, taskID, &last, fn)
		if errors.Is(err, errFn) {
			return errors.Unwrap(err)
		}
		if errors.Is(err, io.EOF) {
			// The daemon ends a follow when the task has finished; an end
			// for another reason (a shutdown) is a drop like any other.
			resp, gerr := c.Tasks.GetTask(ctx, &pcnodev1.GetTaskRequest{TaskId: taskID})
			if gerr == nil && isFinal(resp.GetTask().GetState()) {
				return nil
			}
			err = gerr
		}
		if err != nil && !resumable(err) {
			return FromError(err)
		}
		if delivered {
			bo.reset()
		}
		if err := bo.wait(ctx); err != nil {
			return err
		}
	}
}

// errFn marks an error that fn returned.
var errFn = errors.New("callback")

type fnError struct{ err error }

func (e fnError) Error() string        { return e.err.Error() }
func (e fnError) Unwrap() error        { return e.err }
func (e fnError) Is(target error) bool { return target == errFn }

// followOnce is one StreamLogs stream; *last advances with every entry or
// gap passed to fn.
func (c *Client) followOnce(ctx context.Context, taskID string, last *uint64, fn func(*pcnodev1.StreamLogsResponse) error) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Tasks.StreamLogs(ctx, &pcnodev1.StreamLogsRequest{TaskId: taskID, Follow: true, AfterSequence: *last})
	if err != nil {
		return false, err
	}
	delivered := false
	for {
		resp, err := stream.Recv()
		if err != nil {
			return delivered, err
		}
		out := &pcnodev1.StreamLogsResponse{}
		if g := resp.GetGap(); g != nil {
			if g.GetLastMissedSequence() <= *last {
				continue
			}
			out.Gap = &pcnodev1.LogGap{FirstMissedSequence: max(g.GetFirstMissedSequence(), *last+1), LastMissedSequence: g.GetLastMissedSequence()}
			*last = g.GetLastMissedSequence()
		} else {
			for _, e := range resp.GetEntries() {
				if e.GetSequence() > *last {
					out.Entries = append(out.Entries, e)
					*last = e.GetSequence()
				}
			}
			if len(out.Entries) == 0 {
				continue
			}
		}
		delivered = true
		if err := fn(out); err != nil {
			return delivered, fnError{err}
		}
	}
}

// WatchTasks follows every state change on the node that req selects,
// calling fn with each event in order. When the stream drops it opens it
// again with backoff, with after_revision set to the highest revision
// delivered (and send_initial off), so fn sees every later change once and
// in order. A revision older than the daemon keeps ends it with an error
// matching ErrOutOfRange whose *Error carries OldestRevision: re-list
// (ListTasks) and watch again. A stream the daemon ended because the
// watcher fell behind (ResourceExhausted after events) is resumed the same
// way. It returns fn's error as is, ctx's error, or the first error that is
// not a dropped stream (ErrResourceExhausted when the stream cap refuses it).
func (c *Client) WatchTasks(ctx context.Context, req *pcnodev1.WatchTasksRequest, fn func(*pcnodev1.TaskEvent) error) error {
	cur := proto.CloneOf(req)
	if cur == nil {
		cur = &pcnodev1.WatchTasksRequest{}
	}
	var bo backoff
	for {
		delivered, err := c.watchOnce(ctx, cur, fn)
		if errors.Is(err, errFn) {
			return errors.Unwrap(err)
		}
		// A watch that fell too far behind is ended with ResourceExhausted
		// after it delivered events; the daemon asks it to resume from its
		// last revision. ResourceExhausted before any event is a stream cap.
		fellBehind := delivered && Code(err) == codes.ResourceExhausted
		if !errors.Is(err, io.EOF) && !resumable(err) && !fellBehind {
			return FromError(err)
		}
		if delivered {
			bo.reset()
		}
		if err := bo.wait(ctx); err != nil {
			return err
		}
	}
}

// watchOnce is one WatchTasks stream; req's after_revision advances with
// every event passed to fn.
func (c *Client) watchOnce(ctx context.Context, req *pcnodev1.WatchTasksRequest, fn func(*pcnodev1.TaskEvent) error) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Tasks.WatchTasks(ctx, req)
	if err != nil {
		return false, err
	}
	// On a resumed stream (no snapshot) nothing at or below from is new.
	from, resumed := req.GetAfterRevision(), !req.GetSendInitial()
	delivered := false
	for {
		resp, err := stream.Recv()
		if err != nil {
			return delivered, err
		}
		ev := resp.GetEvent()
		rev := ev.GetRevision()
		if resumed && rev != 0 && rev <= from {
			continue // already delivered before the resume
		}
		if rev > req.GetAfterRevision() {
			req.AfterRevision = rev
			req.SendInitial = false
		}
		delivered = true
		if err := fn(ev); err != nil {
			return delivered, fnError{err}
		}
	}
}
