package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// retentionBatch is how many expired tasks DeleteFinishedBefore removes per
// transaction, keeping each write transaction small.
const retentionBatch = 1000

// CreateTask implements Store.
func (db *DB) CreateTask(ctx context.Context, task *pcnodev1.Task, idempotencyKey string, specHash []byte) (*pcnodev1.Task, bool, error) {
	t, err := prepareNew(task, idempotencyKey)
	if err != nil {
		return nil, false, fmt.Errorf("create task: %w", err)
	}
	var existing *pcnodev1.Task
	ik := []byte(idempotencyIndexKey(t.GetSubmittedBy(), idempotencyKey))
	err = db.update(ctx, func(_ *bolt.Tx, bk *buckets) error {
		existing = nil // the function may run again (commit.go)
		if idempotencyKey != "" {
			if v := bk.idempotency.Get(ik); v != nil {
				id, hash, err := decodeIdempotency(v)
				if err != nil {
					return err
				}
				if !bytes.Equal(hash, specHash) {
					return fmt.Errorf("idempotency key %q belongs to task %s: %w", idempotencyKey, id, ErrKeyConflict)
				}
				existing, err = bk.getTask(id)
				if err != nil {
					return err
				}
				if existing == nil {
					return fmt.Errorf("idempotency key %q names missing task %s: %w", idempotencyKey, id, ErrCorrupt)
				}
				return nil
			}
		}
		if bk.tasks.Get([]byte(t.GetId())) != nil {
			return fmt.Errorf("task %s: %w", t.GetId(), ErrExists)
		}
		if idempotencyKey != "" {
			if err := bk.idempotency.Put(ik, encodeIdempotency(t.GetId(), specHash)); err != nil {
				return err
			}
		}
		return bk.putTask(nil, t)
	})
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("create task: %w", err)
	case existing != nil:
		return existing, true, nil
	}
	return t, false, nil
}

// FindIdempotencyKey implements Store.
func (db *DB) FindIdempotencyKey(ctx context.Context, submitter, idempotencyKey string) (*pcnodev1.Task, []byte, error) {
	var t *pcnodev1.Task
	var hash []byte
	err := db.view(ctx, func(_ *bolt.Tx, bk *buckets) error {
		v := bk.idempotency.Get([]byte(idempotencyIndexKey(submitter, idempotencyKey)))
		if v == nil || idempotencyKey == "" {
			return nil
		}
		id, h, err := decodeIdempotency(v)
		if err != nil {
			return err
		}
		if t, err = bk.getTask(id); err == nil && t == nil {
			err = fmt.Errorf("idempotency key %q names missing task %s: %w", idempotencyKey, id, ErrCorrupt)
		}
		hash = bytes.Clone(h)
		return err
	})
	switch {
	case err != nil:
		return nil, nil, fmt.Errorf("find idempotency key: %w", err)
	case t == nil:
		return nil, nil, fmt.Errorf("find idempotency key %q: %w", idempotencyKey, ErrNotFound)
	}
	return t, hash, nil
}

// GetTask implements Store.
func (db *DB) GetTask(ctx context.Context, id string) (*pcnodev1.Task, error) {
	var t *pcnodev1.Task
	err := db.view(ctx, func(_ *bolt.Tx, bk *buckets) error {
		var err error
		t, err = bk.getTask(id)
		return err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("get task %s: %w", id, err)
	case t == nil:
		return nil, fmt.Errorf("get task %q: %w", id, ErrNotFound)
	}
	return t, nil
}

// UpdateTask implements Store.
func (db *DB) UpdateTask(ctx context.Context, task *pcnodev1.Task) error {
	if task == nil {
		return fmt.Errorf("update task: nil task: %w", ErrInvalidArgument)
	}
	next := sanitized(task)
	err := db.update(ctx, func(_ *bolt.Tx, bk *buckets) error {
		prev, err := bk.getTask(next.GetId())
		if err != nil {
			return err
		}
		if prev == nil {
			return ErrNotFound
		}
		if err := checkReplacement(prev, next); err != nil {
			return err
		}
		return bk.putTask(prev, next)
	})
	if err != nil {
		return fmt.Errorf("update task %q: %w", task.GetId(), err)
	}
	return nil
}

// ModifyTask implements Store.
func (db *DB) ModifyTask(ctx context.Context, id string, fn func(*pcnodev1.Task) error) (*pcnodev1.Task, error) {
	var out *pcnodev1.Task
	err := db.update(ctx, func(_ *bolt.Tx, bk *buckets) error {
		prev, err := bk.getTask(id)
		if err != nil {
			return err
		}
		if prev == nil {
			return ErrNotFound
		}
		next, err := modified(prev, fn)
		if err != nil {
			return err
		}
		if err := bk.putTask(prev, next); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("modify task %q: %w", id, err)
	}
	return out, nil
}

// ListTasks implements Store.
func (db *DB) ListTasks(ctx context.Context, opts ListOptions) ([]*pcnodev1.Task, string, error) {
	q, err := opts.query()
	if err != nil {
		return nil, "", fmt.Errorf("list tasks: %w", err)
	}
	var (
		page []*pcnodev1.Task
		next string
	)
	err = db.view(ctx, func(_ *bolt.Tx, bk *buckets) error {
		var t *pcnodev1.Task
		n, err := bk.listPage(ctx, &q, func(id string, v []byte) (bool, error) {
			t = &pcnodev1.Task{}
			if err := proto.Unmarshal(v, t); err != nil {
				return false, fmt.Errorf("task %s: %w: %w", id, ErrCorrupt, err)
			}
			return q.matches(t), nil
		}, func(string, []byte) { page = append(page, t) })
		next = n
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list tasks: %w", err)
	}
	return page, next, nil
}

// ListTasksEncoded implements Store. The records are copied out of the
// transaction into one buffer, which the returned slices share; no task is
// decoded, the filters are checked on the encoding (matchesEncoded).
func (db *DB) ListTasksEncoded(ctx context.Context, opts ListOptions) ([][]byte, string, error) {
	q, err := opts.query()
	if err != nil {
		return nil, "", fmt.Errorf("list tasks: %w", err)
	}
	var (
		buf  []byte
		ends []int
		next string
	)
	err = db.view(ctx, func(_ *bolt.Tx, bk *buckets) error {
		n, err := bk.listPage(ctx, &q, func(id string, v []byte) (bool, error) {
			ok, err := q.matchesEncoded(v)
			if err != nil {
				return false, fmt.Errorf("task %s: %w: %w", id, ErrCorrupt, err)
			}
			return ok, nil
		}, func(_ string, v []byte) {
			if buf == nil {
				// Room for a page of tasks the size of the first.
				buf = make([]byte, 0, min(len(v)*q.pageSize, q.maxBytes))
			}
			buf = append(buf, v...)
			ends = append(ends, len(buf))
		})
		next = n
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("list tasks: %w", err)
	}
	page := make([][]byte, len(ends))
	start := 0
	for i, end := range ends {
		page[i] = buf[start:end:end]
		start = end
	}
	return page, next, nil
}

// listPage walks the tasks q selects, newest first, for one page: match
// says whether a record (id, its stored encoding v, valid only in the
// transaction) passes the filters, take adds one that passed and fits the
// page. It returns the next page's token, "" when the walk ended.
func (bk *buckets) listPage(ctx context.Context, q *listQuery, match func(id string, v []byte) (bool, error), take func(id string, v []byte)) (string, error) {
	n := 0
	last := ""
	budget := pageBudget{maxBytes: q.maxBytes, maxItems: q.pageSize}
	for id := range bk.idsDesc(q) {
		if n++; n%256 == 0 {
			if err := ctx.Err(); err != nil {
				return "", err
			}
		}
		v := bk.tasks.Get([]byte(id))
		if v == nil {
			return "", fmt.Errorf("index names missing task %s: %w", id, ErrCorrupt)
		}
		ok, err := match(id, v)
		if err != nil {
			return "", err
		}
		if !ok {
			continue
		}
		// The stored encoding is what the page will carry: its length
		// is proto.Size(t) without computing it again.
		if !budget.fits(embeddedSize(len(v)), true) {
			return encodePageToken(last, q.filter), nil
		}
		take(id, v)
		last = id
	}
	return "", nil
}

// DeleteTask implements Store.
func (db *DB) DeleteTask(ctx context.Context, id string) error {
	err := db.update(ctx, func(_ *bolt.Tx, bk *buckets) error {
		t, err := bk.getTask(id)
		if err != nil {
			return err
		}
		if t == nil {
			return ErrNotFound
		}
		return bk.deleteTask(t)
	})
	if err != nil {
		return fmt.Errorf("delete task %q: %w", id, err)
	}
	return nil
}

// PutOutputs implements Store.
func (db *DB) PutOutputs(ctx context.Context, id string, manifests []*pcnodev1.OutputManifest) error {
	v, err := encodeManifests(manifests)
	if err != nil {
		return fmt.Errorf("put outputs of task %q: %w", id, err)
	}
	err = db.update(ctx, func(_ *bolt.Tx, bk *buckets) error {
		if bk.tasks.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		if len(manifests) == 0 {
			return bk.outputs.Delete([]byte(id))
		}
		return bk.outputs.Put([]byte(id), v)
	})
	if err != nil {
		return fmt.Errorf("put outputs of task %q: %w", id, err)
	}
	return nil
}

// GetOutputs implements Store.
func (db *DB) GetOutputs(ctx context.Context, id string) ([]*pcnodev1.OutputManifest, error) {
	var ms []*pcnodev1.OutputManifest
	err := db.view(ctx, func(_ *bolt.Tx, bk *buckets) error {
		if bk.tasks.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		var err error
		ms, err = decodeManifests(bk.outputs.Get([]byte(id)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get outputs of task %q: %w", id, err)
	}
	return ms, nil
}

// GetOutputsPage implements Store.
func (db *DB) GetOutputsPage(ctx context.Context, id string, opts OutputsOptions) ([]*pcnodev1.OutputManifest, string, error) {
	var (
		page []*pcnodev1.OutputManifest
		next string
	)
	err := db.view(ctx, func(_ *bolt.Tx, bk *buckets) error {
		if bk.tasks.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		var err error
		page, next, err = pageOutputs(bk.outputs.Get([]byte(id)), id, opts)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("get outputs of task %q: %w", id, err)
	}
	return page, next, nil
}

// Unfinished implements Store.
func (db *DB) Unfinished(ctx context.Context) ([]*pcnodev1.Task, error) {
	changes, _, err := db.UnfinishedChanges(ctx)
	return changeTasks(changes), err
}

// FinishedSince implements Store: the by_finish keys from the newest down
// to since.
func (db *DB) FinishedSince(ctx context.Context, since time.Time) ([]string, error) {
	bound := finishKey(since, "")
	var ids []string
	err := db.view(ctx, func(_ *bolt.Tx, bk *buckets) error {
		c := bk.byFinish.Cursor()
		for k, _ := c.Last(); k != nil && bytes.Compare(k, bound) >= 0; k, _ = c.Prev() {
			if len(ids)%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			ids = append(ids, string(k[len(bound):]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tasks finished since %s: %w", since.Format(time.RFC3339), err)
	}
	return ids, nil
}

// DeleteFinishedBefore implements Store.
func (db *DB) DeleteFinishedBefore(ctx context.Context, before time.Time) ([]string, error) {
	bound := finishKey(before, "")
	var deleted []string
	for {
		var batch []string
		err := db.update(ctx, func(_ *bolt.Tx, bk *buckets) error {
			batch = batch[:0] // the function may run again (commit.go)
			c := bk.byFinish.Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k, bound) < 0 && len(batch) < retentionBatch; k, _ = c.Next() {
				batch = append(batch, string(k[len(bound):]))
			}
			for _, id := range batch {
				t, err := bk.getTask(id)
				if err != nil {
					return err
				}
				if t == nil {
					return fmt.Errorf("by_finish names missing task %s: %w", id, ErrCorrupt)
				}
				if err := bk.deleteTask(t); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return deleted, fmt.Errorf("delete tasks finished before %s: %w", before.Format(time.RFC3339), err)
		}
		deleted = append(deleted, batch...)
		if len(batch) < retentionBatch {
			return deleted, nil
		}
	}
}

// MaxBulkTasks is the most tasks one CreateTasks call stores.
const MaxBulkTasks = 50_000

// CreateTasks stores many new tasks in one transaction, as CreateTask does
// each (sanitized, indexed, each creation a state change with its own
// revision), but without idempotency keys: a task carrying one is
// ErrInvalidArgument. It is for filling a file in bulk (benchmarks, tools
// importing a history) where one fsync per task would take minutes. A task
// already stored, or twice in tasks, is ErrExists; on any error nothing is
// written. At most MaxBulkTasks per call.
func (db *DB) CreateTasks(ctx context.Context, tasks []*pcnodev1.Task) error {
	if len(tasks) > MaxBulkTasks {
		return fmt.Errorf("create tasks: %d tasks, at most %d per call: %w", len(tasks), MaxBulkTasks, ErrInvalidArgument)
	}
	prepared := make([]*pcnodev1.Task, len(tasks))
	for i, task := range tasks {
		if task.GetIdempotencyKey() != "" {
			return fmt.Errorf("create tasks: task %d (%s) has an idempotency key: %w", i, task.GetId(), ErrInvalidArgument)
		}
		t, err := prepareNew(task, "")
		if err != nil {
			return fmt.Errorf("create tasks: task %d: %w", i, err)
		}
		prepared[i] = t
	}
	err := db.update(ctx, func(_ *bolt.Tx, bk *buckets) error {
		for i, t := range prepared {
			if i%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if bk.tasks.Get([]byte(t.GetId())) != nil {
				return fmt.Errorf("task %s: %w", t.GetId(), ErrExists)
			}
			if err := bk.putTask(nil, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create tasks: %w", err)
	}
	return nil
}
