package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// Migration 4 indexes the labels of the tasks of a version 3 file: a
// label-filtered listing finds them afterwards, the file checks, and the
// tasks, revisions and node state are kept.
func TestMigration4(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	at := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	tasks := []*pcnodev1.Task{
		{Id: NewID(at), State: pcnodev1.TaskState_TASK_STATE_SUCCEEDED, Spec: &pcnodev1.TaskSpec{Labels: map[string]string{"dag": "a", "team": "x"}}},
		{Id: NewID(at), State: pcnodev1.TaskState_TASK_STATE_QUEUED, Spec: &pcnodev1.TaskSpec{Labels: map[string]string{"dag": "b"}}},
		{Id: NewID(at), State: pcnodev1.TaskState_TASK_STATE_QUEUED, Spec: &pcnodev1.TaskSpec{}},
		{Id: NewID(at), State: pcnodev1.TaskState_TASK_STATE_RUNNING, Spec: &pcnodev1.TaskSpec{Labels: map[string]string{"dag": "a"}}},
	}
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		if _, _, err := migrate(tx, migrations[:3], discard()); err != nil {
			return err
		}
		root := tx.Bucket(bucketRoot)
		if root.Bucket(bucketByLabel) != nil {
			t.Errorf("a version 3 file has %s", bucketByLabel)
		}
		for i, task := range tasks {
			v, err := proto.Marshal(task)
			if err != nil {
				return err
			}
			rev := revisionKey(uint64(i + 1))
			if err := root.Bucket(bucketTasks).Put([]byte(task.GetId()), v); err != nil {
				return err
			}
			if err := root.Bucket(bucketByState).Put(stateKey(task.GetState(), task.GetId()), nil); err != nil {
				return err
			}
			if when, ok := retentionTime(task); ok {
				if err := root.Bucket(bucketByFinish).Put(finishKey(when, task.GetId()), nil); err != nil {
					return err
				}
			}
			if err := root.Bucket(bucketRevisions).Put([]byte(task.GetId()), rev); err != nil {
				return err
			}
			if err := root.Bucket(bucketMeta).Put(keyRevision, rev); err != nil {
				return err
			}
		}
		return root.Bucket(bucketNode).Put(keyDraining, []byte{1})
	})
	if err != nil {
		t.Fatalf("writing a version 3 file: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(version 3 file) = %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Check(ctx); err != nil {
		t.Errorf("Check() after migration 4 = %v", err)
	}
	tests := []struct {
		labels map[string]string
		states []pcnodev1.TaskState
		want   []string
	}{
		{map[string]string{"dag": "a"}, nil, []string{tasks[3].GetId(), tasks[0].GetId()}},
		{map[string]string{"dag": "a", "team": "x"}, nil, []string{tasks[0].GetId()}},
		{map[string]string{"dag": "b"}, []pcnodev1.TaskState{pcnodev1.TaskState_TASK_STATE_QUEUED}, []string{tasks[1].GetId()}},
		{map[string]string{"dag": "c"}, nil, nil},
	}
	for _, tt := range tests {
		page, _, err := db.ListTasks(ctx, ListOptions{Labels: tt.labels, States: tt.states})
		var got []string
		for _, p := range page {
			got = append(got, p.GetId())
		}
		if err != nil || len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) || (len(got) > 1 && got[1] != tt.want[1]) {
			t.Errorf("ListTasks(%v, %v) after migration 4 = %v, %v, want %v", tt.labels, tt.states, got, err, tt.want)
		}
	}
	if c, err := db.GetTaskChange(ctx, tasks[2].GetId()); err != nil || c.Revision != 3 {
		t.Errorf("GetTaskChange(%q) after migration 4 = revision %d, %v, want 3", tasks[2].GetId(), c.Revision, err)
	}
	if st, err := db.GetNodeState(ctx); err != nil || !st.Draining {
		t.Errorf("GetNodeState() after migration 4 = %+v, %v, want draining kept", st, err)
	}
}

// BenchmarkMigration4 times migration 4 on a file of 100k labelled tasks
// (10k under PCNODE_BENCH_CI): the first start of a daemon of schema 4 on
// a node that kept that many tasks.
func BenchmarkMigration4(b *testing.B) {
	n := 100_000
	if os.Getenv("PCNODE_BENCH_CI") != "" {
		n = 10_000
	}
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "db")
	db, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	at := time.Now().Add(-time.Hour)
	for i := 0; i < n; i += 10_000 {
		var batch []*pcnodev1.Task
		for j := i; j < min(n, i+10_000); j++ {
			batch = append(batch, &pcnodev1.Task{Id: NewID(at), State: pcnodev1.TaskState_TASK_STATE_SUCCEEDED,
				Spec: &pcnodev1.TaskSpec{Name: "t", Image: "img", Labels: map[string]string{"project": "demo", "dag": fmt.Sprint(j / 100)}}})
		}
		if err := db.CreateTasks(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		// Back to version 3: no by_label.
		raw, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		err = raw.Update(func(tx *bolt.Tx) error {
			if err := tx.Bucket(bucketRoot).DeleteBucket(bucketByLabel); err != nil {
				return err
			}
			return setSchemaVersion(tx, 3)
		})
		if cerr := raw.Close(); err != nil || cerr != nil {
			b.Fatal(err, cerr)
		}
		b.StartTimer()
		start := time.Now()
		db, err := Open(path, Options{})
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		page, _, err := db.ListTasks(ctx, ListOptions{Labels: map[string]string{"dag": "0"}})
		if cerr := db.Close(); err != nil || cerr != nil || len(page) != 100 {
			b.Fatalf("ListTasks(dag=0) after migration 4 = %d tasks, %v, %v; want 100", len(page), err, cerr)
		}
		fmt.Printf("migration 4 of %d tasks: Open took %.2f s\n", n, took.Seconds())
		b.StartTimer()
	}
}
