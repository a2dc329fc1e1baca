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

// The local node's task operations: what TaskService (service_task.go)
// calls once it has checked and converted a request. Submitting and
// queueing are in submit.go, a task's lifecycle in runner.go and step_*.go.
// Errors are the store's and runtime's sentinels, wrapped, or carry their
// code (withCode, invalid); the error mapper (errors.go) turns them into
// status.

// getTask returns the stored task id.
func (d *Daemon) getTask(ctx context.Context, id string) (*pcnodev1.Task, error) {
	return d.store.GetTask(ctx, id)
}

// taskChange returns task id as stored, with the revision of its last
// state change.
func (d *Daemon) taskChange(ctx context.Context, id string) (store.Change, error) {
	return d.store.GetTaskChange(ctx, id)
}

// taskQuery is what ListTasks selects: tasks in any of states (all when
// empty) whose labels include labels, one page of at most pageSize after
// pageToken.
type taskQuery struct {
	states    []pcnodev1.TaskState
	labels    map[string]string
	pageSize  int
	pageToken string
}

// listTasks returns one page of the tasks q selects, at most
// store.DefaultPageBytes encoded, and the token of the next page ("" at the
// end). A token the store refuses is an error wrapping
// store.ErrInvalidPageToken.
func (d *Daemon) listTasks(ctx context.Context, q taskQuery) ([]*pcnodev1.Task, string, error) {
	return d.store.ListTasks(ctx, store.ListOptions{
		States: q.states, Labels: q.labels, PageSize: q.pageSize, PageToken: q.pageToken,
		MaxBytes: store.DefaultPageBytes,
	})
}

// taskOutputs returns one page of task id's output manifests, at most
// store.DefaultPageBytes encoded, and the next page's token.
func (d *Daemon) taskOutputs(ctx context.Context, id string, pageSize int, pageToken string) ([]*pcnodev1.OutputManifest, string, error) {
	return d.store.GetOutputsPage(ctx, id, store.OutputsOptions{
		PageSize: pageSize, PageToken: pageToken, MaxBytes: store.DefaultPageBytes,
	})
}

// requestCancel cancels task id for the caller of ctx, who must own it unless an
// admin (ownTask), and returns the task as it is then (cancelTask, with
// grace the caller's grace period, nil for none).
func (d *Daemon) requestCancel(ctx context.Context, id string, grace *durationpb.Duration) (*pcnodev1.Task, error) {
	t, err := d.store.GetTask(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := ownTask(ctx, t, "cancel"); err != nil {
		return nil, err
	}
	return d.cancelTask(ctx, t.GetId(), grace)
}

// deleteTask deletes finished task id and its logs for the caller of ctx,
// who must own it unless an admin; an unfinished task is
// FAILED_PRECONDITION.
func (d *Daemon) deleteTask(ctx context.Context, id string) error {
	t, err := d.store.GetTask(ctx, id)
	if err != nil {
		return err
	}
	if err := ownTask(ctx, t, "delete"); err != nil {
		return err
	}
	if !isFinal(t.GetState()) {
		return withCode(codes.FailedPrecondition, errors.New("task "+t.GetId()+" is "+t.GetState().String()+": cancel it first"))
	}
	if err := d.store.DeleteTask(ctx, t.GetId()); err != nil {
		return err
	}
	if err := os.RemoveAll(d.taskLogDir(t.GetId())); err != nil {
		d.log.Warn("removing task logs", "task", t.GetId(), "err", err)
	}
	return nil
}

// resolveFit resolves a spec (resolve) and says whether what it requests
// fits the node's free resources now and its resources at all.
func (d *Daemon) resolveFit(ctx context.Context, s *pcnodev1.TaskSpec) (res *resolution, fitsNow, fitsNode bool, err error) {
	if res, err = d.resolve(ctx, s); err != nil {
		return nil, false, false, err
	}
	fitsNow, fitsNode, _ = d.sched.Fits(res.request)
	return res, fitsNow, fitsNode, nil
}

// subscribeTasks subscribes to the node's task events (broker.go): at most
// buffer held, then the subscription is dropped and its channel closed.
// unsubscribeTasks ends it.
func (d *Daemon) subscribeTasks(buffer int, filter func(*pcnodev1.TaskEvent) bool) *subscription {
	return d.events.subscribe(buffer, filter)
}

func (d *Daemon) unsubscribeTasks(sub *subscription) { d.events.unsubscribe(sub) }

// changesAfter returns a page of the state changes written after revision
// after, in revision order, and the revisions the store holds (for the
// errors store.ErrCompacted and store.ErrFutureRevision too).
func (d *Daemon) changesAfter(ctx context.Context, after uint64) ([]store.Change, store.Revisions, error) {
	return d.store.Changes(ctx, after, 0)
}

// unfinishedChanges returns every unfinished task with the revision of its
// last state change, all as of one revision.
func (d *Daemon) unfinishedChanges(ctx context.Context) ([]store.Change, store.Revisions, error) {
	return d.store.UnfinishedChanges(ctx)
}

// readTaskLog reads task id's log for StreamLogs: a task not stored is
// the store's not-found error; a finished task's log is read once it is
// sealed (the final state is written before the container is deleted,
// which ends the log driver's copy; docs/lifecycle.md).
func (d *Daemon) readTaskLog(ctx context.Context, id string, opts logs.ReadOptions, fn func([]logs.Entry) error) error {
	t, err := d.store.GetTask(ctx, id)
	if err != nil {
		return err
	}
	if isFinal(t.GetState()) {
		d.waitCleanup(ctx, t.GetId())
	}
	return d.readLog(ctx, id, opts, fn)
}

// readLog reads task id's log (logs.Read), at most [streams] buffer_bytes
// held at a time, calling fn with each batch.
func (d *Daemon) readLog(ctx context.Context, id string, opts logs.ReadOptions, fn func([]logs.Entry) error) error {
	opts.BufferBytes = d.streamBufferBytes()
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
