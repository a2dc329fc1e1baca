// Package client owns the Go client of pcnoded's v1 API: dialling a node
// over its unix socket or over TCP with mutual TLS, retrying the calls that
// have no side effects, turning gRPC status errors back into Go errors once,
// following runs, logs and task watches across dropped streams, and Pool,
// which places tasks across many nodes by their advertised capacity, fails
// over only where that cannot run a task twice, and follows each task on its
// node. It
// depends only on the generated API (proto/pcnode/v1) and gRPC; it never
// imports daemon/, store/ or gpu/.
//
// # Basics
//
// Dial returns a *Client for one node. The address is a unix socket path
// ("/run/pcnode/pcnoded.sock", "unix:///run/pcnode/pcnoded.sock"), where
// the daemon knows the caller by its uid/gid, or "host:port", always over
// TLS 1.3 with a client certificate:
//
//	c, err := client.Dial("node1.example:7443",
//		client.WithCA("/etc/pcnode/ca.pem"),
//		client.WithClientCertificate("/etc/pcnode/scheduler.pem", "/etc/pcnode/scheduler-key.pem"))
//	if err != nil { ... }
//	defer c.Close()
//	resp, err := c.Tasks.GetTask(ctx, &pcnodev1.GetTaskRequest{TaskId: id})
//
// The connection is lazy: Dial reports bad options and unreadable
// certificate files, the first call an unreachable node. The CA bundle and
// the client certificate are read again for every new connection, so files
// that cert-manager, step-ca or a SPIFFE agent rotate are picked up without
// a new Dial (while a rotation is half written, the last pair that loaded is
// used). WithServerName sets the name the node's certificate must carry
// (default: the address's host). WithInsecureNoClientCert dials a node that
// runs the daemon's development switch (TCP without client authentication);
// the server's certificate is still verified. There is no TCP without TLS.
// WithTLSConfig takes a caller's own tls.Config (raised to TLS 1.3), and
// WithDialOptions passes gRPC dial options through as an escape hatch.
//
// The fields Tasks, Nodes and Images are the generated service clients on
// the connection. Higher-level calls:
//
//   - Run submits (or attaches to) a task and calls a function for every
//     event until the task has finished; RunEvents yields the same events
//     as an iterator (for ev, err := range c.RunEvents(ctx, req)).
//   - FollowLogs follows a task's log to its end from a sequence number and
//     resumes after a dropped stream from the last entry delivered.
//   - WatchTasks follows every state change on the node and resumes after
//     a dropped stream from the last revision delivered.
//
// TCP connections send keepalive pings (DefaultKeepaliveTime,
// DefaultKeepaliveTimeout; WithKeepalive changes them) so that a node that
// vanished is noticed within about 40 s even on an idle watch; unix sockets
// need none.
//
// # Errors
//
// Every failed call of a Client, through its generated clients too,
// returns an *Error: the gRPC code, the daemon's message, the
// google.rpc.BadRequest field violations of an invalid request, and the
// ErrorInfo reason and metadata. The conversion happens once, in the
// connection's interceptors; FromError converts errors of connections made
// elsewhere and returns an *Error unchanged. Match with errors.Is:
//
//	_, err := c.Tasks.SubmitTask(ctx, req)
//	var e *client.Error
//	switch {
//	case errors.Is(err, client.ErrInvalidArgument) && errors.As(err, &e):
//		for _, v := range e.Violations { fmt.Println(v.GetField(), v.GetDescription()) }
//	case errors.Is(err, client.ErrResourceExhausted): // never fits this node; the message names the limit
//	case errors.Is(err, client.ErrPermissionDenied):  // the message names the role needed
//	}
//
// The sentinels are ErrNotFound, ErrInvalidArgument, ErrResourceExhausted,
// ErrPermissionDenied, ErrUnauthenticated, ErrAlreadyExists,
// ErrFailedPrecondition, ErrUnavailable, ErrOutOfRange (a watch revision
// too old; *Error.OldestRevision says the oldest kept) and
// ErrUnimplemented; Canceled and DeadlineExceeded match context.Canceled
// and context.DeadlineExceeded. Code returns the gRPC code of any error,
// and status.Code still works on converted errors.
//
// # Retries
//
// A call is retried when the node answers Unavailable (it is restarting, or
// the connection could not be made) only if its method is marked
// idempotency_level = NO_SIDE_EFFECTS in the protos: RetriedMethods lists
// them, read from the descriptors, never from a list kept by hand. The
// retries go through gRPC's service-config retry policy (4 attempts in all,
// backoff from 100 ms doubling to 2 s; WithRetryPolicy and WithoutRetries
// change it); a service config from DNS is ignored. SubmitTask, RunTask,
// CancelTask and the other calls with effects are never retried by the
// client: their outcome is unknown after Unavailable, so retry them
// yourself with the same idempotency key (SubmitTask) or after reading the
// task back. The daemon answers a known key before anything else, so the
// retry gets the task even when the node has since drained or filled up.
//
// A value the caller must not hold (a password) is passed by naming a node
// secret: &pcnodev1.EnvVar{Name: "PASSWORD", Secret: "project-password"}
// (see the README's Secrets section); tasks read back carry the name only.
//
// gRPC retries a stream only until its first response; after that,
// FollowLogs and WatchTasks reopen dropped streams themselves, with
// backoff from 100 ms to 5 s and jitter, on Unavailable or a reset stream
// (and WatchTasks also when the daemon ended it for falling behind), until
// the context ends. Every other error ends them.
//
// # Caveats
//
//   - Run and RunEvents do not resume: a RunTask stream that drops ends
//     with an error (ErrUnavailable, or io.ErrUnexpectedEOF when it ended
//     before the task did). The task keeps running on the node; follow it
//     on with FollowLogs and WatchTasks (or RunTask by task id).
//   - FollowLogs ends with nil when the daemon ends the stream and the task
//     is final; a stream that ends while the task still runs (a daemon
//     shutting down) is resumed. Entries the daemon rotated away before they
//     were read come as a LogGap, never silently.
//   - WatchTasks resumes from the highest revision it delivered. The
//     send_initial snapshot sends each unfinished task with the revision of
//     its last write, in no revision order, and nothing marks its end: a
//     stream that drops before any event is reopened as first asked, but one
//     that drops in the middle of the snapshot resumes after the highest
//     revision seen, so tasks of the snapshot not yet sent whose last write
//     is older are not sent again. A scheduler that must not miss one
//     re-lists (ListTasks) after ErrOutOfRange and after a drop during the
//     snapshot.
//   - The daemon's TCP listener must allow keepalive pings every
//     DefaultKeepaliveTime (gRPC servers refuse pings more often than every
//     5 minutes unless told otherwise, and close such connections with
//     "too_many_pings"); lower the client's rate with WithKeepalive for a
//     daemon that does not.
//   - Responses up to 64 MiB are accepted; the daemon keeps its own at 4 MiB.
package client
