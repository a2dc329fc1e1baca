// Package metrics owns pcnoded's Prometheus metrics: the families the daemon
// exports (tasks, queue, admission, durations, containerd, logs, GPUs, gRPC,
// build info, process and Go runtime), their registry, the gRPC interceptors
// that count every call, and the HTTP listener that serves /metrics.
//
// Only the daemon and cmd/pcnoded import it; it imports neither (the daemon
// hands it a [Source] to read at scrape time and calls its Observe methods at
// transitions), and it keeps no package-level state: every [Metrics] has its
// own registry, never Prometheus' global one.
//
// # Cardinality
//
// No label carries a task id, a task name, an image or anything else a
// caller chooses: labels are task states and reasons, gRPC methods and
// codes (of the methods the server registered), refusal reasons from a fixed
// list, and the node's GPUs (index, UUID, model). docs/metrics.md lists
// every family.
//
// # Serving
//
// [Serve] answers GET /metrics only, with bounded read, write and idle
// timeouts and a cap on concurrent scrapes; there is no pprof or any other
// handler on the listener. A non-loopback address is served only over TLS
// (the configuration refuses it otherwise, see daemon/config).
package metrics
