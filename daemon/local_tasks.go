package daemon

import (
	"context"
	"errors"
	"os"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pcnode/pcnode/daemon/logs"
	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// The local node's task operations: what TaskService (daemon/server)
// calls once it has checked and converted a request. Submitting and
// queueing are in submit.go, a task's lifecycle in runner.go and step_*.go.
// Errors are the store's and runtime's sentinels, wrapped, or carry their
// code (WithCode, Invalid); the error mapper (errors.go) turns them into
// status.

// GetTask returns the stored task id.
func (d *Daemon) GetTask(ctx context.Context, id string) (*pcnodev1.Task, error) {
	return d.store.GetTask(ctx, id)
}

// TaskChange returns task id as stored, with the revision of its last
// state change.
func (d *Daemon) TaskChange(ctx context.Context, id string) (store.Change, error) {
	return d.store.GetTaskChange(ctx, id)
}

// TaskQuery is what ListTasks selects: tasks in any of states (all when
// empty) whose labels include labels, one page of at most pageSize after
// pageToken.
type TaskQuery struct {
	States    []pcnodev1.TaskState
	Labels    map[string]string
	PageSize  int
	PageToken string
}

// ListTasksEncoded returns one page of the tasks q selects, each as its
// stored protobuf encoding (store.ListTasksEncoded: what the page carries
// on the wire, with no decode and encode between), at most
// store.DefaultPageBytes encoded, and the token of the next page ("" at the
// end). A token the store refuses is an error wrapping
// store.ErrInvalidPageToken.
func (d *Daemon) ListTasksEncoded(ctx context.Context, q TaskQuery) ([][]byte, string, error) {
	return d.store.ListTasksEncoded(ctx, store.ListOptions{
		States: q.States, Labels: q.Labels, PageSize: q.PageSize, PageToken: q.PageToken,
		MaxBytes: store.DefaultPageBytes,
	})
}

// TaskOutputs returns one page of task id's output manifests, at most
// store.DefaultPageBytes encoded, and the next page's token.
func (d *Daemon) TaskOutputs(ctx context.Context, id string, pageSize int, pageToken string) ([]*pcnodev1.OutputManifest, string, error) {
	return d.store.GetOutputsPage(ctx, id, store.OutputsOptions{
		PageSize: pageSize, PageToken: pageToken, MaxBytes: store.DefaultPageBytes,
	})
}

// RequestCancel cancels task id for the caller of ctx, who must own it unless an
// admin (ownTask), and returns the task as it is then (cancelTask, with
// grace the caller's grace period, nil for none).
func (d *Daemon) RequestCancel(ctx context.Context, id string, grace *durationpb.Duration) (*pcnodev1.Task, error) {
	t, err := d.store.GetTask(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := ownTask(ctx, t, "cancel"); err != nil {
		return nil, err
	}
	return d.cancelTask(ctx, t.GetId(), grace)
}

// DeleteTask deletes finished task id and its logs for the caller of ctx,
// who must own it unless an admin; an unfinished task is
// FAILED_PRECONDITION.
func (d *Daemon) DeleteTask(ctx context.Context, id string) error {
	t, err := d.store.GetTask(ctx, id)
	if err != nil {
		return err
	}
	if err := ownTask(ctx, t, "delete"); err != nil {
		return err
	}
	if !IsFinal(t.GetState()) {
		return WithCode(codes.FailedPrecondition, errors.New("task "+t.GetId()+" is "+t.GetState().String()+": cancel it first"))
	}
	if err := d.store.DeleteTask(ctx, t.GetId()); err != nil {
		return err
	}
	if err := os.RemoveAll(d.taskLogDir(t.GetId())); err != nil {
		d.log.Warn("removing task logs", "task", t.GetId(), "err", err)
	}
	return nil
}

// ResolveFit resolves a spec (resolve) and says whether what it requests
// fits the node's free resources now and its resources at all.
func (d *Daemon) ResolveFit(ctx context.Context, s *pcnodev1.TaskSpec) (res *Resolution, fitsNow, fitsNode bool, err error) {
	if res, err = d.resolve(ctx, s); err != nil {
		return nil, false, false, err
	}
	fitsNow, fitsNode, _ = d.sched.Fits(res.request)
	return res, fitsNow, fitsNode, nil
}

// SubscribeTasks subscribes to the node's task events (broker.go): at most
// buffer held, then the subscription is dropped and its channel closed.
// UnsubscribeTasks ends it.
func (d *Daemon) SubscribeTasks(buffer int, filter func(*pcnodev1.TaskEvent) bool) *Subscription {
	return d.events.subscribe(buffer, filter)
}

func (d *Daemon) UnsubscribeTasks(sub *Subscription) { d.events.unsubscribe(sub) }

// ChangesAfter returns a page of the state changes written after revision
// after, in revision order, and the revisions the store holds (for the
// errors store.ErrCompacted and store.ErrFutureRevision too).
func (d *Daemon) ChangesAfter(ctx context.Context, after uint64) ([]store.Change, store.Revisions, error) {
	return d.store.Changes(ctx, after, 0)
}

// UnfinishedChanges returns every unfinished task with the revision of its
// last state change, all as of one revision.
func (d *Daemon) UnfinishedChanges(ctx context.Context) ([]store.Change, store.Revisions, error) {
	return d.store.UnfinishedChanges(ctx)
}

// ReadTaskLog reads task id's log for StreamLogs: a task not stored is
// the store's not-found error; a finished task's log is read once it is
// sealed (the final state is written before the container is deleted,
// which ends the log driver's copy; docs/lifecycle.md), or, for one the
// start's check has not come to yet, once it was checked
// (checkRecentLogs).
func (d *Daemon) ReadTaskLog(ctx context.Context, id string, opts logs.ReadOptions, fn func([]logs.Entry) error) error {
	t, err := d.store.GetTask(ctx, id)
	if err != nil {
		return err
	}
	if IsFinal(t.GetState()) {
		d.waitCleanup(ctx, t.GetId())
		d.checkLogBeforeRead(ctx, t.GetId()) // a crash may have left it unsealed
	}
	return d.ReadLog(ctx, id, opts, fn)
}

// ReadLog reads task id's log (logs.Read), at most [streams] buffer_bytes
// held at a time, calling fn with each batch.
func (d *Daemon) ReadLog(ctx context.Context, id string, opts logs.ReadOptions, fn func([]logs.Entry) error) error {
	opts.BufferBytes = d.streamBufferBytes()
	if opts.Follow && opts.Wake == nil {
		// Woken when clean up starts deleting the container (logEnds):
		// the end marker is seen within milliseconds, not a poll later.
		wake, unwatch := d.logEnds.watch(id)
		defer unwatch()
		opts.Wake = wake
	}
	return logs.Read(ctx, d.taskLogDir(id), opts, fn)
}

// streamBufferBytes is [streams] buffer_bytes: what one stream may hold of
// log data at a time.
func (d *Daemon) streamBufferBytes() int {
	if n := d.cfg.Streams.BufferBytes.Bytes(); n > 0 {
		return int(n)
	}
	return logs.DefaultBufferBytes
}
