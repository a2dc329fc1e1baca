package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pcnode/pcnode/daemon"
	"github.com/pcnode/pcnode/daemon/logs"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// taskNode is what TaskService needs of the node: the local node's task
// operations (*daemon.Daemon: local_tasks.go, submit.go, runner.go). The
// service sees nothing else of the daemon: no store, runtime or scheduler.
type taskNode interface {
	Submit(ctx context.Context, req *pcnodev1.SubmitTaskRequest) (*pcnodev1.Task, bool, error)
	GetTask(ctx context.Context, id string) (*pcnodev1.Task, error)
	TaskChange(ctx context.Context, id string) (store.Change, error)
	ListTasksEncoded(ctx context.Context, q daemon.TaskQuery) ([][]byte, string, error)
	TaskOutputs(ctx context.Context, id string, pageSize int, pageToken string) ([]*pcnodev1.OutputManifest, string, error)
	RequestCancel(ctx context.Context, id string, grace *durationpb.Duration) (*pcnodev1.Task, error)
	DeleteTask(ctx context.Context, id string) error
	ResolveFit(ctx context.Context, s *pcnodev1.TaskSpec) (res *daemon.Resolution, fitsNow, fitsNode bool, err error)
	SubscribeTasks(buffer int, filter func(*pcnodev1.TaskEvent) bool) *daemon.Subscription
	UnsubscribeTasks(sub *daemon.Subscription)
	ChangesAfter(ctx context.Context, after uint64) ([]store.Change, store.Revisions, error)
	UnfinishedChanges(ctx context.Context) ([]store.Change, store.Revisions, error)
	ReadTaskLog(ctx context.Context, id string, opts logs.ReadOptions, fn func([]logs.Entry) error) error
	ReadLog(ctx context.Context, id string, opts logs.ReadOptions, fn func([]logs.Entry) error) error
}

var _ taskNode = (*daemon.Daemon)(nil)

// taskService is TaskService: each RPC checks and converts its request,
// calls the local node (d) and converts the result; streaming loops are
// here.
type taskService struct {
	pcnodev1.UnimplementedTaskServiceServer
	d taskNode
}

func requireID(field, id string) error {
	if !store.ValidID(id) {
		var p problems
		p.add(field, "%q is not a task id", id)
		return invalid(p)
	}
	return nil
}

func (s *taskService) SubmitTask(ctx context.Context, req *pcnodev1.SubmitTaskRequest) (*pcnodev1.SubmitTaskResponse, error) {
	t, existing, err := s.d.Submit(ctx, req)
	if err != nil {
		return nil, err
	}
	return &pcnodev1.SubmitTaskResponse{Task: t, Existing: existing}, nil
}

func (s *taskService) SubmitTasks(stream pcnodev1.TaskService_SubmitTasksServer) error {
	ctx := stream.Context()
	for i := int64(0); ; i++ {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &pcnodev1.SubmitTasksResponse{Index: i}
		if t, _, err := s.d.Submit(ctx, req.GetSubmit()); err != nil {
			se := daemon.SubmitError(err)
			se.Problems = boundProblems(se.GetProblems(), responseProblemsBytes)
			resp.Result = &pcnodev1.SubmitTasksResponse_Error{Error: se}
		} else {
			resp.Result = &pcnodev1.SubmitTasksResponse_Task{Task: t}
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func (s *taskService) GetTask(ctx context.Context, req *pcnodev1.GetTaskRequest) (*pcnodev1.GetTaskResponse, error) {
	if err := requireID("task_id", req.GetTaskId()); err != nil {
		return nil, err
	}
	t, err := s.d.GetTask(ctx, req.GetTaskId())
	if err != nil {
		return nil, err
	}
	return &pcnodev1.GetTaskResponse{Task: t}, nil
}

func (s *taskService) ListTasks(ctx context.Context, req *pcnodev1.ListTasksRequest) (*pcnodev1.ListTasksResponse, error) {
	var p problems
	if req.GetPageSize() < 0 || req.GetPageSize() > 1000 {
		p.add("page_size", "must be 0..1000")
	}
	for i, st := range req.GetStates() {
		if _, ok := pcnodev1.TaskState_name[int32(st)]; !ok || st == pcnodev1.TaskState_TASK_STATE_UNSPECIFIED {
			p.add("states", "entry %d: %v is not a task state", i, st)
		}
	}
	if len(p) > 0 {
		return nil, invalid(p)
	}
	tasks, next, err := s.d.ListTasksEncoded(ctx, daemon.TaskQuery{
		States: req.GetStates(), Labels: req.GetLabels(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken(),
	})
	if err != nil {
		return nil, pageTokenInvalid(err)
	}
	return encodedTasksResponse(tasks, next), nil
}

// listTasksField is the number of ListTasksResponse.tasks.
var listTasksField = (&pcnodev1.ListTasksResponse{}).ProtoReflect().Descriptor().Fields().ByName("tasks").Number()

// encodedTasksResponse is the ListTasksResponse of a page of encoded tasks
// (Task messages' wire bytes) and its next page token. The tasks go into
// the message's unknown fields as entries of field tasks, which marshalling
// writes as they are: on the wire it is the response with tasks set, and a
// client decodes them as Tasks, but the daemon neither decodes the stored
// records nor encodes them again: with 100k finished tasks a page of 100
// took a median 1.5 ms in the daemon that way (decode, then size and
// marshal), 0.23 ms like this. In this process GetTasks() of it is empty:
// nothing between here and the wire reads it.
func encodedTasksResponse(tasks [][]byte, next string) *pcnodev1.ListTasksResponse {
	n := 0
	for _, t := range tasks {
		n += protowire.SizeTag(listTasksField) + protowire.SizeBytes(len(t))
	}
	raw := make([]byte, 0, n)
	for _, t := range tasks {
		raw = protowire.AppendTag(raw, listTasksField, protowire.BytesType)
		raw = protowire.AppendBytes(raw, t)
	}
	resp := &pcnodev1.ListTasksResponse{NextPageToken: next}
	if len(raw) > 0 {
		resp.ProtoReflect().SetUnknown(raw)
	}
	return resp
}

// pageTokenInvalid turns a refused page token into a page_token field
// violation; other errors pass through.
func pageTokenInvalid(err error) error {
	if errors.Is(err, store.ErrInvalidPageToken) {
		var p problems
		p.add("page_token", "%v", err)
		return invalid(p)
	}
	return err
}

// maxCancelGrace is the longest grace_period a CancelTask may ask for: a
// longer one is a mistake (a unit or a sign), never a wait anyone means.
const maxCancelGrace = 24 * time.Hour

func (s *taskService) CancelTask(ctx context.Context, req *pcnodev1.CancelTaskRequest) (*pcnodev1.CancelTaskResponse, error) {
	if err := requireID("task_id", req.GetTaskId()); err != nil {
		return nil, err
	}
	if g := req.GetGracePeriod(); g != nil {
		var p problems
		switch err := g.CheckValid(); {
		case err != nil:
			p.add("grace_period", "%v", err)
		case g.AsDuration() < 0:
			p.add("grace_period", "must not be negative, got %s", g.AsDuration())
		case g.AsDuration() > maxCancelGrace:
			p.add("grace_period", "must be at most %s, got %s", maxCancelGrace, g.AsDuration())
		}
		if len(p) > 0 {
			return nil, invalid(p)
		}
	}
	t, err := s.d.RequestCancel(ctx, req.GetTaskId(), req.GetGracePeriod())
	if err != nil {
		return nil, err
	}
	return &pcnodev1.CancelTaskResponse{Task: t}, nil
}

func (s *taskService) DeleteTask(ctx context.Context, req *pcnodev1.DeleteTaskRequest) (*pcnodev1.DeleteTaskResponse, error) {
	if err := requireID("task_id", req.GetTaskId()); err != nil {
		return nil, err
	}
	if err := s.d.DeleteTask(ctx, req.GetTaskId()); err != nil {
		return nil, err
	}
	return &pcnodev1.DeleteTaskResponse{}, nil
}

func (s *taskService) GetTaskOutputs(ctx context.Context, req *pcnodev1.GetTaskOutputsRequest) (*pcnodev1.GetTaskOutputsResponse, error) {
	var p problems
	if !store.ValidID(req.GetTaskId()) {
		p.add("task_id", "%q is not a task id", req.GetTaskId())
	}
	if n := req.GetPageSize(); n < 0 || n > maxOutputsPageSize {
		p.add("page_size", "must be 0..%d, got %d", maxOutputsPageSize, n)
	}
	if len(p) > 0 {
		return nil, invalid(p)
	}
	m, next, err := s.d.TaskOutputs(ctx, req.GetTaskId(), int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, pageTokenInvalid(err)
	}
	return &pcnodev1.GetTaskOutputsResponse{Manifests: m, NextPageToken: next}, nil
}

func (s *taskService) ResolveTask(ctx context.Context, req *pcnodev1.ResolveTaskRequest) (*pcnodev1.ResolveTaskResponse, error) {
	res, now, ever, err := s.d.ResolveFit(ctx, req.GetSpec())
	if ps, ok := daemon.InvalidProblems(err); ok {
		return &pcnodev1.ResolveTaskResponse{Problems: ps}, nil
	}
	if err != nil {
		return nil, err
	}
	return &pcnodev1.ResolveTaskResponse{Instance: res.Instance(), FitsNow: now, FitsNode: ever, Warnings: res.Warnings()}, nil
}

// WatchBuffer is how many events a WatchTasks stream may fall behind the
// node before it is ended (RESOURCE_EXHAUSTED, resumable from its revision).
const WatchBuffer = 4096

// WatchTasks sends state changes. It subscribes before it reads the store,
// so nothing written in between is missed, and sends a change only when its
// revision is above the last one it went past, so nothing is sent twice and
// no older state follows a newer one: with after_revision it replays the
// history after it, then follows; with send_initial it sends the unfinished
// tasks as they were at one revision, then follows from that revision.
// after_revision takes precedence over send_initial.
func (s *taskService) WatchTasks(req *pcnodev1.WatchTasksRequest, stream pcnodev1.TaskService_WatchTasksServer) error {
	ctx := stream.Context()
	match := func(t *pcnodev1.Task) bool {
		for k, v := range req.GetLabels() {
			if t.GetSpec().GetLabels()[k] != v {
				return false
			}
		}
		return true
	}
	sub := s.d.SubscribeTasks(WatchBuffer, func(ev *pcnodev1.TaskEvent) bool {
		return ev.GetStateChange() != nil && match(ev.GetStateChange())
	})
	defer s.d.UnsubscribeTasks(sub)

	// last is the newest revision this stream has gone past: sent, or
	// skipped by the label filter.
	last := req.GetAfterRevision()
	var page []store.Change
	if last > 0 {
		var revs store.Revisions
		var err error
		// The first page is read before the headers, so a refused resume
		// point is the call's status.
		if page, revs, err = s.d.ChangesAfter(ctx, last); err != nil {
			return resumeError(err, last, revs)
		}
	}
	// Headers tell the caller the watch is live before any event.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	send := func(c store.Change) error {
		last = c.Revision
		if !match(c.Task) {
			return nil
		}
		return stream.Send(&pcnodev1.WatchTasksResponse{Event: daemon.ChangeEvent(c)})
	}
	switch {
	case last > 0:
		for {
			for _, c := range page {
				if err := send(c); err != nil {
					return err
				}
			}
			if len(page) < store.DefaultChangesLimit {
				break
			}
			var revs store.Revisions
			var err error
			if page, revs, err = s.d.ChangesAfter(ctx, last); err != nil {
				return resumeError(err, last, revs)
			}
		}
	case req.GetSendInitial():
		tasks, revs, err := s.d.UnfinishedChanges(ctx)
		if err != nil {
			return err
		}
		for _, c := range tasks {
			if !match(c.Task) {
				continue
			}
			if err := stream.Send(&pcnodev1.WatchTasksResponse{Event: daemon.ChangeEvent(c)}); err != nil {
				return err
			}
		}
		// The snapshot is the node at revision Current: what came before
		// is in it.
		last = revs.Current
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-sub.C:
			if !ok {
				if last == 0 {
					return daemon.WithCode(codes.ResourceExhausted, fmt.Errorf("watcher fell more than %d events behind; watch again (with send_initial) to resynchronise", WatchBuffer))
				}
				return daemon.WithCode(codes.ResourceExhausted, fmt.Errorf("watcher fell more than %d events behind after revision %d; watch again with after_revision %d to resume where it stopped", WatchBuffer, last, last))
			}
			if ev.GetRevision() <= last {
				continue
			}
			last = ev.GetRevision()
			if err := stream.Send(&pcnodev1.WatchTasksResponse{Event: ev}); err != nil {
				return err
			}
		}
	}
}

// resumeError turns the store's refusal of a resume point into the status
// the API documents: OUT_OF_RANGE with ErrorInfo REVISION_COMPACTED and the
// oldest revision kept for one the history no longer reaches, and
// INVALID_ARGUMENT on after_revision for one not yet written.
func resumeError(err error, after uint64, revs store.Revisions) error {
	switch {
	case errors.Is(err, store.ErrCompacted):
		st := status.New(codes.OutOfRange, fmt.Sprintf(
			"after_revision %d is older than the node keeps (oldest revision kept is %d, [tasks] watch_history): list the tasks again and watch with send_initial",
			after, revs.Oldest))
		if d, derr := st.WithDetails(&errdetails.ErrorInfo{
			Reason:   "REVISION_COMPACTED",
			Domain:   "pcnode",
			Metadata: map[string]string{"oldest_revision": strconv.FormatUint(revs.Oldest, 10)},
		}); derr == nil {
			st = d
		}
		return st.Err()
	case errors.Is(err, store.ErrFutureRevision):
		var p problems
		p.add("after_revision", "revision %d has not been written yet: the newest on this node is %d", after, revs.Current)
		return invalid(p)
	}
	return err
}

func logReadOptions(req *pcnodev1.StreamLogsRequest) (logs.ReadOptions, error) {
	var p problems
	opts := logs.ReadOptions{AfterSequence: req.GetAfterSequence(), Follow: req.GetFollow()}
	if req.GetTailLines() < 0 {
		p.add("tail_lines", "must not be negative")
	}
	opts.TailLines = int(req.GetTailLines())
	if ts := req.GetSince(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			p.add("since", "%v", err)
		}
		opts.Since = ts.AsTime()
	}
	switch req.GetStream() {
	case pcnodev1.LogStream_LOG_STREAM_UNSPECIFIED:
		opts.Stream = logs.StreamBoth
	case pcnodev1.LogStream_LOG_STREAM_STDOUT:
		opts.Stream = logs.StreamStdout
	case pcnodev1.LogStream_LOG_STREAM_STDERR:
		opts.Stream = logs.StreamStderr
	default:
		p.add("stream", "unknown stream %d", req.GetStream())
	}
	if len(p) > 0 {
		return opts, invalid(p)
	}
	return opts, nil
}

func (s *taskService) StreamLogs(req *pcnodev1.StreamLogsRequest, stream pcnodev1.TaskService_StreamLogsServer) error {
	if err := requireID("task_id", req.GetTaskId()); err != nil {
		return err
	}
	opts, err := logReadOptions(req)
	if err != nil {
		return err
	}
	ctx := stream.Context()
	opts.OnGap = func(g logs.Gap) error {
		return stream.Send(&pcnodev1.StreamLogsResponse{Gap: logGapToProto(g)})
	}
	// One response and its entries are reused for every batch: Send has
	// encoded them when it returns, and the reader reuses the batch too.
	var (
		resp    pcnodev1.StreamLogsResponse
		entries []pcnodev1.LogEntry
		times   []timestamppb.Timestamp
	)
	// A finished task's log is read once it is sealed (readTaskLog).
	return s.d.ReadTaskLog(ctx, req.GetTaskId(), opts, func(es []logs.Entry) error {
		if len(es) > len(entries) {
			entries = make([]pcnodev1.LogEntry, len(es))
			times = make([]timestamppb.Timestamp, len(es))
		}
		resp.Entries = resp.Entries[:0]
		for i, e := range es {
			le := &entries[i]
			setLogEntry(le, &times[i], e)
			resp.Entries = append(resp.Entries, le)
		}
		err := stream.Send(&resp)
		clear(resp.Entries)
		for i := range es {
			entries[i].Data = nil
		}
		return err
	})
}

// setLogEntry fills le (and ts, its time) from e; Data aliases e.Data.
func setLogEntry(le *pcnodev1.LogEntry, ts *timestamppb.Timestamp, e logs.Entry) {
	ts.Seconds, ts.Nanos = e.Time.Unix(), int32(e.Time.Nanosecond())
	le.Sequence, le.Time, le.Data = e.Seq, ts, e.Data
	le.Stream = pcnodev1.LogStream_LOG_STREAM_STDOUT
	if e.Stream == logs.StreamStderr {
		le.Stream = pcnodev1.LogStream_LOG_STREAM_STDERR
	}
}

func logGapToProto(g logs.Gap) *pcnodev1.LogGap {
	return &pcnodev1.LogGap{FirstMissedSequence: g.First, LastMissedSequence: g.Last}
}

// RunTask submits (or attaches to) a task and streams its events to the end.
func (s *taskService) RunTask(req *pcnodev1.RunTaskRequest, stream pcnodev1.TaskService_RunTaskServer) error {
	ctx := stream.Context()
	var mu sync.Mutex
	send := func(ev *pcnodev1.TaskEvent) error {
		mu.Lock()
		defer mu.Unlock()
		return stream.Send(&pcnodev1.RunTaskResponse{Event: ev})
	}
	// Subscribe before submitting so no event is missed; filter by id once known.
	var id string
	var idMu sync.Mutex
	sub := s.d.SubscribeTasks(65536, func(ev *pcnodev1.TaskEvent) bool {
		idMu.Lock()
		defer idMu.Unlock()
		return id == "" || ev.GetTaskId() == id
	})
	defer func() { s.d.UnsubscribeTasks(sub) }()

	var task *pcnodev1.Task
	switch t := req.GetTarget().(type) {
	case *pcnodev1.RunTaskRequest_Submit:
		got, _, err := s.d.Submit(ctx, t.Submit)
		if err != nil {
			return err
		}
		task = got
	case *pcnodev1.RunTaskRequest_TaskId:
		if err := requireID("task_id", t.TaskId); err != nil {
			return err
		}
		got, err := s.d.GetTask(ctx, t.TaskId)
		if err != nil {
			return err
		}
		task = got
	default:
		var p problems
		p.add("target", "submit or task_id is required")
		return invalid(p)
	}
	idMu.Lock()
	id = task.GetId()
	idMu.Unlock()
	// The task as it is now, with the revision of its last state change:
	// the subscription may hold older changes, dropped below by revision.
	current, err := s.d.TaskChange(ctx, id)
	if err != nil {
		return err
	}

	// Logs follow in their own goroutine; the final state is sent after
	// the log has ended, so a caller sees every line before the result.
	logsDone := make(chan error, 1)
	if req.GetIncludeLogs() {
		go func() {
			opts := logs.ReadOptions{Follow: true}
			opts.OnGap = func(g logs.Gap) error {
				return send(&pcnodev1.TaskEvent{TaskId: id, Time: timestamppb.Now(), Event: &pcnodev1.TaskEvent_LogGap{LogGap: logGapToProto(g)}})
			}
			// One event is reused for every entry: send has encoded it
			// when it returns.
			var (
				le pcnodev1.LogEntry
				ts timestamppb.Timestamp
			)
			ev := &pcnodev1.TaskEvent{TaskId: id, Event: &pcnodev1.TaskEvent_Log{Log: &le}}
			logsDone <- s.d.ReadLog(ctx, id, opts, func(es []logs.Entry) error {
				for _, e := range es {
					setLogEntry(&le, &ts, e)
					ev.Time = &ts
					err := send(ev)
					le.Data = nil
					if err != nil {
						return err
					}
				}
				return nil
			})
		}()
	} else {
		logsDone <- nil
	}
	finalize := func(c store.Change) error {
		select {
		case <-logsDone:
		case <-time.After(15 * time.Second):
		case <-ctx.Done():
			return ctx.Err()
		}
		return send(daemon.ChangeEvent(c))
	}

	// The subscription began before the submit, so it already holds the
	// task's changes up to now, the submit's own QUEUED among them. Those
	// older than current are sent first, in order, so that a caller sees
	// the whole lifecycle even when the task moved on before current was
	// read; every held event then goes through the loop below like any
	// other (older state changes are skipped there by revision).
	var held []*pcnodev1.TaskEvent
drain:
	for {
		select {
		case ev, ok := <-sub.C:
			if !ok {
				break drain // dropped: the loop below sees the closed channel again
			}
			held = append(held, ev)
		default:
			break drain
		}
	}
	for _, ev := range held {
		if t := ev.GetStateChange(); t != nil && ev.GetTaskId() == id && ev.GetRevision() < current.Revision && !daemon.IsFinal(t.GetState()) {
			if err := send(ev); err != nil {
				return err
			}
		}
	}
	if daemon.IsFinal(current.Task.GetState()) {
		return finalize(current)
	}
	if err := send(daemon.ChangeEvent(current)); err != nil {
		return err
	}
	// The state just sent, and older ones, may also be waiting in the
	// subscription (the submit's own announcement): send each state
	// change once, in revision order.
	lastRev := current.Revision
	for {
		var ev *pcnodev1.TaskEvent
		ok := true
		if len(held) > 0 {
			ev, held = held[0], held[1:]
		} else {
			select {
			case <-ctx.Done():
				return nil
			case ev, ok = <-sub.C:
			}
		}
		if !ok {
			// Dropped for falling behind: resubscribe and re-read.
			sub = s.d.SubscribeTasks(65536, func(ev *pcnodev1.TaskEvent) bool { return ev.GetTaskId() == id })
			c, err := s.d.TaskChange(ctx, id)
			if err != nil {
				return err
			}
			if daemon.IsFinal(c.Task.GetState()) {
				return finalize(c)
			}
			if c.Revision > lastRev {
				lastRev = c.Revision
				if err := send(daemon.ChangeEvent(c)); err != nil {
					return err
				}
			}
			continue
		}
		if ev.GetTaskId() != id {
			continue
		}
		if t := ev.GetStateChange(); t != nil {
			if ev.GetRevision() <= lastRev {
				continue
			}
			lastRev = ev.GetRevision()
			if daemon.IsFinal(t.GetState()) {
				return finalize(store.Change{Revision: ev.GetRevision(), Task: t})
			}
		}
		if m := ev.GetOutputManifest(); m != nil {
			// A large manifest goes in parts that fit any client.
			for _, part := range splitManifest(m, eventManifestBytes) {
				if err := send(&pcnodev1.TaskEvent{TaskId: ev.GetTaskId(), Time: ev.GetTime(), Event: &pcnodev1.TaskEvent_OutputManifest{OutputManifest: part}}); err != nil {
					return err
				}
			}
			continue
		}
		if err := send(ev); err != nil {
			return err
		}
	}
}
