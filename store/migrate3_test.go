package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Migration 3 adds an empty node state to a version 2 file and keeps its
// tasks and revisions; the file then records drain and GPU marks.
func TestMigration3(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	id := NewID(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		if _, _, err := migrate(tx, migrations[:2], discard()); err != nil {
			return err
		}
		bk, err := openBucketsV2(tx)
		if err != nil {
			return err
		}
		v, err := proto.Marshal(&pcnodev1.Task{Id: id, State: pcnodev1.TaskState_TASK_STATE_QUEUED})
		if err != nil {
			return err
		}
		if err := bk.Bucket(bucketTasks).Put([]byte(id), v); err != nil {
			return err
		}
		if err := bk.Bucket(bucketByState).Put(stateKey(pcnodev1.TaskState_TASK_STATE_QUEUED, id), nil); err != nil {
			return err
		}
		if err := bk.Bucket(bucketRevisions).Put([]byte(id), []byte{0, 0, 0, 0, 0, 0, 0, 1}); err != nil {
			return err
		}
		return bk.Bucket(bucketMeta).Put(keyRevision, []byte{0, 0, 0, 0, 0, 0, 0, 1})
	})
	if err != nil {
		t.Fatalf("writing a version 2 file: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(version 2 file) = %v", err)
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("Check() after migration 3 = %v", err)
	}
	st, err := db.GetNodeState(ctx)
	if err != nil || st.Draining || len(st.GPUMarks) != 0 {
		t.Errorf("GetNodeState() after migration 3 = %+v, %v, want not draining, no marks", st, err)
	}
	if c, err := db.GetTaskChange(ctx, id); err != nil || c.Revision != 1 {
		t.Errorf("GetTaskChange(%q) after migration 3 = revision %d, %v, want 1", id, c.Revision, err)
	}
	mark := GPUMark{Kind: "xid", XID: 79, Time: time.Date(2026, 3, 1, 13, 0, 0, 5, time.UTC), Message: "GPU has fallen off the bus"}
	if err := db.SetDraining(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := db.PutGPUMark(ctx, "GPU-1", mark); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open() again = %v", err)
	}
	t.Cleanup(func() { db.Close() })
	st, err = db.GetNodeState(ctx)
	if got := st.GPUMarks["GPU-1"]; err != nil || !st.Draining || len(st.GPUMarks) != 1 || !got.Time.Equal(mark.Time) || got.XID != 79 || got.Message != mark.Message {
		t.Errorf("GetNodeState() after reopening = %+v, %v, want draining and %+v", st, err, mark)
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("Check() after writing node state = %v", err)
	}
}

// openBucketsV2 returns the root bucket of a version 2 file.
func openBucketsV2(tx *bolt.Tx) (*bolt.Bucket, error) {
	root := tx.Bucket(bucketRoot)
	if root == nil {
		return nil, ErrCorrupt
	}
	return root, nil
}

// A mark that does not decode is reported by Check and by GetNodeState.
func TestNodeStateCorrupt(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRoot).Bucket(bucketNode).Bucket(bucketGPUMarks).Put([]byte("GPU-1"), []byte("{not json"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetNodeState(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("GetNodeState() with a corrupt mark = %v, want ErrCorrupt", err)
	}
	if err := db.Check(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Check() with a corrupt mark = %v, want ErrCorrupt", err)
	}
}
