package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
)

// TestIdempotencyKeysScopedBySubmitter checks, on both stores, that one
// identity's idempotency key never returns another identity's task, that
// each identity's own key still does, and that deleting one task leaves the
// other's key in place.
func TestIdempotencyKeysScopedBySubmitter(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "pcnode.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(ctx); err != nil {
			t.Errorf("Check: %v", err)
		}
		db.Close()
	})
	for name, s := range map[string]Store{"bolt": db, "memory": NewMemory()} {
		t.Run(name, func(t *testing.T) {
			now := time.Now()
			create := func(by string, at time.Duration) (*pcnodev1.Task, bool) {
				t.Helper()
				task := &pcnodev1.Task{Id: NewID(now.Add(at)), State: pcnodev1.TaskState_TASK_STATE_QUEUED, SubmittedBy: by}
				got, existing, err := s.CreateTask(ctx, task, "key-1", []byte("hash"))
				if err != nil {
					t.Fatalf("CreateTask(%s, key-1) = %v", by, err)
				}
				return got, existing
			}
			a, _ := create("spiffe://x/a", 0)
			b, existing := create("uid:1000", time.Millisecond)
			if existing || b.GetId() == a.GetId() || b.GetIdempotencyKey() != "key-1" {
				t.Fatalf("second identity's key-1 = task %s (existing %v, key %q), want a new task of its own with key-1", b.GetId(), existing, b.GetIdempotencyKey())
			}
			if again, existing := create("spiffe://x/a", 2*time.Millisecond); !existing || again.GetId() != a.GetId() {
				t.Errorf("first identity's key-1 again = %s (existing %v), want %s", again.GetId(), existing, a.GetId())
			}
			if _, _, err := s.CreateTask(ctx, &pcnodev1.Task{Id: NewID(now.Add(3 * time.Millisecond)), SubmittedBy: "uid:1000"}, "key-1", []byte("other")); !errors.Is(err, ErrKeyConflict) {
				t.Errorf("key-1 with another spec = %v, want %v", err, ErrKeyConflict)
			}
			done := proto.CloneOf(a)
			done.State = pcnodev1.TaskState_TASK_STATE_SUCCEEDED
			if err := s.UpdateTask(ctx, done); err != nil {
				t.Fatal(err)
			}
			moved := proto.CloneOf(done)
			moved.SubmittedBy = "uid:0"
			if err := s.UpdateTask(ctx, moved); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("changing submitted_by = %v, want %v", err, ErrInvalidArgument)
			}
			if err := s.DeleteTask(ctx, a.GetId()); err != nil {
				t.Fatal(err)
			}
			if again, existing := create("uid:1000", 4*time.Millisecond); !existing || again.GetId() != b.GetId() {
				t.Errorf("after deleting the other identity's task, key-1 = %s (existing %v), want %s", again.GetId(), existing, b.GetId())
			}
		})
	}
}

// TestFindIdempotencyKey checks, on both stores, that FindIdempotencyKey
// returns the task and spec hash CreateTask recorded for the submitter's
// key, ErrNotFound for another submitter, an unknown or an empty key, and
// ErrNotFound again once the task is deleted.
func TestFindIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "pcnode.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Check(ctx); err != nil {
			t.Errorf("Check: %v", err)
		}
		db.Close()
	})
	for name, s := range map[string]Store{"bolt": db, "memory": NewMemory()} {
		t.Run(name, func(t *testing.T) {
			task := &pcnodev1.Task{Id: NewID(time.Now()), State: pcnodev1.TaskState_TASK_STATE_QUEUED, SubmittedBy: "uid:1000"}
			if _, _, err := s.CreateTask(ctx, task, "key-f", []byte("hash-f")); err != nil {
				t.Fatal(err)
			}
			got, hash, err := s.FindIdempotencyKey(ctx, "uid:1000", "key-f")
			if err != nil || got.GetId() != task.GetId() || string(hash) != "hash-f" {
				t.Errorf("FindIdempotencyKey(uid:1000, key-f) = %s, %q, %v; want %s, %q", got.GetId(), hash, err, task.GetId(), "hash-f")
			}
			for _, c := range [][2]string{{"uid:0", "key-f"}, {"uid:1000", "other"}, {"uid:1000", ""}} {
				if _, _, err := s.FindIdempotencyKey(ctx, c[0], c[1]); !errors.Is(err, ErrNotFound) {
					t.Errorf("FindIdempotencyKey(%q, %q) = %v, want %v", c[0], c[1], err, ErrNotFound)
				}
			}
			if err := s.DeleteTask(ctx, task.GetId()); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.FindIdempotencyKey(ctx, "uid:1000", "key-f"); !errors.Is(err, ErrNotFound) {
				t.Errorf("FindIdempotencyKey after DeleteTask = %v, want %v", err, ErrNotFound)
			}
		})
	}
}
