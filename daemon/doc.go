// Package daemon owns pcnoded's local node and the task lifecycle that ties
// the node's parts together: spec resolution (daemon/spec), host path
// policy (daemon/hostpath), admission (daemon/sched), containers
// (daemon/runtime), log capture (daemon/logs), output manifests
// (daemon/outputs), GPUs (gpu) and persistence (store). The gRPC services
// over it (TaskService, NodeService, ImageService) are daemon/server.
//
// # Layout
//
// The gRPC services are thin shells over a local node, as containerd's
// service/local split. They are their own package, daemon/server, which
// checks and converts each request, calls the local node, converts the
// result, and keeps the streaming loops (WatchTasks, RunTask, StreamLogs,
// WatchNode, PullImage, ImportImage). Each service declares the interface
// it needs of the node, and since it is another package the compiler holds
// it to *Daemon's exported API: a service reaches no store, runtime or
// scheduler. This package does not import daemon/server; cmd/pcnoded
// registers the services (server.Register(srv, d)) on a server built with
// ServerOptions.
//
// The local node is *Daemon's exported operations with plain arguments and
// results: local_tasks.go (GetTask, ListTasksEncoded, RequestCancel, DeleteTask,
// TaskOutputs, ResolveFit, SubscribeTasks, ChangesAfter, ReadTaskLog, ...),
// submit.go (Submit, queueing, admission, cancelTask), local_node.go
// (NodeInfo, SetDraining, WatchNode, ClearGPUHealth), local_images.go
// (PullImage, ImportImage, ListImages, RemoveImage, ProcessingContainer),
// and the few types in their signatures (TaskQuery, Resolution,
// Subscription). They return the store's and runtime's sentinels, wrapped,
// or errors carrying their code (WithCode, Invalid, which the services use
// too), and the interceptors of ServerOptions turn errors into gRPC status
// exactly once (errors.go).
//
// What the daemon holds in memory is split into components, each a type
// with its own lock in its own file, which Daemon composes: the task table
// of queued tasks and runners (task_table.go; embedded, so that the
// lifecycle's files still use its fields under its lock), the
// processing-container cache (pc_cache.go), the channel table of opened
// host directories (channel_table.go), the node's admission state, drain
// and recovery (node_admin.go), the node watch (node_watch.go) and
// conditions (node_conditions.go), the event broker (broker.go), the
// stream caps (streamcap.go), and the containerd and GPU monitors
// (containerd_health.go, gpus.go).
//
// A task's life is a list of small steps run by one goroutine per task
// (runner.go, step_*.go, docs/lifecycle.md), each safe to re-run after a
// crash; recovery resumes them (recover.go). Every state transition is written to the store before it
// is announced to watchers. A task's host directories are opened once,
// without following symlinks, checked for overlap on the opened objects and
// handed to containerd as staging mounts of those objects (channels.go).
//
// # containerd going away
//
// A monitor (containerd_health.go) pings containerd every second, and with
// a backoff while it is down; calls that find it unreachable report so at
// once. While it is down the node's CONTAINERD_READY condition is false,
// the schedule loop admits nothing (queued tasks stay queued), calls that
// need containerd fail with UNAVAILABLE, and a running task's supervise
// step waits for containerd and waits for the container again: only
// containerd's answer, once reachable, that the container is gone makes a
// task LOST. New succeeds while containerd is down and Start serves at
// once, recovering earlier tasks in the background once containerd
// answers; nothing is scheduled before that recovery is done.
//
// # Submitting
//
// SubmitTask answers a repeated idempotency key first (submit.go): when the
// caller's key already names a task with the same spec, that task comes
// back (existing=true) before the spec is resolved, the fit, the drain or
// the image is looked at, so a client that retries or re-attaches (an
// Airflow worker that died) gets its task even from a drained or full node;
// the same key with another spec is ALREADY_EXISTS naming the task. Then
// the spec is checked (INVALID_ARGUMENT), its node secrets looked up
// (FAILED_PRECONDITION at spec.env[N].secret), resolved, fitted and
// admitted. A secret's content is read only in containerSpec, when the
// container is created, and goes nowhere but the container's environment
// (daemon/secrets).
//
// # Watching
//
// Every state change the store writes gets the next node-wide revision in
// the same transaction (package store). Announcements are not passed along
// by the writer: after each write the broker reads the store's history from
// the last revision it published and publishes what is new, one flush at a
// time, so every subscriber sees state changes in revision order, with
// TaskEvent.revision set (broker.go). WatchTasks subscribes before it reads
// the store and drops live events at or below the last revision it went
// past: after_revision replays the history after it and then follows (a
// revision older than [tasks] watch_history keeps is OUT_OF_RANGE with
// ErrorInfo REVISION_COMPACTED and oldest_revision; one not yet written is
// INVALID_ARGUMENT on after_revision); send_initial sends the unfinished
// tasks as of one revision, each with the revision of its last state change,
// and follows from there. after_revision takes precedence over send_initial.
// A watcher more than 4096 events behind is ended with RESOURCE_EXHAUSTED
// naming the revision to resume after. RunTask's state changes carry their
// revisions too.
//
// Node policy applied to every task: an instance that names no memory or
// CPU limit gets the node's default limits, and its requests are recorded
// as reserved (limits.go); a spec that names no user runs as
// tasks.default_user when set (taskuser.go); after the run, what the output
// manifest walks fixed (setuid/setgid bits, device nodes) and where the
// manifests were cut at tasks.max_output_files or max_output_path_bytes goes
// to the task's warnings and message (outputwarnings.go).
//
// Every spec submitted (SubmitTask, RunTask, SubmitTasks, ResolveTask) is
// held to the node's [limits] configuration before anything is stored: its
// serialized size first, then each list and string, names and host paths
// free of control, bidirectional and invisible characters, then the
// resolved instance (argv and env as execve counts them, resources above
// the memory floor, its own serialized size) — at submit when the template
// is known, else when the task is prepared. A refusal is INVALID_ARGUMENT
// with a BadRequest field violation naming the field and the key.
//
// # Callers
//
// The API is served on the unix socket and, with api.tcp_address, over TCP
// with TLS 1.3 and, unless the development switch is on, mutual TLS
// (tls.go: serverCredentials gives unix connections their peer's process
// credentials and every other connection a TLS handshake; plain-text TCP is
// refused). The certificate, key and client CA are re-read every
// api.tls_reload_interval and on SIGHUP (ReloadTLS), and a handshake uses the
// material current when it starts; files that do not load are logged and
// the material in use is kept. Clients may send keepalive pings every 10 s,
// with or without an open call (the Go client's default is every 30 s), so
// a scheduler's idle connection is never closed with "too_many_pings"; the
// daemon pings a connection silent for a minute and closes it when no
// answer comes within 20 s, and never closes one for its age
// (ServerOptions).
//
// Every call passes the auth interceptors first (auth.go): the caller's
// identity is what its connection proved (peerIdentity: "uid:N" and its
// "gid:N"s on the socket; the verified client certificate's URI SAN, else
// "dns:" SAN, else "cn:" CN, over TLS), its role the highest [[api.roles]]
// binds to any of those, and methodRoles says what each method needs; less
// is PERMISSION_DENIED naming the role needed, with an ErrorInfo
// (ROLE_REQUIRED). Methods above viewer are logged with identity, role,
// result code and task ("api call"). Submit records the caller as the
// task's submitted_by and the store scopes idempotency keys by it; below
// admin, CancelTask and DeleteTask act only on the caller's own tasks
// (ownTask).
//
// # Bounds
//
// Every streaming RPC passes one stream interceptor (streamcap.go) that
// counts open streams per client and on the node against [streams]
// max_per_client and max_total and refuses one over a cap with
// RESOURCE_EXHAUSTED naming it. The client is the caller's authenticated
// identity (clientKey, in peercred.go, is the one place that maps a
// connection to a client), so a refused caller takes no slot: the auth
// interceptor runs first. After many streams end, the freed memory is
// returned to the system a second later.
//
// A log stream (StreamLogs, RunTask's logs) holds at most [streams]
// buffer_bytes of entries at a time and reuses its messages; entries rotated
// away before it reached them are sent as a LogGap. No response grows with
// what a caller stored: ListTasks and GetTaskOutputs pages stop at 2 MiB
// encoded (store.DefaultPageBytes), RunTask cuts an output manifest into
// events of at most 1 MiB, and a SubmitTasks error keeps at most 1 MiB of
// problems (pages.go).
package daemon
