package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	pcnodev1 "github.com/pcnode/pcnode/proto/pcnode/v1"
	"github.com/pcnode/pcnode/store"
	"github.com/pcnode/pcnode/store/storetest"
)

// openBolt opens a DB in a fresh directory. At cleanup it closes it, opens
// the file again and checks it (bbolt's tx.Check and the indexes).
func openBolt(t testing.TB) (*store.DB, string) {
	t.Helper()
	return openBoltOptions(t, store.Options{})
}

// openBoltOptions is openBolt with opts; the check at cleanup uses them too.
func openBoltOptions(t testing.TB, opts store.Options) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pcnode.db")
	db, err := store.Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%q) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		checkFile(t, path, opts)
	})
	return db, path
}

func checkFile(t testing.TB, path string, opts ...store.Options) {
	t.Helper()
	var o store.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	db, err := store.Open(path, o)
	if err != nil {
		t.Errorf("Open(%q) to check it = %v", path, err)
		return
	}
	defer db.Close()
	if err := db.Check(context.Background()); err != nil {
		t.Errorf("Check(%q) = %v", path, err)
	}
}

func TestBolt(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, _ := openBolt(t)
		return db
	})
}

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
}

// Everything written is there after Close and Open, and page tokens made
// before stay valid.
func TestBoltReopen(t *testing.T) {
	db, path := openBolt(t)
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var want []*pcnodev1.Task
	for i := range 5 {
		task := &pcnodev1.Task{
			Id:    store.NewID(now.Add(time.Duration(i) * time.Second)),
			State: pcnodev1.TaskState(1 + i),
			Spec:  &pcnodev1.TaskSpec{Name: "t", Labels: map[string]string{"i": string(rune('0' + i))}},
		}
		got, _, err := db.CreateTask(ctx, task, "key-"+task.GetId(), []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, got)
	}
	manifests := []*pcnodev1.OutputManifest{{Name: "out", FileCount: 1, Files: []*pcnodev1.OutputFile{{Path: "x", SizeBytes: 1}}}}
	if err := db.PutOutputs(ctx, want[0].GetId(), manifests); err != nil {
		t.Fatal(err)
	}
	firstPage, token, err := db.ListTasks(ctx, store.ListOptions{PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db2, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open(%q) again = %v", path, err)
	}
	defer db2.Close()
	for _, w := range want {
		got, err := db2.GetTask(ctx, w.GetId())
		if d := cmp.Diff(w, got, protocmp.Transform()); err != nil || d != "" {
			t.Errorf("GetTask(%q) after reopen = %v, diff (-want +got):\n%s", w.GetId(), err, d)
		}
	}
	gotOut, err := db2.GetOutputs(ctx, want[0].GetId())
	if d := cmp.Diff(manifests, gotOut, protocmp.Transform()); err != nil || d != "" {
		t.Errorf("GetOutputs(%q) after reopen = %v, diff (-want +got):\n%s", want[0].GetId(), err, d)
	}
	rest, next, err := db2.ListTasks(ctx, store.ListOptions{PageSize: 10, PageToken: token})
	var gotIDs []string
	for _, task := range append(firstPage, rest...) {
		gotIDs = append(gotIDs, task.GetId())
	}
	wantIDs := []string{want[4].GetId(), want[3].GetId(), want[2].GetId(), want[1].GetId(), want[0].GetId()}
	if d := cmp.Diff(wantIDs, gotIDs); err != nil || next != "" || d != "" {
		t.Errorf("ListTasks with a token from before reopen = %v, next %q, diff (-want +got):\n%s", err, next, d)
	}
	got, existing, err := db2.CreateTask(ctx, &pcnodev1.Task{Id: store.NewID(now)}, "key-"+want[2].GetId(), []byte{2})
	if err != nil || !existing || got.GetId() != want[2].GetId() {
		t.Errorf("CreateTask(same key and hash) after reopen = %q, %v, %v, want %q, true, nil", got.GetId(), existing, err, want[2].GetId())
	}
	unfinished, err := db2.Unfinished(ctx)
	if err != nil || len(unfinished) != 3 {
		t.Errorf("Unfinished() after reopen = %d tasks, %v, want 3", len(unfinished), err)
	}
}

// A second Open of the same file, as by a second daemon, fails clearly once
// the lock timeout has passed, and succeeds after the first closes.
func TestBoltOpenLocked(t *testing.T) {
	db, path := openBolt(t)
	start := time.Now()
	second, err := store.Open(path, store.Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		if second != nil {
			second.Close()
		}
		t.Fatalf("second Open(%q) = %v, want %v", path, err, store.ErrLocked)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond || waited > 5*time.Second {
		t.Errorf("second Open(%q) waited %v, want about the 100ms lock timeout", path, waited)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	second, err = store.Open(path, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatalf("Open(%q) after the first closed = %v", path, err)
	}
	second.Close()
}

func TestBoltOpenFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte("this is not a bbolt file, not at all, but long enough to look at it ..............................."), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
	}{
		{"missing directory", filepath.Join(dir, "nope", "pcnode.db")},
		{"directory", dir},
		{"not bbolt", garbage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := store.Open(tt.path, store.Options{})
			if err == nil {
				db.Close()
				t.Fatalf("Open(%q) = nil error, want one", tt.path)
			}
		})
	}

	t.Run("new file is private", func(t *testing.T) {
		_, path := openBolt(t)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("Open(%q) created mode %v, want 0600", path, perm)
		}
	})
}

func TestBoltRevisions(t *testing.T) {
	storetest.RunRevisions(t, func(t *testing.T, history int) store.Store {
		db, _ := openBoltOptions(t, store.Options{History: history})
		return db
	})
}

func TestMemoryRevisions(t *testing.T) {
	storetest.RunRevisions(t, func(t *testing.T, history int) store.Store {
		m, err := store.NewMemoryHistory(history)
		if err != nil {
			t.Fatalf("NewMemoryHistory(%d) = %v", history, err)
		}
		return m
	})
}

// Revisions and the history survive Close and Open: the counter goes on
// from where it was, and opening with a smaller history prunes it.
func TestBoltRevisionsReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pcnode.db")
	db, err := store.Open(path, store.Options{History: 1000})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range 150 {
		task := &pcnodev1.Task{Id: store.NewID(now.Add(time.Duration(i) * time.Millisecond)), State: pcnodev1.TaskState_TASK_STATE_QUEUED}
		if _, _, err := db.CreateTask(ctx, task, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db, err = store.Open(path, store.Options{History: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got, revs, err := db.Changes(ctx, 0, 1000)
	if err != nil || len(got) != 150 || revs != (store.Revisions{Current: 150, Oldest: 1}) {
		t.Fatalf("Changes(0) after reopening = %d changes, %+v, %v, want 150, {150 1}", len(got), revs, err)
	}
	if _, err := db.ModifyTask(ctx, got[0].Task.GetId(), func(t *pcnodev1.Task) error {
		t.State = pcnodev1.TaskState_TASK_STATE_RUNNING
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if c, err := db.GetTaskChange(ctx, got[0].Task.GetId()); err != nil || c.Revision != 151 {
		t.Errorf("revision of the first change after reopening = %d, %v, want 151", c.Revision, err)
	}
	db.Close()
	db, err = store.Open(path, store.Options{History: store.MinHistory})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, revs, err := db.Changes(ctx, 0, 0); !errors.Is(err, store.ErrCompacted) || revs != (store.Revisions{Current: 151, Oldest: 52}) {
		t.Errorf("Changes(0) after reopening with history %d = %+v, %v, want {151 52}, ErrCompacted", store.MinHistory, revs, err)
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("Check() = %v", err)
	}
	if _, err := store.Open(filepath.Join(t.TempDir(), "x.db"), store.Options{History: 5}); !errors.Is(err, store.ErrInvalidArgument) {
		t.Errorf("Open(History: 5) = %v, want ErrInvalidArgument", err)
	}
}
