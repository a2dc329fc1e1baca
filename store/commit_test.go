package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
)

// Many tasks changing at once (grouped commits, commit.go): every change
// lands exactly once, in each task's own order, a write to a task that
// does not exist fails alone, and the file checks clean (openBolt).
func TestBoltConcurrentWrites(t *testing.T) {
	db, _ := openBolt(t)
	ctx := context.Background()
	const tasks, changes = 16, 30
	ids := make([]string, tasks)
	for i := range ids {
		task, _, err := db.CreateTask(ctx, benchTask(i), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = task.GetId()
	}
	var wg sync.WaitGroup
	errs := make(chan error, tasks*changes)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range changes {
				if _, err := db.ModifyTask(ctx, id, func(t *pcnodev1.Task) error {
					t.Warnings = append(t.Warnings, fmt.Sprint(k))
					return nil
				}); err != nil {
					errs <- fmt.Errorf("task %d change %d: %w", i, k, err)
				}
				if k%7 == 0 {
					if _, err := db.ModifyTask(ctx, "no-such-task", func(*pcnodev1.Task) error { return nil }); !errors.Is(err, store.ErrNotFound) {
						errs <- fmt.Errorf("ModifyTask(no-such-task) = %v, want ErrNotFound", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i, id := range ids {
		task, err := db.GetTask(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		w := task.GetWarnings()
		if len(w) != changes {
			t.Fatalf("task %d has %d changes, want %d: %v", i, len(w), changes, w)
		}
		for k, s := range w {
			if s != fmt.Sprint(k) {
				t.Fatalf("task %d change %d is %q: out of order or repeated: %v", i, k, s, w)
			}
		}
	}
}
