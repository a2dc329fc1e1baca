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

// Migration 2 gives every task of a version 1 file a revision in id order,
// starts the counter after them with an empty history, and the file then
// records new state changes from there.
func TestMigration2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ids := []string{NewID(base), NewID(base.Add(time.Millisecond)), NewID(base.Add(2 * time.Millisecond))}
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		if _, _, err := migrate(tx, migrations[:1], discard()); err != nil {
			return err
		}
		root := tx.Bucket(bucketRoot)
		// Written in reverse, so that id order, not write order, counts.
		for i := len(ids) - 1; i >= 0; i-- {
			v, err := proto.Marshal(&pcnodev1.Task{Id: ids[i], State: pcnodev1.TaskState_TASK_STATE_QUEUED})
			if err != nil {
				return err
			}
			if err := root.Bucket(bucketTasks).Put([]byte(ids[i]), v); err != nil {
				return err
			}
			if err := root.Bucket(bucketByState).Put(stateKey(pcnodev1.TaskState_TASK_STATE_QUEUED, ids[i]), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("writing a version 1 file: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := Open(path, Options{History: MinHistory})
	if err != nil {
		t.Fatalf("Open(version 1 file) = %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Check(ctx); err != nil {
		t.Errorf("Check() after migration 2 = %v", err)
	}
	for i, id := range ids {
		c, err := db.GetTaskChange(ctx, id)
		if err != nil || c.Revision != uint64(i+1) {
			t.Errorf("GetTaskChange(%q) = revision %d, %v, want %d, nil", id, c.Revision, err, i+1)
		}
	}
	if _, revs, err := db.Changes(ctx, 0, 0); !errors.Is(err, ErrCompacted) || revs != (Revisions{Current: 3, Oldest: 4}) {
		t.Errorf("Changes(0) after migration 2 = %+v, %v, want {3 4}, ErrCompacted", revs, err)
	}
	if got, _, err := db.Changes(ctx, 3, 0); err != nil || len(got) != 0 {
		t.Errorf("Changes(3) after migration 2 = %d changes, %v, want none", len(got), err)
	}
	if _, err := db.ModifyTask(ctx, ids[0], func(t *pcnodev1.Task) error {
		t.State = pcnodev1.TaskState_TASK_STATE_RUNNING
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, revs, err := db.Changes(ctx, 3, 0)
	if err != nil || len(got) != 1 || got[0].Revision != 4 || got[0].Task.GetId() != ids[0] || revs != (Revisions{Current: 4, Oldest: 4}) {
		t.Errorf("Changes(3) after a state change = %v, %+v, %v, want revision 4 of %s, {4 4}", got, revs, err, ids[0])
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("Check() after a state change = %v", err)
	}
}
