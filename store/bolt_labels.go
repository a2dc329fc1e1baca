package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// maxLabelKeyLen bounds a by_label key well inside bbolt's key limit
// (bolt.MaxKeySize, 32 KiB). The API allows far shorter labels.
const maxLabelKeyLen = 16 << 10

// labelPrefix is the by_label prefix of label k=v: uvarint(len(k)) ‖ k ‖
// uvarint(len(v)) ‖ v. The lengths make it prefix-free: the prefix of one
// label never begins the key of another.
func labelPrefix(k, v string) []byte {
	b := make([]byte, 0, 2*binary.MaxVarintLen64+len(k)+len(v)+IDLen)
	b = binary.AppendUvarint(b, uint64(len(k)))
	b = append(b, k...)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// labelKeys are the by_label keys of task t, or ErrInvalidArgument for a
// label too long to index.
func labelKeys(t *pcnodev1.Task) ([][]byte, error) {
	labels := t.GetSpec().GetLabels()
	if len(labels) == 0 {
		return nil, nil
	}
	keys := make([][]byte, 0, len(labels))
	for _, k := range sortedLabels(labels) {
		key := append(labelPrefix(k, labels[k]), t.GetId()...)
		if len(key) > maxLabelKeyLen {
			return nil, fmt.Errorf("task %s: label %.64q of %d bytes, at most %d with its value: %w", t.GetId(), k, len(k)+len(labels[k]), maxLabelKeyLen-IDLen-2*binary.MaxVarintLen64, ErrInvalidArgument)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// addLabelIndex is migration 4: the by_label index of every stored task.
func addLabelIndex(tx *bolt.Tx) error {
	root := tx.Bucket(bucketRoot)
	if root == nil {
		return fmt.Errorf("bucket %s missing: %w", bucketRoot, ErrCorrupt)
	}
	tasks := root.Bucket(bucketTasks)
	if tasks == nil {
		return fmt.Errorf("bucket %s missing: %w", bucketTasks, ErrCorrupt)
	}
	byLabel, err := root.CreateBucketIfNotExists(bucketByLabel)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucketByLabel, err)
	}
	// bbolt splits nodes only at commit: keys put in task order land in
	// the middle of the bucket and grow one node quadratically. Sorted,
	// they only append.
	var keys [][]byte
	err = tasks.ForEach(func(k, v []byte) error {
		t := &pcnodev1.Task{}
		if err := proto.Unmarshal(v, t); err != nil {
			return fmt.Errorf("task %s: %w: %w", k, ErrCorrupt, err)
		}
		tk, err := labelKeys(t)
		keys = append(keys, tk...)
		return err
	})
	if err != nil {
		return err
	}
	slices.SortFunc(keys, bytes.Compare)
	byLabel.FillPercent = 1 // appended in order: pages may be full
	for _, key := range keys {
		if err := byLabel.Put(key, nil); err != nil {
			return err
		}
	}
	return nil
}

// putLabels and deleteLabels keep by_label in step with a task's labels.
func (bk *buckets) putLabels(t *pcnodev1.Task) error {
	keys, err := labelKeys(t)
	if err != nil {
		return err
	}
	for _, key := range keys {
		if err := bk.byLabel.Put(key, nil); err != nil {
			return err
		}
	}
	return nil
}

func (bk *buckets) deleteLabels(t *pcnodev1.Task) error {
	labels := t.GetSpec().GetLabels()
	for k, v := range labels {
		if err := bk.byLabel.Delete(append(labelPrefix(k, v), t.GetId()...)); err != nil {
			return err
		}
	}
	return nil
}

// sameLabels reports whether a and b carry the same labels.
func sameLabels(a, b *pcnodev1.Task) bool {
	la, lb := a.GetSpec().GetLabels(), b.GetSpec().GetLabels()
	if len(la) != len(lb) {
		return false
	}
	for k, v := range la {
		if w, ok := lb[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// idIter walks task ids downwards. head is the current id, "" once done;
// seekLE moves to the largest id at or below id, never upwards (an
// iterator already there stays).
type idIter interface {
	head() string
	advance()
	seekLE(id string)
}

// seekLE implements idIter.
func (it *descIter) seekLE(id string) {
	if h := it.head(); h == "" || h <= id {
		return
	}
	k := append(bytes.Clone(it.prefix), id...)
	switch ck, _ := it.c.Seek(k); {
	case ck == nil:
		it.k, _ = it.c.Last()
	case bytes.Equal(ck, k):
		it.k = ck
	default:
		it.k, _ = it.c.Prev()
	}
}

// unionIter merges iterators over disjoint sets of ids (the by_state
// ranges of several states: a task is in one state).
type unionIter []*descIter

func (u unionIter) best() *descIter {
	var best *descIter
	for _, it := range u {
		if h := it.head(); h != "" && (best == nil || h > best.head()) {
			best = it
		}
	}
	return best
}

func (u unionIter) head() string {
	if b := u.best(); b != nil {
		return b.head()
	}
	return ""
}

func (u unionIter) advance() {
	if b := u.best(); b != nil {
		b.advance()
	}
}

func (u unionIter) seekLE(id string) {
	for _, it := range u {
		it.seekLE(id)
	}
}

// intersect yields the ids every one of its holds, downwards: each
// iterator in turn is moved down to the lowest head of the others until
// all agree, so that the walk skips, by seeks, the ranges where one of
// them has nothing.
func intersect(its []idIter, yield func(string) bool) {
	for {
		target := its[0].head()
		if target == "" {
			return
		}
		agreed := true
		for _, it := range its[1:] {
			it.seekLE(target)
			h := it.head()
			if h == "" {
				return
			}
			if h != target {
				agreed, target = false, h
			}
		}
		if !agreed {
			its[0].seekLE(target)
			continue
		}
		if !yield(target) {
			return
		}
		its[0].advance()
	}
}
