package store

import "errors"

// These are the errors store returns, wrapped with context; test for them
// with errors.Is.
var (
	// ErrNotFound is returned when no task has the given id.
	ErrNotFound = errors.New("task not found")

	// ErrExists is returned by CreateTask when a task with the same id is
	// already stored.
	ErrExists = errors.New("task already exists")

	// ErrKeyConflict is returned by CreateTask when the idempotency key
	// already belongs to a task that was created from a different spec.
	ErrKeyConflict = errors.New("idempotency key already used with a different spec")

	// ErrInvalidArgument is returned when an argument cannot be stored or
	// used: a nil task, a malformed task id, an over-long idempotency key, a
	// negative page size, or a change to a task's id or idempotency key.
	ErrInvalidArgument = errors.New("invalid argument")

	// ErrInvalidPageToken is returned by ListTasks and GetOutputsPage when
	// the page token was not produced by them, or was produced for
	// different filters or another task.
	ErrInvalidPageToken = errors.New("invalid page token")

	// ErrSchemaTooNew is returned by Open when the file's schema version is
	// newer than this code knows, i.e. it was written by a newer pcnoded.
	ErrSchemaTooNew = errors.New("database schema is newer than this program supports")

	// ErrLocked is returned by Open when another process holds the file
	// lock for longer than Options.LockTimeout, e.g. another pcnoded.
	ErrLocked = errors.New("database is locked by another process")

	// ErrClosed is returned when a store is used after Close.
	ErrClosed = errors.New("store is closed")

	// ErrCompacted is returned by Changes when the revision asked for is
	// older than the history keeps: the changes right after it are gone.
	// The Revisions returned with it say which is the oldest kept.
	ErrCompacted = errors.New("revision is older than the history keeps")

	// ErrFutureRevision is returned by Changes when the revision asked for
	// is greater than the newest revision written.
	ErrFutureRevision = errors.New("revision has not been written yet")

	// ErrCorrupt is returned when stored data cannot be decoded or the
	// indexes disagree with the task records.
	ErrCorrupt = errors.New("store data is corrupt")
)
