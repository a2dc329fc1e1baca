// Package server owns pcnoded's gRPC services: TaskService, NodeService and
// ImageService, thin shells over the local node (package daemon), as
// containerd's service/local split.
//
// Each RPC checks and converts its request, calls the node and converts
// the result; the streaming loops (WatchTasks, RunTask, StreamLogs,
// WatchNode, PullImage, ImportImage) are here. Each service declares the
// interface it needs of the node (taskNode, nodeAPI, imageNode; Node is
// all three), implemented by *daemon.Daemon, so a service sees only the
// node's exported operations: no store, runtime or scheduler.
//
// Errors are returned as the node made them, or built with daemon.Invalid
// and daemon.WithCode for a refused request; daemon's interceptors
// (daemon.Daemon.ServerOptions) turn them into gRPC status exactly once. A
// few answers the API documents with details are built here as status
// (resumeError, importStatus), which the interceptors pass through.
//
// Register puts the three services on a gRPC server; cmd/pcnoded calls it.
// Only cmd/pcnoded and tests import this package; package daemon must not
// (it would be an import cycle).
package server
