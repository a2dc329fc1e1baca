package store

import (
	"context"
	"errors"
	"sync"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Group commit. Every bbolt commit syncs the file twice (the pages, then the
// meta page); with many tasks changing state at once, those syncs were most
// of what a write cost (a quarter of pcnoded's CPU under 10 concurrent
// tasks, and the disk's queue). Writes that arrive while a commit is under
// way therefore wait for it and then go together, in arrival order, in one
// transaction: one commit, and two syncs, for all of them. A write that
// finds nothing under way commits at once, alone: grouping never delays a
// write, it only shares the wait for the one before.
//
// A write's function may run more than once: when one function of a group
// fails, the transaction is rolled back, that function's error is its
// caller's answer, and the others run again without it, in a new
// transaction. The outcome is that of running the writes one after another
// in arrival order, a failed one changing nothing. Every function given to
// update must therefore compute from the transaction alone, and set (not
// add to) what it hands back to its caller.

// writeReq is one write waiting for its group.
type writeReq struct {
	ctx  context.Context
	fn   func(*bolt.Tx, *buckets) error
	done chan error    // the write's outcome (buffered 1)
	lead chan struct{} // this write leads the next group (buffered 1)
}

// writer queues the writes of a DB.
type writer struct {
	mu      sync.Mutex
	busy    bool        // a group is being committed; its leader hands on
	pending []*writeReq // arrived since, in order
}

// update runs fn in a write transaction, grouped with the writes that arrive
// while another group commits (see above). fn may run more than once.
func (db *DB) update(ctx context.Context, fn func(*bolt.Tx, *buckets) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	w := &db.writer
	w.mu.Lock()
	w.pending = append(w.pending, r)
	leads := !w.busy
	w.busy = true
	w.mu.Unlock()
	if !leads {
		select {
		case err := <-r.done:
			return err
		case <-r.lead:
		}
	}
	// Leading: commit everything queued (r among it), then hand the lead to
	// the first write that arrived meanwhile, so that no caller serves
	// others' groups for longer than its own.
	w.mu.Lock()
	group := w.pending
	w.pending = nil
	w.mu.Unlock()
	db.commitGroup(group)
	w.mu.Lock()
	if len(w.pending) > 0 {
		w.pending[0].lead <- struct{}{}
	} else {
		w.busy = false
	}
	w.mu.Unlock()
	return <-r.done
}

// commitGroup runs the writes of group in one transaction and answers each.
func (db *DB) commitGroup(group []*writeReq) {
	live := group[:0:0]
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	for len(live) > 0 {
		failed, ferr := -1, error(nil)
		err := db.bolt.Update(func(tx *bolt.Tx) error {
			bk, err := openBuckets(tx, db.history)
			if err != nil {
				return err
			}
			for i, r := range live {
				if err := r.fn(tx, bk); err != nil {
					failed, ferr = i, err
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			// Only that write failed: it changes nothing; the others
			// go again without it.
			live[failed].done <- ferr
			live = append(live[:failed:failed], live[failed+1:]...)
			continue
		}
		if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
			err = ErrClosed
		}
		for _, r := range live {
			r.done <- err
		}
		return
	}
}
