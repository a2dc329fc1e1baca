// Package daemon owns pcnoded's gRPC services (TaskService, NodeService,
// ImageService) and the task lifecycle that ties the node's parts together:
// spec resolution (daemon/spec), host path policy (daemon/hostpath),
// admission (daemon/sched), containers (daemon/runtime), log capture
// (daemon/logs), output manifests (daemon/outputs), GPUs (gpu) and
// persistence (store).
//
// The services are thin: they validate callers' input, call the local
// implementation, and turn errors into gRPC status exactly once (errors.go).
// A task's life is a list of small steps run by one goroutine per task
// (lifecycle.go); every state transition is written to the store before it
// is announced to watchers. A task's host directories are opened once,
// without following symlinks, checked for overlap on the opened objects and
// handed to containerd as staging mounts of those objects (channels.go).
package daemon
