package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openGroupTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "pcnode.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("group-test"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return db
}

// put is a write of key=value in the test bucket that counts its runs.
func put(key string, runs *atomic.Int32) func(*bolt.Tx, *buckets) error {
	return func(tx *bolt.Tx, _ *buckets) error {
		runs.Add(1)
		return tx.Bucket([]byte("group-test")).Put([]byte(key), []byte("v"))
	}
}

func get(t *testing.T, db *DB, key string) bool {
	t.Helper()
	var found bool
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		found = tx.Bucket([]byte("group-test")).Get([]byte(key)) != nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return found
}

func req(ctx context.Context, fn func(*bolt.Tx, *buckets) error) *writeReq {
	return &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1), lead: make(chan struct{}, 1)}
}

// A failed write of a group changes nothing and gets its own error; the
// writes before it run again, those after it once, and all of them commit.
func TestCommitGroupWithoutTheFailedWrite(t *testing.T) {
	db := openGroupTest(t)
	ctx := context.Background()
	boom := errors.New("boom")
	var ra, rb, rc, rd atomic.Int32
	a := req(ctx, put("a", &ra))
	b := req(ctx, func(tx *bolt.Tx, bk *buckets) error {
		rb.Add(1)
		if err := put("b", new(atomic.Int32))(tx, bk); err != nil {
			return err
		}
		return boom // after a write of its own: rolled back
	})
	c := req(ctx, put("c", &rc))
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	d := req(cancelled, put("d", &rd))
	db.commitGroup([]*writeReq{a, b, d, c})
	for name, want := range map[*writeReq]error{a: nil, b: boom, c: nil, d: context.Canceled} {
		if got := <-name.done; !errors.Is(got, want) {
			t.Errorf("outcome %v, want %v", got, want)
		}
	}
	if ra.Load() != 2 || rb.Load() != 1 || rc.Load() != 1 || rd.Load() != 0 {
		t.Errorf("runs a=%d b=%d c=%d d=%d, want 2, 1, 1, 0", ra.Load(), rb.Load(), rc.Load(), rd.Load())
	}
	for key, want := range map[string]bool{"a": true, "b": false, "c": true, "d": false} {
		if got := get(t, db, key); got != want {
			t.Errorf("key %s stored = %v, want %v", key, got, want)
		}
	}
}

// Writes that arrive while a commit is under way wait for it, then commit
// together; one whose context ends while it waits does not run.
func TestUpdateGroupsWhileACommitIsUnderWay(t *testing.T) {
	db := openGroupTest(t)
	ctx := context.Background()
	inside, release := make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- db.update(ctx, func(tx *bolt.Tx, bk *buckets) error {
			close(inside)
			<-release // hold the commit: the writes below queue up
			return put("first", new(atomic.Int32))(tx, bk)
		})
	}()
	<-inside
	const n = 20
	var runs atomic.Int32
	errs := make(chan error, n+1)
	for i := range n {
		go func() { errs <- db.update(ctx, put(string(rune('A'+i)), &runs)) }()
	}
	cctx, cancel := context.WithCancel(ctx)
	var cancelledRuns atomic.Int32
	go func() { errs <- db.update(cctx, put("cancelled", &cancelledRuns)) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		db.writer.mu.Lock()
		queued := len(db.writer.pending)
		db.writer.mu.Unlock()
		if queued == n+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued behind the commit, want %d", queued, n+1)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("first write = %v", err)
	}
	var cancelled int
	for range n + 1 {
		if err := <-errs; errors.Is(err, context.Canceled) {
			cancelled++
		} else if err != nil {
			t.Errorf("queued write = %v", err)
		}
	}
	if cancelled != 1 || cancelledRuns.Load() != 0 || get(t, db, "cancelled") {
		t.Errorf("the cancelled write: %d cancelled outcomes, %d runs, stored %v; want 1, 0, false", cancelled, cancelledRuns.Load(), get(t, db, "cancelled"))
	}
	if runs.Load() != n {
		t.Errorf("%d runs of the %d queued writes, want one each", runs.Load(), n)
	}
	for i := range n {
		if !get(t, db, string(rune('A'+i))) {
			t.Errorf("queued write %c not stored", 'A'+i)
		}
	}
	db.writer.mu.Lock()
	defer db.writer.mu.Unlock()
	if db.writer.busy || len(db.writer.pending) != 0 {
		t.Errorf("writer busy=%v with %d pending after all writes returned", db.writer.busy, len(db.writer.pending))
	}
}
