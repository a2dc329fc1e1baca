package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// NodeState is what was set on the node itself, rather than on a task, that
// must outlive the daemon: whether it is draining, and the GPUs marked
// unhealthy. It holds no credentials.
type NodeState struct {
	// Draining is true when the node admits no new tasks (DrainNode).
	Draining bool
	// GPUMarks are the GPUs marked unhealthy, by GPU uuid, each with the
	// event that marked it. A GPU without a mark was not known unhealthy.
	GPUMarks map[string]GPUMark
}

// GPUMark is the critical event that made a GPU unhealthy.
type GPUMark struct {
	// Kind names the event, e.g. "xid" or "double_bit_ecc"; the daemon
	// defines the names, the store only bounds them.
	Kind string `json:"kind"`
	// XID is the XID code for Kind "xid"; 0 otherwise.
	XID int `json:"xid,omitempty"`
	// Time is when the event happened.
	Time time.Time `json:"time"`
	// Message is the GPU's health message when it was marked.
	Message string `json:"message,omitempty"`
}

// Limits of what the node state accepts.
const (
	// MaxGPUUUIDLen is the longest GPU uuid a mark may be stored under.
	MaxGPUUUIDLen = 128
	// MaxGPUMarkKindLen is the longest GPUMark.Kind.
	MaxGPUMarkKindLen = 64
	// MaxGPUMarkMessageLen is the longest GPUMark.Message, in bytes.
	MaxGPUMarkMessageLen = 4096
)

// validGPUMark checks a mark and the uuid it is stored under.
func validGPUMark(uuid string, m GPUMark) error {
	if err := validGPUUUID(uuid); err != nil {
		return err
	}
	switch {
	case m.Kind == "" || len(m.Kind) > MaxGPUMarkKindLen || !printable(m.Kind):
		return fmt.Errorf("GPU %s: mark kind %q: empty, over %d bytes or not printable: %w", uuid, m.Kind, MaxGPUMarkKindLen, ErrInvalidArgument)
	case m.XID < 0:
		return fmt.Errorf("GPU %s: negative XID %d: %w", uuid, m.XID, ErrInvalidArgument)
	case m.Time.IsZero():
		return fmt.Errorf("GPU %s: mark without a time: %w", uuid, ErrInvalidArgument)
	case len(m.Message) > MaxGPUMarkMessageLen || !utf8.ValidString(m.Message):
		return fmt.Errorf("GPU %s: mark message of %d bytes, at most %d of UTF-8: %w", uuid, len(m.Message), MaxGPUMarkMessageLen, ErrInvalidArgument)
	}
	return nil
}

// validGPUUUID checks a uuid used as a key: 1 to MaxGPUUUIDLen printable
// ASCII bytes.
func validGPUUUID(uuid string) error {
	if uuid == "" || len(uuid) > MaxGPUUUIDLen || !printable(uuid) {
		return fmt.Errorf("GPU uuid %q: empty, over %d bytes or not printable ASCII: %w", uuid, MaxGPUUUIDLen, ErrInvalidArgument)
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// cloneNodeState deep-copies s.
func cloneNodeState(s NodeState) NodeState {
	s.GPUMarks = maps.Clone(s.GPUMarks)
	if s.GPUMarks == nil {
		s.GPUMarks = map[string]GPUMark{}
	}
	return s
}

func encodeGPUMark(m GPUMark) ([]byte, error) { return json.Marshal(m) }

func decodeGPUMark(uuid string, v []byte) (GPUMark, error) {
	var m GPUMark
	if err := json.Unmarshal(v, &m); err != nil {
		return GPUMark{}, fmt.Errorf("GPU mark of %s: %w: %w", uuid, ErrCorrupt, err)
	}
	if err := validGPUMark(uuid, m); err != nil {
		return GPUMark{}, fmt.Errorf("GPU mark of %s: %w: %w", uuid, ErrCorrupt, err)
	}
	return m, nil
}

// GetNodeState implements Store.
func (db *DB) GetNodeState(ctx context.Context) (NodeState, error) {
	s := NodeState{GPUMarks: map[string]GPUMark{}}
	err := db.view(ctx, func(_ *bolt.Tx, bk *buckets) error {
		s.Draining = string(bk.node.Get(keyDraining)) == "\x01"
		return bk.gpuMarks.ForEach(func(k, v []byte) error {
			m, err := decodeGPUMark(string(k), v)
			if err != nil {
				return err
			}
			s.GPUMarks[string(k)] = m
			return nil
		})
	})
	if err != nil {
		return NodeState{}, fmt.Errorf("get node state: %w", err)
	}
	return s, nil
}

// SetDraining implements Store.
func (db *DB) SetDraining(ctx context.Context, draining bool) error {
	err := db.update(ctx, func(_ *bolt.Tx, bk *buckets) error {
		if !draining {
			return bk.node.Delete(keyDraining)
		}
		return bk.node.Put(keyDraining, []byte{1})
	})
	if err != nil {
		return fmt.Errorf("set draining %v: %w", draining, err)
	}
	return nil
}

// PutGPUMark implements Store.
func (db *DB) PutGPUMark(ctx context.Context, uuid string, mark GPUMark) error {
	if err := validGPUMark(uuid, mark); err != nil {
		return fmt.Errorf("put GPU mark: %w", err)
	}
	v, err := encodeGPUMark(mark)
	if err != nil {
		return fmt.Errorf("put GPU mark of %s: %w", uuid, err)
	}
	if err := db.update(ctx, func(_ *bolt.Tx, bk *buckets) error { return bk.gpuMarks.Put([]byte(uuid), v) }); err != nil {
		return fmt.Errorf("put GPU mark of %s: %w", uuid, err)
	}
	return nil
}

// DeleteGPUMark implements Store.
func (db *DB) DeleteGPUMark(ctx context.Context, uuid string) error {
	if err := validGPUUUID(uuid); err != nil {
		return fmt.Errorf("delete GPU mark: %w", err)
	}
	if err := db.update(ctx, func(_ *bolt.Tx, bk *buckets) error { return bk.gpuMarks.Delete([]byte(uuid)) }); err != nil {
		return fmt.Errorf("delete GPU mark of %s: %w", uuid, err)
	}
	return nil
}

// checkNodeState reports node state entries that do not decode.
func checkNodeState(bk *buckets) []error {
	var errs []error
	if v := bk.node.Get(keyDraining); v != nil && string(v) != "\x01" {
		errs = append(errs, fmt.Errorf("node/draining holds %q: %w", v, ErrCorrupt))
	}
	_ = bk.gpuMarks.ForEach(func(k, v []byte) error {
		if _, err := decodeGPUMark(string(k), v); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	return errs
}

// addNodeState creates the node bucket of schema version 3.
func addNodeState(tx *bolt.Tx) error {
	root := tx.Bucket(bucketRoot)
	if root == nil {
		return fmt.Errorf("bucket %s missing: %w", bucketRoot, ErrCorrupt)
	}
	node, err := root.CreateBucketIfNotExists(bucketNode)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", bucketNode, err)
	}
	if _, err := node.CreateBucketIfNotExists(bucketGPUMarks); err != nil {
		return fmt.Errorf("bucket %s/%s: %w", bucketNode, bucketGPUMarks, err)
	}
	return nil
}

// GetNodeState implements Store.
func (m *Memory) GetNodeState(ctx context.Context) (NodeState, error) {
	unlock, err := m.lock(ctx, false)
	if err != nil {
		return NodeState{}, fmt.Errorf("get node state: %w", err)
	}
	defer unlock()
	return cloneNodeState(m.node), nil
}

// SetDraining implements Store.
func (m *Memory) SetDraining(ctx context.Context, draining bool) error {
	unlock, err := m.lock(ctx, true)
	if err != nil {
		return fmt.Errorf("set draining %v: %w", draining, err)
	}
	defer unlock()
	m.node.Draining = draining
	return nil
}

// PutGPUMark implements Store.
func (m *Memory) PutGPUMark(ctx context.Context, uuid string, mark GPUMark) error {
	if err := validGPUMark(uuid, mark); err != nil {
		return fmt.Errorf("put GPU mark: %w", err)
	}
	unlock, err := m.lock(ctx, true)
	if err != nil {
		return fmt.Errorf("put GPU mark of %s: %w", uuid, err)
	}
	defer unlock()
	if m.node.GPUMarks == nil {
		m.node.GPUMarks = map[string]GPUMark{}
	}
	// As the file does: what comes back is what JSON keeps of the time.
	mark.Time = mark.Time.Round(0)
	m.node.GPUMarks[uuid] = mark
	return nil
}

// DeleteGPUMark implements Store.
func (m *Memory) DeleteGPUMark(ctx context.Context, uuid string) error {
	if err := validGPUUUID(uuid); err != nil {
		return fmt.Errorf("delete GPU mark: %w", err)
	}
	unlock, err := m.lock(ctx, true)
	if err != nil {
		return fmt.Errorf("delete GPU mark of %s: %w", uuid, err)
	}
	defer unlock()
	delete(m.node.GPUMarks, uuid)
	return nil
}
