// Package store owns pcnode's persistent task state: every task record, the
// idempotency index, output manifests, and the schema of the bbolt file that
// holds them. The daemon (daemon/...) imports it; the API client, the
// scheduler and the spec parser never do. It knows nothing of gRPC: errors are
// the sentinels in errors.go, which the daemon turns into status codes.
//
// # Basics
//
// [Store] is the interface the daemon programs against. [DB] implements it on a
// bbolt file ([Open]); [Memory] implements it in memory ([NewMemory]) for tests
// of code that needs a store but not a file. Package storetest holds the one
// test suite both implementations pass.
//
// Tasks are [pcnodev1.Task] messages keyed by their id. Ids come from [NewID]:
// 26 characters of Crockford base32, a 48-bit millisecond timestamp followed
// by 80 random bits, strictly increasing within one process, so byte order is
// submission order and [Store.ListTasks] lists newest first by walking ids
// backwards. [ValidID] checks an id from a caller before it is used.
//
// Every method that writes does so atomically, in one transaction, and
// returns only after it is durable (bbolt fsyncs on commit; [DB.CreateTasks]
// stores many new tasks in one, to fill a file in bulk), so a state
// transition the daemon has written survives a crash before it is announced.
// Writes that arrive while a commit is under way share the next commit, in
// arrival order (group commit, commit.go); a failed one changes nothing.
// Returned tasks are copies: changing them changes nothing stored. Registry
// credentials (spec.registry_auth) are removed from every task before it is
// written.
//
// # Schema
//
// Schema version 4 ([SchemaVersion]). The file holds one root bucket, v1:
//
//	v1/
//	├── meta/
//	│   ├── schema_version     → uint64, big endian
//	│   └── revision           → uint64, big endian: the newest revision given
//	├── tasks/
//	│   └── <task id>          → pcnodev1.Task (proto wire format)
//	├── idempotency/
//	│   └── <idempotency key>  → uvarint(len(task id)) ‖ task id ‖ spec hash
//	├── outputs/
//	│   └── <task id>          → OutputManifest, OutputManifest, … each as
//	│                            field 1, wire type 2 (length-delimited), the
//	│                            encoding of a message `repeated OutputManifest m = 1`
//	├── by_state/
//	│   └── <state ‖ task id>  → empty; state as uint32, big endian
//	├── by_finish/
//	│   └── <time ‖ task id>   → empty; time as Unix seconds (uint64 big
//	│                            endian, sign bit flipped) ‖ nanoseconds
//	│                            (uint32 big endian), so byte order is time order
//	├── by_label/
//	│   └── <label ‖ task id>  → empty; label as uvarint(len(key)) ‖ key ‖
//	│                            uvarint(len(value)) ‖ value, one entry per
//	│                            label of the task's spec
//	├── revisions/
//	│   └── <task id>          → uint64 big endian: revision of its last state change
//	└── history/
//	    └── <revision>         → pcnodev1.Task as that state change wrote it;
//	                             revision as uint64 big endian
//
// tasks is the record; the other buckets are indexes kept in step with it in
// the same transaction. by_state serves state-filtered listings and
// [Store.Unfinished]; by_label label-filtered listings; by_finish serves
// retention ([Store.DeleteFinishedBefore]) and [Store.FinishedSince]
// and holds every task in a final state (SUCCEEDED, FAILED, CANCELLED) under
// its finish_time, or update_time, or create_time, the first one set.
//
// # Revisions
//
// A write that creates a task or changes its state is a state change: in the
// same transaction it takes meta/revision plus one, records it under
// revisions/, and appends the task as written to history/, which is then
// pruned to the most recent [Options.History] changes (the daemon's [tasks]
// watch_history). The counter only grows, across restarts and crashes alike,
// since it commits with the task; deleting a task leaves its history. The
// history is a run of consecutive revisions ending at meta/revision, so
// [Store.Changes] can say exactly whether a revision can still be resumed
// ([ErrCompacted] when not). Migration 2 gave the tasks of a version 1 file
// revisions 1…n in id order with an empty history.
//
// # Node state
//
// node/ holds what was set on the node rather than on a task, so that a
// restart keeps it ([Store.GetNodeState]): whether the node is draining
// ([Store.SetDraining]) and the GPUs marked unhealthy, each under its uuid
// with the event that marked it ([Store.PutGPUMark], [Store.DeleteGPUMark]).
// Migration 3 added it, empty: a file from before starts not draining and
// with no marks. It never holds credentials. Migration 4 added by_label,
// filled from the tasks stored.
//
// # Pages
//
// [Store.ListTasks] and [Store.GetOutputsPage] return pages bounded by count
// and by encoded size ([DefaultPageBytes] unless the options say otherwise),
// so that any page fits a client with gRPC's default 4 MiB message limit; a
// page always makes progress (one task, one file).
// [Store.ListTasksEncoded] is the same page with each task as its stored
// encoding: the daemon sends those bytes as they are, and reads the filters
// (state, labels) from them with protowire, so a page is never decoded and
// encoded again. GetOutputsPage walks the
// outputs value field by field with protowire, decoding only the files on the
// page, so a 300k-file manifest is never decoded whole. Page tokens name a
// position only (a task id, or a channel and file index with a hash of the
// task id); each token has exactly one spelling, and any other string is
// [ErrInvalidPageToken].
//
// # Migrations
//
// meta/schema_version records the last migration applied. [Open] applies the
// missing ones from the ordered list in migrate.go, all in one transaction, so
// a failed migration leaves the file as it was. Opening a file whose version is
// newer than this code knows fails with [ErrSchemaTooNew] and changes nothing.
// A change to the layout above appends a migration, raises [SchemaVersion],
// redraws this tree, and adds a test for that migration.
//
// # Caveats
//
// One process may open the file at a time; a second [Open] waits
// [Options.LockTimeout] for bbolt's file lock and then fails with [ErrLocked].
// A filtered listing walks the index ranges of its filters downwards at
// once, the by_label range of each label and the by_state ranges of its
// states merged, and seeks each range past the ids another one lacks, so
// it decodes only the tasks on its page, however rare they are among the
// others. A label of more than 16 KiB with its value cannot be indexed and
// is [ErrInvalidArgument] (the API allows far less).
package store
