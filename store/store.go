package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Store is the task state the daemon keeps. Consumers may declare narrower
// interfaces of their own; DB and Memory implement this one and pass the
// suite in package storetest. All methods are safe for concurrent use.
//
// Every write that creates a task or changes its state (CreateTask, and
// UpdateTask or ModifyTask when the state differs) is a state change: in the
// same transaction it gets the next revision of the store, one more than
// the last, and is appended to the history that Changes reads. Revisions
// are never reused, also across reopening; the history keeps the most
// recent changes only (Options.History).
type Store interface {
	// CreateTask stores a new task, recording idempotencyKey (may be empty)
	// on it and in the idempotency index with specHash. When the key is
	// already indexed it creates nothing: with an equal specHash it returns
	// the existing task and existing=true; otherwise ErrKeyConflict. A task
	// whose id is already stored gives ErrExists. The id must satisfy ValidID.
	CreateTask(ctx context.Context, task *pcnodev1.Task, idempotencyKey string, specHash []byte) (stored *pcnodev1.Task, existing bool, err error)
	// FindIdempotencyKey returns the task that submitter's idempotencyKey
	// names and the specHash recorded with it, or ErrNotFound. It lets a
	// caller answer a repeated submission before doing CreateTask's work;
	// CreateTask still decides.
	FindIdempotencyKey(ctx context.Context, submitter, idempotencyKey string) (task *pcnodev1.Task, specHash []byte, err error)
	// GetTask returns the task with id, or ErrNotFound.
	GetTask(ctx context.Context, id string) (*pcnodev1.Task, error)
	// UpdateTask replaces a stored task with task (matched by id), or
	// returns ErrNotFound. The idempotency key cannot change.
	UpdateTask(ctx context.Context, task *pcnodev1.Task) error
	// ModifyTask reads the task with id, passes a copy to fn and, when fn
	// returns nil, writes the copy back, all in one transaction, and returns
	// what was written. An error from fn is returned as is (wrapped) and
	// nothing is written. fn may not change the id or idempotency key.
	ModifyTask(ctx context.Context, id string, fn func(*pcnodev1.Task) error) (*pcnodev1.Task, error)
	// ListTasks returns one page of tasks, newest first, and the token for
	// the next page ("" on the last).
	ListTasks(ctx context.Context, opts ListOptions) (tasks []*pcnodev1.Task, nextPageToken string, err error)
	// ListTasksEncoded is ListTasks with each task as its protobuf
	// encoding (a Task message's wire bytes, the task as stored), not
	// decoded: the same tasks, in the same order, with the same next page
	// token and errors. The slices are the caller's.
	ListTasksEncoded(ctx context.Context, opts ListOptions) (tasks [][]byte, nextPageToken string, err error)
	// DeleteTask removes a task, its idempotency key and its output
	// manifests, or returns ErrNotFound.
	DeleteTask(ctx context.Context, id string) error
	// PutOutputs replaces the output manifests of a stored task.
	PutOutputs(ctx context.Context, id string, manifests []*pcnodev1.OutputManifest) error
	// GetOutputs returns the output manifests of a task, none when none were
	// put, or ErrNotFound when there is no such task.
	GetOutputs(ctx context.Context, id string) ([]*pcnodev1.OutputManifest, error)
	// GetOutputsPage returns one page of the output manifests of a task and
	// the token for the next page ("" on the last): the channels whose
	// files fall on the page, in order, each with its name, host path and
	// totals and the page's share of its files (a channel may continue on
	// the next page). A page holds at most opts.PageSize files and stays
	// within opts.MaxBytes encoded. A token of another task, or one not
	// made by GetOutputsPage, is ErrInvalidPageToken.
	GetOutputsPage(ctx context.Context, id string, opts OutputsOptions) (manifests []*pcnodev1.OutputManifest, nextPageToken string, err error)
	// Unfinished returns every task that is QUEUED, PREPARING or RUNNING,
	// oldest first: what the daemon must recover on start.
	Unfinished(ctx context.Context) ([]*pcnodev1.Task, error)
	// DeleteFinishedBefore deletes, as DeleteTask does, every task in a final
	// state that finished before before (see the package doc for which time
	// counts), and returns their ids, oldest first, so that the caller can
	// remove their logs. On error it returns the ids deleted so far.
	DeleteFinishedBefore(ctx context.Context, before time.Time) ([]string, error)
	// FinishedSince returns the ids of the tasks in a final state whose
	// time (the one retention uses, see the package doc) is at or after
	// since, newest first, without reading the tasks: what the daemon
	// checks at start for logs a crash left unsealed.
	FinishedSince(ctx context.Context, since time.Time) ([]string, error)
	// GetTaskChange returns the task with id and the revision of its last
	// state change, or ErrNotFound.
	GetTaskChange(ctx context.Context, id string) (Change, error)
	// Changes returns, oldest first, up to limit (DefaultChangesLimit when
	// 0 or less) of the state changes with a revision above after, each as
	// the task was written, and the revisions held at the moment of the
	// read. An after below Oldest-1 gives ErrCompacted, one above Current
	// ErrFutureRevision; both still return the Revisions.
	Changes(ctx context.Context, after uint64, limit int) ([]Change, Revisions, error)
	// UnfinishedChanges returns what Unfinished returns, each task with the
	// revision of its last state change, and the revisions held, all read at
	// one moment: the tasks are as they were at revision Current.
	UnfinishedChanges(ctx context.Context) ([]Change, Revisions, error)
	// GetNodeState returns the node's state: drain and GPU marks. A new
	// store is not draining and has no marks.
	GetNodeState(ctx context.Context) (NodeState, error)
	// SetDraining records whether the node is draining.
	SetDraining(ctx context.Context, draining bool) error
	// PutGPUMark records that the GPU uuid is unhealthy because of mark,
	// replacing any mark it had. A uuid or mark out of bounds (empty, not
	// printable, over MaxGPUUUIDLen, MaxGPUMarkKindLen or
	// MaxGPUMarkMessageLen; no time; a negative XID) is ErrInvalidArgument.
	PutGPUMark(ctx context.Context, uuid string, mark GPUMark) error
	// DeleteGPUMark removes the GPU's mark; removing none is not an error.
	DeleteGPUMark(ctx context.Context, uuid string) error
	// Close releases the store. Later calls return ErrClosed.
	Close() error
}

// Page sizes of ListTasks.
const (
	// DefaultPageSize is the page size when ListOptions.PageSize is 0.
	DefaultPageSize = 100
	// MaxPageSize is the largest page; larger requests are reduced to it.
	MaxPageSize = 1000
)

// MaxIdempotencyKeyLen is the longest idempotency key the store accepts.
// The API allows less; this bound only keeps bbolt's key limit out of reach.
const MaxIdempotencyKeyLen = 1024

// ListOptions selects and pages tasks for ListTasks.
type ListOptions struct {
	// States keeps only tasks in one of these states. Empty: all.
	States []pcnodev1.TaskState
	// Labels keeps only tasks whose spec carries every one of these labels
	// with the same value. Empty: all.
	Labels map[string]string
	// PageSize is the largest number of tasks returned: 0 means
	// DefaultPageSize, more than MaxPageSize means MaxPageSize, negative is
	// ErrInvalidArgument.
	PageSize int
	// PageToken continues a listing: the nextPageToken of an earlier call
	// with the same States and Labels. Empty: start with the newest task.
	PageToken string
	// MaxBytes bounds the page's encoded size (as repeated Task of a
	// response): the page stops before the task that would pass it, but
	// always holds at least one task. 0: DefaultPageBytes.
	MaxBytes int
}

// listQuery is ListOptions checked and decoded.
type listQuery struct {
	states   []pcnodev1.TaskState // sorted, unique; nil for all
	labels   map[string]string
	pageSize int
	after    string // list ids below this one; "" for from the newest
	filter   [filterHashLen]byte
	maxBytes int

	encLabels *encodedLabels // matchesEncoded's, made on its first call
}

func (o ListOptions) query() (listQuery, error) {
	q := listQuery{labels: o.Labels, pageSize: o.PageSize, maxBytes: o.MaxBytes}
	if q.maxBytes <= 0 {
		q.maxBytes = DefaultPageBytes
	}
	switch {
	case o.PageSize < 0:
		return q, fmt.Errorf("page size %d: %w", o.PageSize, ErrInvalidArgument)
	case o.PageSize == 0:
		q.pageSize = DefaultPageSize
	case o.PageSize > MaxPageSize:
		q.pageSize = MaxPageSize
	}
	if len(o.States) > 0 {
		q.states = slices.Compact(slices.Sorted(slices.Values(o.States)))
	}
	q.filter = filterHash(q.states, o.Labels)
	if o.PageToken != "" {
		after, err := decodePageToken(o.PageToken, q.filter)
		if err != nil {
			return q, err
		}
		q.after = after
	}
	return q, nil
}

// matches reports whether t passes the query's filters.
func (q *listQuery) matches(t *pcnodev1.Task) bool {
	if q.states != nil {
		if _, ok := slices.BinarySearch(q.states, t.GetState()); !ok {
			return false
		}
	}
	labels := t.GetSpec().GetLabels()
	for k, v := range q.labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// isFinal reports whether s is a state a task never leaves.
func isFinal(s pcnodev1.TaskState) bool {
	switch s {
	case pcnodev1.TaskState_TASK_STATE_SUCCEEDED,
		pcnodev1.TaskState_TASK_STATE_FAILED,
		pcnodev1.TaskState_TASK_STATE_CANCELLED:
		return true
	}
	return false
}

// unfinishedStates are the states Unfinished returns, in the order used by
// the index walk.
var unfinishedStates = []pcnodev1.TaskState{
	pcnodev1.TaskState_TASK_STATE_QUEUED,
	pcnodev1.TaskState_TASK_STATE_PREPARING,
	pcnodev1.TaskState_TASK_STATE_RUNNING,
}

// retentionTime is the time by which a final task expires: finish_time, or
// update_time, or create_time, the first one set; ok is false for a task
// that is not final.
func retentionTime(t *pcnodev1.Task) (when time.Time, ok bool) {
	if !isFinal(t.GetState()) {
		return time.Time{}, false
	}
	switch {
	case t.GetFinishTime() != nil:
		return t.GetFinishTime().AsTime(), true
	case t.GetUpdateTime() != nil:
		return t.GetUpdateTime().AsTime(), true
	default:
		// A zero create_time reads as the epoch: the first sweep expires it.
		return t.GetCreateTime().AsTime(), true
	}
}

// prepareNew checks a task for CreateTask and returns the copy to store.
func prepareNew(task *pcnodev1.Task, key string) (*pcnodev1.Task, error) {
	if task == nil {
		return nil, fmt.Errorf("nil task: %w", ErrInvalidArgument)
	}
	if !ValidID(task.GetId()) {
		return nil, fmt.Errorf("task id %q: %w", task.GetId(), ErrInvalidArgument)
	}
	if len(key) > MaxIdempotencyKeyLen {
		return nil, fmt.Errorf("idempotency key of %d bytes, at most %d: %w", len(key), MaxIdempotencyKeyLen, ErrInvalidArgument)
	}
	t := sanitized(task)
	t.IdempotencyKey = key
	return t, nil
}

// idempotencyIndexKey is the idempotency index entry of a task with key,
// submitted by submitter: keys are scoped per submitting identity, so one
// identity's key never finds another's task. A task without a submitter
// (stored before tasks recorded one) is indexed by the key alone.
func idempotencyIndexKey(submitter, key string) string {
	if submitter == "" {
		return key
	}
	return submitter + "\x00" + key
}

// checkReplacement checks that next may replace prev.
func checkReplacement(prev, next *pcnodev1.Task) error {
	if next == nil {
		return fmt.Errorf("nil task: %w", ErrInvalidArgument)
	}
	if next.GetId() != prev.GetId() {
		return fmt.Errorf("task id changed from %q to %q: %w", prev.GetId(), next.GetId(), ErrInvalidArgument)
	}
	if next.GetIdempotencyKey() != prev.GetIdempotencyKey() {
		return fmt.Errorf("task %s: idempotency key cannot change: %w", prev.GetId(), ErrInvalidArgument)
	}
	if next.GetSubmittedBy() != prev.GetSubmittedBy() {
		return fmt.Errorf("task %s: submitter cannot change: %w", prev.GetId(), ErrInvalidArgument)
	}
	return nil
}

// sanitized returns a copy of t without registry credentials.
func sanitized(t *pcnodev1.Task) *pcnodev1.Task {
	c := proto.CloneOf(t)
	stripSecrets(c)
	return c
}

// stripSecrets removes registry credentials from t.
func stripSecrets(t *pcnodev1.Task) {
	if t.GetSpec() != nil {
		t.Spec.RegistryAuth = nil
	}
}

// modified runs fn on a copy of prev and checks the outcome.
func modified(prev *pcnodev1.Task, fn func(*pcnodev1.Task) error) (*pcnodev1.Task, error) {
	next := proto.CloneOf(prev)
	if err := fn(next); err != nil {
		return nil, err
	}
	if err := checkReplacement(prev, next); err != nil {
		return nil, err
	}
	stripSecrets(next)
	return next, nil
}

// cloneManifests deep-copies manifests.
func cloneManifests(ms []*pcnodev1.OutputManifest) []*pcnodev1.OutputManifest {
	out := make([]*pcnodev1.OutputManifest, len(ms))
	for i, m := range ms {
		out[i] = proto.CloneOf(m)
	}
	return out
}

// sortedLabels returns the label keys in order.
func sortedLabels(labels map[string]string) []string {
	return slices.Sorted(maps.Keys(labels))
}
