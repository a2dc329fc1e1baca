package store

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Memory is the Store in memory, for tests of code that needs a store but
// not a file. It behaves as DB does, except that nothing survives it.
type Memory struct {
	mu      sync.RWMutex
	closed  bool
	tasks   map[string]*pcnodev1.Task
	ids     []string // sorted ascending
	keys    map[string]memoryKey
	outputs map[string][]*pcnodev1.OutputManifest

	revision     uint64            // the newest revision given
	revs         map[string]uint64 // task id → revision of its last state change
	history      []Change          // revisions in order, the last is revision
	historyLimit int

	node NodeState // drain and GPU marks
}

type memoryKey struct {
	id   string
	hash []byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory that keeps DefaultHistory state changes.
func NewMemory() *Memory {
	m, _ := NewMemoryHistory(0)
	return m
}

// NewMemoryHistory returns an empty Memory that keeps the history most
// recent state changes, as Options.History does for DB.
func NewMemoryHistory(history int) (*Memory, error) {
	n, err := historyLimit(history)
	if err != nil {
		return nil, fmt.Errorf("memory store: %w", err)
	}
	return &Memory{
		tasks:        map[string]*pcnodev1.Task{},
		keys:         map[string]memoryKey{},
		outputs:      map[string][]*pcnodev1.OutputManifest{},
		revs:         map[string]uint64{},
		historyLimit: n,
	}, nil
}

// put stores next, which replaces prev (nil for a new task), and records
// the state change when it is one. The caller holds the write lock.
func (m *Memory) put(prev, next *pcnodev1.Task) {
	id := next.GetId()
	m.tasks[id] = next
	if !isStateChange(prev, next) {
		return
	}
	m.revision++
	m.revs[id] = m.revision
	m.history = append(m.history, Change{Revision: m.revision, Task: next})
	if over := len(m.history) - m.historyLimit; over > 0 {
		clear(m.history[:over])
		m.history = m.history[over:]
	}
}

// revisions is the span held. The caller holds a lock.
func (m *Memory) revisions() Revisions {
	r := Revisions{Current: m.revision, Oldest: m.revision + 1}
	if len(m.history) > 0 {
		r.Oldest = m.history[0].Revision
	}
	return r
}

// GetTaskChange implements Store.
func (m *Memory) GetTaskChange(ctx context.Context, id string) (Change, error) {
	unlock, err := m.lock(ctx, false)
	if err != nil {
		return Change{}, fmt.Errorf("get task %q: %w", id, err)
	}
	defer unlock()
	t, ok := m.tasks[id]
	if !ok {
		return Change{}, fmt.Errorf("get task %q: %w", id, ErrNotFound)
	}
	return Change{Revision: m.revs[id], Task: proto.CloneOf(t)}, nil
}

// Changes implements Store.
func (m *Memory) Changes(ctx context.Context, after uint64, limit int) ([]Change, Revisions, error) {
	if limit <= 0 {
		limit = DefaultChangesLimit
	}
	unlock, err := m.lock(ctx, false)
	if err != nil {
		return nil, Revisions{}, fmt.Errorf("changes after revision %d: %w", after, err)
	}
	defer unlock()
	r := m.revisions()
	if err := r.checkResume(after); err != nil {
		return nil, r, fmt.Errorf("changes after revision %d: %w", after, err)
	}
	// The history is a run of revisions: after+1 is at after+1-Oldest.
	start := min(int(after+1-r.Oldest), len(m.history))
	var out []Change
	for _, c := range m.history[start:min(start+limit, len(m.history))] {
		out = append(out, Change{Revision: c.Revision, Task: proto.CloneOf(c.Task)})
	}
	return out, r, nil
}

// UnfinishedChanges implements Store.
func (m *Memory) UnfinishedChanges(ctx context.Context) ([]Change, Revisions, error) {
	unlock, err := m.lock(ctx, false)
	if err != nil {
		return nil, Revisions{}, fmt.Errorf("unfinished tasks: %w", err)
	}
	defer unlock()
	var out []Change
	for _, id := range m.ids {
		if t := m.tasks[id]; slices.Contains(unfinishedStates, t.GetState()) {
			out = append(out, Change{Revision: m.revs[id], Task: proto.CloneOf(t)})
		}
	}
	return out, m.revisions(), nil
}

// lock takes the write lock, or read lock when !write, and fails after Close
// or with a done ctx.
func (m *Memory) lock(ctx context.Context, write bool) (unlock func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if write {
		m.mu.Lock()
		unlock = m.mu.Unlock
	} else {
		m.mu.RLock()
		unlock = m.mu.RUnlock
	}
	if m.closed {
		unlock()
		return nil, ErrClosed
	}
	return unlock, nil
}

// FindIdempotencyKey implements Store.
func (m *Memory) FindIdempotencyKey(ctx context.Context, submitter, idempotencyKey string) (*pcnodev1.Task, []byte, error) {
	unlock, err := m.lock(ctx, false)
	if err != nil {
		return nil, nil, fmt.Errorf("find idempotency key: %w", err)
	}
	defer unlock()
	k, ok := m.keys[idempotencyIndexKey(submitter, idempotencyKey)]
	if !ok || idempotencyKey == "" {
		return nil, nil, fmt.Errorf("find idempotency key %q: %w", idempotencyKey, ErrNotFound)
	}
	return proto.CloneOf(m.tasks[k.id]), bytes.Clone(k.hash), nil
}

// CreateTask implements Store.
func (m *Memory) CreateTask(ctx context.Context, task *pcnodev1.Task, idempotencyKey string, specHash []byte) (*pcnodev1.Task, bool, error) {
	t, err := prepareNew(task, idempotencyKey)
	if err != nil {
		return nil, false, fmt.Errorf("create task: %w", err)
	}
	unlock, err := m.lock(ctx, true)
	if err != nil {
		return nil, false, fmt.Errorf("create task: %w", err)
	}
	defer unlock()
	ik := idempotencyIndexKey(t.GetSubmittedBy(), idempotencyKey)
	if idempotencyKey != "" {
		if k, ok := m.keys[ik]; ok {
			if !bytes.Equal(k.hash, specHash) {
				return nil, false, fmt.Errorf("create task: idempotency key %q belongs to task %s: %w", idempotencyKey, k.id, ErrKeyConflict)
			}
			return proto.CloneOf(m.tasks[k.id]), true, nil
		}
	}
	id := t.GetId()
	if _, ok := m.tasks[id]; ok {
		return nil, false, fmt.Errorf("create task: task %s: %w", id, ErrExists)
	}
	if idempotencyKey != "" {
		m.keys[ik] = memoryKey{id: id, hash: bytes.Clone(specHash)}
	}
	m.put(nil, t)
	i, _ := slices.BinarySearch(m.ids, id)
	m.ids = slices.Insert(m.ids, i, id)
	return proto.CloneOf(t), false, nil
}

// GetTask implements Store.
func (m *Memory) GetTask(ctx context.Context, id string) (*pcnodev1.Task, error) {
	unlock, err := m.lock(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("get task %q: %w", id, err)
	}
	defer unlock()
	t, ok := m.tasks[id]
	if !ok {
		return nil, fmt.Errorf("get task %q: %w", id, ErrNotFound)
	}
	return proto.CloneOf(t), nil
}

// UpdateTask implements Store.
func (m *Memory) UpdateTask(ctx context.Context, task *pcnodev1.Task) error {
	if task == nil {
		return fmt.Errorf("update task: nil task: %w", ErrInvalidArgument)
	}
	next := sanitized(task)
	unlock, err := m.lock(ctx, true)
	if err != nil {
		return fmt.Errorf("update task %q: %w", task.GetId(), err)
	}
	defer unlock()
	prev, ok := m.tasks[next.GetId()]
	if !ok {
		return fmt.Errorf("update task %q: %w", task.GetId(), ErrNotFound)
	}
	if err := checkReplacement(prev, next); err != nil {
		return fmt.Errorf("update task %q: %w", task.GetId(), err)
	}
	m.put(prev, next)
	return nil
}

// ModifyTask implements Store.
func (m *Memory) ModifyTask(ctx context.Context, id string, fn func(*pcnodev1.Task) error) (*pcnodev1.Task, error) {
	unlock, err := m.lock(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("modify task %q: %w", id, err)
	}
	defer unlock()
	prev, ok := m.tasks[id]
	if !ok {
		return nil, fmt.Errorf("modify task %q: %w", id, ErrNotFound)
	}
	next, err := modified(prev, fn)
	if err != nil {
		return nil, fmt.Errorf("modify task %q: %w", id, err)
	}
	m.put(prev, next)
	return proto.CloneOf(next), nil
}

// ListTasks implements Store.
func (m *Memory) ListTasks(ctx context.Context, opts ListOptions) ([]*pcnodev1.Task, string, error) {
	q, err := opts.query()
	if err != nil {
		return nil, "", fmt.Errorf("list tasks: %w", err)
	}
	unlock, err := m.lock(ctx, false)
	if err != nil {
		return nil, "", fmt.Errorf("list tasks: %w", err)
	}
	defer unlock()
	end := len(m.ids)
	if q.after != "" {
		end, _ = slices.BinarySearch(m.ids, q.after)
	}
	var page []*pcnodev1.Task
	budget := pageBudget{maxBytes: q.maxBytes, maxItems: q.pageSize}
	for i := end - 1; i >= 0; i-- {
		t := m.tasks[m.ids[i]]
		if !q.matches(t) {
			continue
		}
		if !budget.fits(embeddedSize(proto.Size(t)), true) {
			return page, encodePageToken(page[len(page)-1].GetId(), q.filter), nil
		}
		page = append(page, proto.CloneOf(t))
	}
	return page, "", nil
}

// ListTasksEncoded implements Store: ListTasks, each task marshalled.
func (m *Memory) ListTasksEncoded(ctx context.Context, opts ListOptions) ([][]byte, string, error) {
	page, next, err := m.ListTasks(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	out := make([][]byte, len(page))
	for i, t := range page {
		if out[i], err = proto.Marshal(t); err != nil {
			return nil, "", fmt.Errorf("list tasks: task %s: %w", t.GetId(), err)
		}
	}
	return out, next, nil
}

// DeleteTask implements Store.
func (m *Memory) DeleteTask(ctx context.Context, id string) error {
	unlock, err := m.lock(ctx, true)
	if err != nil {
		return fmt.Errorf("delete task %q: %w", id, err)
	}
	defer unlock()
	if _, ok := m.tasks[id]; !ok {
		return fmt.Errorf("delete task %q: %w", id, ErrNotFound)
	}
	m.delete(id)
	return nil
}

func (m *Memory) delete(id string) {
	if key := m.tasks[id].GetIdempotencyKey(); key != "" {
		if key = idempotencyIndexKey(m.tasks[id].GetSubmittedBy(), key); m.keys[key].id == id {
			delete(m.keys, key)
		}
	}
	delete(m.tasks, id)
	delete(m.outputs, id)
	delete(m.revs, id)
	if i, ok := slices.BinarySearch(m.ids, id); ok {
		m.ids = slices.Delete(m.ids, i, i+1)
	}
}

// PutOutputs implements Store.
func (m *Memory) PutOutputs(ctx context.Context, id string, manifests []*pcnodev1.OutputManifest) error {
	if slices.Contains(manifests, nil) {
		return fmt.Errorf("put outputs of task %q: nil manifest: %w", id, ErrInvalidArgument)
	}
	unlock, err := m.lock(ctx, true)
	if err != nil {
		return fmt.Errorf("put outputs of task %q: %w", id, err)
	}
	defer unlock()
	if _, ok := m.tasks[id]; !ok {
		return fmt.Errorf("put outputs of task %q: %w", id, ErrNotFound)
	}
	if len(manifests) == 0 {
		delete(m.outputs, id)
		return nil
	}
	m.outputs[id] = cloneManifests(manifests)
	return nil
}

// GetOutputsPage implements Store. It pages the encoding DB stores, so that
// both stores cut pages alike.
func (m *Memory) GetOutputsPage(ctx context.Context, id string, opts OutputsOptions) ([]*pcnodev1.OutputManifest, string, error) {
	unlock, err := m.lock(ctx, false)
	if err != nil {
		return nil, "", fmt.Errorf("get outputs of task %q: %w", id, err)
	}
	defer unlock()
	if _, ok := m.tasks[id]; !ok {
		return nil, "", fmt.Errorf("get outputs of task %q: %w", id, ErrNotFound)
	}
	b, err := encodeManifests(m.outputs[id])
	if err == nil {
		var page []*pcnodev1.OutputManifest
		var next string
		if page, next, err = pageOutputs(b, id, opts); err == nil {
			return page, next, nil
		}
	}
	return nil, "", fmt.Errorf("get outputs of task %q: %w", id, err)
}

// GetOutputs implements Store.
func (m *Memory) GetOutputs(ctx context.Context, id string) ([]*pcnodev1.OutputManifest, error) {
	unlock, err := m.lock(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("get outputs of task %q: %w", id, err)
	}
	defer unlock()
	if _, ok := m.tasks[id]; !ok {
		return nil, fmt.Errorf("get outputs of task %q: %w", id, ErrNotFound)
	}
	if ms := m.outputs[id]; ms != nil {
		return cloneManifests(ms), nil
	}
	return nil, nil
}

// Unfinished implements Store.
func (m *Memory) Unfinished(ctx context.Context) ([]*pcnodev1.Task, error) {
	changes, _, err := m.UnfinishedChanges(ctx)
	return changeTasks(changes), err
}

// DeleteFinishedBefore implements Store.
func (m *Memory) DeleteFinishedBefore(ctx context.Context, before time.Time) ([]string, error) {
	unlock, err := m.lock(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("delete tasks finished before %s: %w", before.Format(time.RFC3339), err)
	}
	defer unlock()
	type expired struct {
		when time.Time
		id   string
	}
	var gone []expired
	for id, t := range m.tasks {
		if when, ok := retentionTime(t); ok && when.Before(before) {
			gone = append(gone, expired{when, id})
		}
	}
	slices.SortFunc(gone, func(a, b expired) int {
		return cmp.Or(a.when.Compare(b.when), cmp.Compare(a.id, b.id))
	})
	var ids []string
	for _, g := range gone {
		m.delete(g.id)
		ids = append(ids, g.id)
	}
	return ids, nil
}

// FinishedSince implements Store.
func (m *Memory) FinishedSince(ctx context.Context, since time.Time) ([]string, error) {
	unlock, err := m.lock(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("tasks finished since %s: %w", since.Format(time.RFC3339), err)
	}
	defer unlock()
	type finished struct {
		when time.Time
		id   string
	}
	var fs []finished
	for id, t := range m.tasks {
		if when, ok := retentionTime(t); ok && !when.Before(since) {
			fs = append(fs, finished{when, id})
		}
	}
	slices.SortFunc(fs, func(a, b finished) int {
		return cmp.Or(b.when.Compare(a.when), cmp.Compare(b.id, a.id))
	})
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.id)
	}
	return ids, nil
}

// Close implements Store. Closing twice is harmless.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
