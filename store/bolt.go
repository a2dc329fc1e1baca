package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// DefaultLockTimeout is how long Open waits for the file lock by default.
const DefaultLockTimeout = time.Second

// Options configures Open. The zero value is ready to use.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the file lock before failing with ErrLocked. 0 or less means
	// DefaultLockTimeout.
	LockTimeout time.Duration
	// Logger receives the migrations applied. nil discards.
	Logger *slog.Logger
	// History is how many of the most recent state changes the file keeps
	// for Changes: MinHistory to MaxHistory, 0 for DefaultHistory. Open
	// prunes a longer history to it.
	History int
}

// DB is the Store on a bbolt file.
type DB struct {
	bolt    *bolt.DB
	log     *slog.Logger
	history int
	writer  writer // groups writes into shared commits (commit.go)
}

var _ Store = (*DB)(nil)

// Open opens the database file at path, creating it (mode 0600) when it does
// not exist, and brings its schema up to SchemaVersion. The directory must
// exist. Another process holding the file gives ErrLocked after
// opts.LockTimeout; a file written by a newer schema gives ErrSchemaTooNew.
func Open(path string, opts Options) (*DB, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	history, err := historyLimit(opts.History)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: no lock after %s, is another pcnoded using it? %w", path, timeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	var from, to uint64
	err = b.Update(func(tx *bolt.Tx) error {
		var err error
		if from, to, err = migrate(tx, migrations, log); err != nil {
			return err
		}
		bk, err := openBuckets(tx, history)
		if err != nil {
			return err
		}
		r, err := bk.revisions()
		if err != nil {
			return err
		}
		return bk.prune(r.Current)
	})
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	log.Debug("store opened", "path", path, "schema_version", to, "was", from)
	return &DB{bolt: b, log: log, history: history}, nil
}

// Close closes the file and releases its lock. Closing twice is harmless.
func (db *DB) Close() error {
	return db.bolt.Close()
}

// Path returns the file's path.
func (db *DB) Path() string { return db.bolt.Path() }

// Check verifies the file: bbolt's page-level consistency check, and that
// every index entry agrees with the task records. It returns every problem
// found, joined, each wrapping ErrCorrupt.
func (db *DB) Check(ctx context.Context) error {
	return db.view(ctx, func(tx *bolt.Tx, bk *buckets) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, fmt.Errorf("bbolt: %w: %w", ErrCorrupt, err))
		}
		errs = append(errs, checkIndexes(ctx, bk)...)
		errs = append(errs, checkRevisions(bk)...)
		errs = append(errs, checkNodeState(bk)...)
		return errors.Join(errs...)
	})
}

// buckets are the v1 buckets of one transaction, and the history limit its
// writes keep to.
type buckets struct {
	meta, tasks, idempotency, outputs, byState, byFinish, byLabel, revs, history *bolt.Bucket
	node, gpuMarks                                                               *bolt.Bucket
	historyLimit                                                                 int
}

func openBuckets(tx *bolt.Tx, historyLimit int) (*buckets, error) {
	root := tx.Bucket(bucketRoot)
	if root == nil {
		return nil, fmt.Errorf("bucket %s missing: %w", bucketRoot, ErrCorrupt)
	}
	bk := &buckets{
		historyLimit: historyLimit,
		meta:         root.Bucket(bucketMeta),
		revs:         root.Bucket(bucketRevisions),
		history:      root.Bucket(bucketHistory),
		tasks:        root.Bucket(bucketTasks),
		idempotency:  root.Bucket(bucketIdempotency),
		outputs:      root.Bucket(bucketOutputs),
		byState:      root.Bucket(bucketByState),
		byFinish:     root.Bucket(bucketByFinish),
		byLabel:      root.Bucket(bucketByLabel),
		node:         root.Bucket(bucketNode),
	}
	if bk.node != nil {
		bk.gpuMarks = bk.node.Bucket(bucketGPUMarks)
	}
	if bk.meta == nil || bk.tasks == nil || bk.idempotency == nil || bk.outputs == nil || bk.byState == nil || bk.byFinish == nil || bk.byLabel == nil ||
		bk.revs == nil || bk.history == nil || bk.node == nil || bk.gpuMarks == nil {
		return nil, fmt.Errorf("a bucket under %s is missing: %w", bucketRoot, ErrCorrupt)
	}
	return bk, nil
}

// view runs fn in a read transaction; update (commit.go) runs writes.
func (db *DB) view(ctx context.Context, fn func(*bolt.Tx, *buckets) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		bk, err := openBuckets(tx, db.history)
		if err != nil {
			return err
		}
		return fn(tx, bk)
	})
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
