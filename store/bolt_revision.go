package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// revisionKey is a revision as a key or value: uint64, big endian, so that
// byte order is revision order.
func revisionKey(rev uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), rev) }

// decodeRevision reads a revisionKey; what names it for errors.
func decodeRevision(b []byte, what string) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%s of %d bytes: %w", what, len(b), ErrCorrupt)
	}
	return binary.BigEndian.Uint64(b), nil
}

// addRevisions is migration 2: the revision counter, the revisions index and
// the history. Every task stored gets a revision, in id order (submission
// order), as if it had just been written; the history starts empty, so
// nothing before the migration can be resumed.
func addRevisions(tx *bolt.Tx) error {
	root := tx.Bucket(bucketRoot)
	if root == nil {
		return fmt.Errorf("bucket %s missing: %w", bucketRoot, ErrCorrupt)
	}
	meta, tasks := root.Bucket(bucketMeta), root.Bucket(bucketTasks)
	if meta == nil || tasks == nil {
		return fmt.Errorf("bucket %s or %s missing: %w", bucketMeta, bucketTasks, ErrCorrupt)
	}
	revs, err := root.CreateBucketIfNotExists(bucketRevisions)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucketRevisions, err)
	}
	if _, err := root.CreateBucketIfNotExists(bucketHistory); err != nil {
		return fmt.Errorf("bucket %s: %w", bucketHistory, err)
	}
	var n uint64
	if v := meta.Get(keyRevision); v != nil {
		if n, err = decodeRevision(v, "revision counter"); err != nil {
			return err
		}
	}
	err = tasks.ForEach(func(k, _ []byte) error {
		if revs.Get(k) != nil {
			return nil
		}
		n++
		return revs.Put(k, revisionKey(n))
	})
	if err != nil {
		return err
	}
	return meta.Put(keyRevision, revisionKey(n))
}

// revisions reads the span of revisions held.
func (bk *buckets) revisions() (Revisions, error) {
	var r Revisions
	if v := bk.meta.Get(keyRevision); v != nil {
		var err error
		if r.Current, err = decodeRevision(v, "revision counter"); err != nil {
			return r, err
		}
	}
	r.Oldest = r.Current + 1
	if k, _ := bk.history.Cursor().First(); k != nil {
		first, err := decodeRevision(k, "history key")
		if err != nil {
			return r, err
		}
		r.Oldest = first
	}
	return r, nil
}

// record gives the task id, just written as v, the next revision and
// appends it to the history, pruning the history to bk.history's limit.
func (bk *buckets) record(id string, v []byte) error {
	r, err := bk.revisions()
	if err != nil {
		return err
	}
	rev := r.Current + 1
	key := revisionKey(rev)
	if err := bk.meta.Put(keyRevision, key); err != nil {
		return err
	}
	if err := bk.revs.Put([]byte(id), key); err != nil {
		return err
	}
	if err := bk.history.Put(key, v); err != nil {
		return err
	}
	return bk.prune(rev)
}

// prune removes from the history every change more than historyLimit
// before current.
func (bk *buckets) prune(current uint64) error {
	c := bk.history.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.First() {
		rev, err := decodeRevision(k, "history key")
		if err != nil {
			return err
		}
		if rev+uint64(bk.historyLimit) > current {
			return nil
		}
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// taskRevision returns the revision of the last state change of task id.
func (bk *buckets) taskRevision(id string) (uint64, error) {
	v := bk.revs.Get([]byte(id))
	if v == nil {
		return 0, fmt.Errorf("task %s has no revision: %w", id, ErrCorrupt)
	}
	return decodeRevision(v, "revision of task "+id)
}

// GetTaskChange implements Store.
func (db *DB) GetTaskChange(ctx context.Context, id string) (Change, error) {
	var c Change
	err := db.view(ctx, func(_ *bolt.Tx, bk *buckets) error {
		t, err := bk.getTask(id)
		if err != nil {
			return err
		}
		if t == nil {
			return ErrNotFound
		}
		c.Task = t
		c.Revision, err = bk.taskRevision(id)
		return err
	})
	if err != nil {
		return Change{}, fmt.Errorf("get task %q: %w", id, err)
	}
	return c, nil
}

// Changes implements Store.
func (db *DB) Changes(ctx context.Context, after uint64, limit int) ([]Change, Revisions, error) {
	if limit <= 0 {
		limit = DefaultChangesLimit
	}
	var (
		out  []Change
		revs Revisions
	)
	err := db.view(ctx, func(_ *bolt.Tx, bk *buckets) error {
		var err error
		if revs, err = bk.revisions(); err != nil {
			return err
		}
		if err := revs.checkResume(after); err != nil {
			return err
		}
		c := bk.history.Cursor()
		for k, v := c.Seek(revisionKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			rev, err := decodeRevision(k, "history key")
			if err != nil {
				return err
			}
			t := &pcnodev1.Task{}
			if err := proto.Unmarshal(v, t); err != nil {
				return fmt.Errorf("history revision %d: %w: %w", rev, ErrCorrupt, err)
			}
			out = append(out, Change{Revision: rev, Task: t})
		}
		return nil
	})
	if err != nil {
		return nil, revs, fmt.Errorf("changes after revision %d: %w", after, err)
	}
	return out, revs, nil
}

// UnfinishedChanges implements Store.
func (db *DB) UnfinishedChanges(ctx context.Context) ([]Change, Revisions, error) {
	var (
		out  []Change
		revs Revisions
	)
	err := db.view(ctx, func(_ *bolt.Tx, bk *buckets) error {
		var err error
		if revs, err = bk.revisions(); err != nil {
			return err
		}
		q := listQuery{states: unfinishedStates}
		var ids []string
		for id := range bk.idsDesc(&q) {
			ids = append(ids, id)
		}
		slices.Reverse(ids)
		for _, id := range ids {
			t, err := bk.getTask(id)
			if err != nil {
				return err
			}
			if t == nil {
				return fmt.Errorf("by_state names missing task %s: %w", id, ErrCorrupt)
			}
			rev, err := bk.taskRevision(id)
			if err != nil {
				return err
			}
			out = append(out, Change{Revision: rev, Task: t})
		}
		return nil
	})
	if err != nil {
		return nil, revs, fmt.Errorf("unfinished tasks: %w", err)
	}
	return out, revs, nil
}

// checkRevisions reports every disagreement between the task records, the
// revisions index, the counter and the history: each task has a revision,
// none above the counter and no two alike; the history is a run of
// revisions ending at the counter.
func checkRevisions(bk *buckets) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(args, ErrCorrupt)...))
	}
	r, err := bk.revisions()
	if err != nil {
		return []error{err}
	}
	seen := map[uint64]string{}
	_ = bk.revs.ForEach(func(k, v []byte) error {
		rev, err := decodeRevision(v, "revision of task "+string(k))
		switch {
		case err != nil:
			bad("%v", err)
		case bk.tasks.Get(k) == nil:
			bad("revision %d of missing task %s", rev, k)
		case rev == 0 || rev > r.Current:
			bad("task %s has revision %d, counter is %d", k, rev, r.Current)
		case seen[rev] != "":
			bad("tasks %s and %s both have revision %d", seen[rev], k, rev)
		default:
			seen[rev] = string(k)
		}
		return nil
	})
	_ = bk.tasks.ForEach(func(k, _ []byte) error {
		if bk.revs.Get(k) == nil {
			bad("task %s has no revision", k)
		}
		return nil
	})
	next := r.Oldest
	_ = bk.history.ForEach(func(k, v []byte) error {
		rev, err := decodeRevision(k, "history key")
		if err != nil {
			bad("%v", err)
			return nil
		}
		if rev != next {
			bad("history holds revision %d where %d was due", rev, next)
		}
		next = rev + 1
		if err := proto.Unmarshal(v, &pcnodev1.Task{}); err != nil {
			bad("history revision %d: %v", rev, err)
		}
		return nil
	})
	if next != r.Current+1 {
		bad("history ends at revision %d, counter is %d", next-1, r.Current)
	}
	if n := r.Current + 1 - r.Oldest; n > uint64(bk.historyLimit) {
		bad("history holds %d changes, limit %d", n, bk.historyLimit)
	}
	return errs
}
