package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// stateKey is a by_state key: state (uint32, big endian) ‖ id.
func stateKey(s pcnodev1.TaskState, id string) []byte {
	return append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(id)), uint32(s)), id...)
}

// finishKey is a by_finish key: seconds (uint64 big endian, sign bit
// flipped so that byte order is time order) ‖ nanoseconds (uint32 big
// endian) ‖ id.
func finishKey(t time.Time, id string) []byte {
	b := make([]byte, 0, 12+len(id))
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix())^(1<<63))
	b = binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
	return append(b, id...)
}

// idempotency values: uvarint(len(id)) ‖ id ‖ spec hash.

func encodeIdempotency(id string, specHash []byte) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 1+len(id)+len(specHash)), uint64(len(id)))
	b = append(b, id...)
	return append(b, specHash...)
}

func decodeIdempotency(v []byte) (id string, specHash []byte, err error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > uint64(len(v)-k) {
		return "", nil, fmt.Errorf("idempotency entry of %d bytes: %w", len(v), ErrCorrupt)
	}
	rest := v[k:]
	return string(rest[:n]), bytes.Clone(rest[n:]), nil
}

// encodeManifests writes manifests as repeated field 1.
func encodeManifests(ms []*pcnodev1.OutputManifest) ([]byte, error) {
	var b []byte
	for i, m := range ms {
		if m == nil {
			return nil, fmt.Errorf("manifest %d is nil: %w", i, ErrInvalidArgument)
		}
		mb, err := proto.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("manifest %d: %w", i, err)
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, mb)
	}
	return b, nil
}

func decodeManifests(b []byte) ([]*pcnodev1.OutputManifest, error) {
	var out []*pcnodev1.OutputManifest
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return nil, fmt.Errorf("output manifests: bad field at %d bytes from the end: %w", len(b), ErrCorrupt)
		}
		b = b[n:]
		mb, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, fmt.Errorf("output manifests: truncated: %w", ErrCorrupt)
		}
		b = b[n:]
		m := &pcnodev1.OutputManifest{}
		if err := proto.Unmarshal(mb, m); err != nil {
			return nil, fmt.Errorf("output manifests: %w: %w", ErrCorrupt, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// getTask reads a task; nil, nil when absent.
func (bk *buckets) getTask(id string) (*pcnodev1.Task, error) {
	v := bk.tasks.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	t := &pcnodev1.Task{}
	if err := proto.Unmarshal(v, t); err != nil {
		return nil, fmt.Errorf("task %s: %w: %w", id, ErrCorrupt, err)
	}
	return t, nil
}

// putTask writes next, which replaces prev (nil for a new task), and moves
// its index entries.
func (bk *buckets) putTask(prev, next *pcnodev1.Task) error {
	v, err := proto.Marshal(next)
	if err != nil {
		return fmt.Errorf("task %s: %w", next.GetId(), err)
	}
	if prev != nil {
		if err := bk.removeIndexes(prev); err != nil {
			return err
		}
		if !sameLabels(prev, next) {
			if err := bk.deleteLabels(prev); err != nil {
				return err
			}
		}
	}
	id := next.GetId()
	if err := bk.tasks.Put([]byte(id), v); err != nil {
		return err
	}
	if err := bk.byState.Put(stateKey(next.GetState(), id), nil); err != nil {
		return err
	}
	if prev == nil || !sameLabels(prev, next) {
		if err := bk.putLabels(next); err != nil {
			return err
		}
	}
	if isStateChange(prev, next) {
		if err := bk.record(id, v); err != nil {
			return err
		}
	}
	if when, ok := retentionTime(next); ok {
		if err := bk.byFinish.Put(finishKey(when, id), nil); err != nil {
			return err
		}
	}
	return nil
}

func (bk *buckets) removeIndexes(t *pcnodev1.Task) error {
	id := t.GetId()
	if err := bk.byState.Delete(stateKey(t.GetState(), id)); err != nil {
		return err
	}
	if when, ok := retentionTime(t); ok {
		if err := bk.byFinish.Delete(finishKey(when, id)); err != nil {
			return err
		}
	}
	return nil
}

// deleteTask removes t and everything kept for it.
func (bk *buckets) deleteTask(t *pcnodev1.Task) error {
	id := t.GetId()
	if err := bk.removeIndexes(t); err != nil {
		return err
	}
	if err := bk.deleteLabels(t); err != nil {
		return err
	}
	if key := t.GetIdempotencyKey(); key != "" {
		key = idempotencyIndexKey(t.GetSubmittedBy(), key)
		// Only remove the entry if it is this task's.
		if v := bk.idempotency.Get([]byte(key)); v != nil {
			if owner, _, err := decodeIdempotency(v); err != nil || owner == id {
				if err := bk.idempotency.Delete([]byte(key)); err != nil {
					return err
				}
			}
		}
	}
	if err := bk.outputs.Delete([]byte(id)); err != nil {
		return err
	}
	if err := bk.revs.Delete([]byte(id)); err != nil {
		return err
	}
	return bk.tasks.Delete([]byte(id))
}

// descIter walks the keys of a bucket that start with prefix, from the
// largest below prefix‖below (or the largest of all when below is empty)
// downwards, and yields what follows the prefix.
type descIter struct {
	c      *bolt.Cursor
	prefix []byte
	k      []byte
}

func newDescIter(b *bolt.Bucket, prefix []byte, below string) *descIter {
	it := &descIter{c: b.Cursor(), prefix: prefix}
	var seek []byte
	switch {
	case below != "":
		seek = append(bytes.Clone(prefix), below...)
	case len(prefix) > 0:
		seek = append(bytes.Clone(prefix), 0xff) // above every id
	}
	if seek == nil {
		it.k, _ = it.c.Last()
	} else if k, _ := it.c.Seek(seek); k == nil {
		it.k, _ = it.c.Last()
	} else {
		it.k, _ = it.c.Prev()
	}
	return it
}

// head returns the current id, "" when done.
func (it *descIter) head() string {
	if it.k == nil || !bytes.HasPrefix(it.k, it.prefix) {
		return ""
	}
	return string(it.k[len(it.prefix):])
}

func (it *descIter) advance() { it.k, _ = it.c.Prev() }

// idsDesc yields task ids below q.after, newest first: from tasks; or,
// with filters, the intersection of the by_label range of each label
// (intersect) and the by_state ranges of q.states merged. Every id passes
// the filters of the indexes; the caller still checks the task.
func (bk *buckets) idsDesc(q *listQuery) func(yield func(string) bool) {
	return func(yield func(string) bool) {
		var its []idIter
		for _, k := range sortedLabels(q.labels) {
			its = append(its, newDescIter(bk.byLabel, labelPrefix(k, q.labels[k]), q.after))
		}
		if q.states != nil {
			u := make(unionIter, len(q.states))
			for i, s := range q.states {
				u[i] = newDescIter(bk.byState, stateKey(s, ""), q.after)
			}
			its = append(its, u)
		}
		if len(its) == 0 {
			its = append(its, newDescIter(bk.tasks, nil, q.after))
		}
		intersect(its, yield)
	}
}

// checkIndexes reports every disagreement between the records and the
// indexes.
func checkIndexes(ctx context.Context, bk *buckets) []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(args, ErrCorrupt)...))
	}
	wantState := map[string]bool{}
	wantFinish := map[string]bool{}
	wantLabel := map[string]bool{}
	wantKeys := map[string]string{}
	err := bk.tasks.ForEach(func(k, v []byte) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := string(k)
		t := &pcnodev1.Task{}
		if err := proto.Unmarshal(v, t); err != nil {
			bad("task %s: %v", id, err)
			return nil
		}
		if t.GetId() != id {
			bad("task under key %s has id %q", id, t.GetId())
		}
		wantState[string(stateKey(t.GetState(), id))] = true
		if when, ok := retentionTime(t); ok {
			wantFinish[string(finishKey(when, id))] = true
		}
		keys, err := labelKeys(t)
		if err != nil {
			bad("task %s: %v", id, err)
		}
		for _, k := range keys {
			wantLabel[string(k)] = true
		}
		if key := t.GetIdempotencyKey(); key != "" {
			wantKeys[idempotencyIndexKey(t.GetSubmittedBy(), key)] = id
		}
		return nil
	})
	if err != nil {
		return append(errs, err)
	}
	checkSet := func(name string, b *bolt.Bucket, want map[string]bool) {
		_ = b.ForEach(func(k, _ []byte) error {
			if !want[string(k)] {
				bad("%s entry %q has no matching task", name, k)
			}
			delete(want, string(k))
			return nil
		})
		for k := range want {
			bad("%s entry %q missing", name, k)
		}
	}
	checkSet("by_state", bk.byState, wantState)
	checkSet("by_finish", bk.byFinish, wantFinish)
	checkSet("by_label", bk.byLabel, wantLabel)
	_ = bk.idempotency.ForEach(func(k, v []byte) error {
		id, _, err := decodeIdempotency(v)
		switch {
		case err != nil:
			bad("idempotency key %q: %v", k, err)
		case wantKeys[string(k)] != id:
			bad("idempotency key %q names task %s, which does not carry it", k, id)
		}
		delete(wantKeys, string(k))
		return nil
	})
	for k, id := range wantKeys {
		bad("task %s carries idempotency key %q, which is not indexed", id, k)
	}
	_ = bk.outputs.ForEach(func(k, v []byte) error {
		if bk.tasks.Get(k) == nil {
			bad("outputs of missing task %s", k)
		}
		if _, err := decodeManifests(v); err != nil {
			bad("outputs of task %s: %v", k, err)
		}
		return nil
	})
	return errs
}
