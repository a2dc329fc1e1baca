// Package gpu owns the node's view of its GPUs: what a GPU is (Device), what
// the driver says about the system (SystemInfo), how an inventory backend is
// asked for them (Inventory), and what the health of a GPU is (Health,
// Status, Event). It also holds the two backends that need no driver: Static,
// GPUs declared in the daemon's config, and None, a CPU-only node.
//
// # Backends
//
//   - "nvml": package gpu/nvmlgpu, the NVIDIA driver through go-nvml.
//   - "static": NewStatic, GPUs declared in the config (development nodes
//     and tests); nothing is asked of a driver. Their health comes from
//     health.StaticSource: healthy once the monitor runs.
//   - "none": NewNone, a node without GPUs; Devices returns an empty list.
//
// # Optional fields
//
// Every Device field that a driver may not support is a pointer (or an
// empty string): nil means "not available" — the driver does not support the
// query on this GPU, or it failed — and never makes the inventory fail. Only
// a GPU that cannot be identified at all (no UUID) is an error.
//
// # Health
//
// Health starts as HealthUnknown: a GPU is only Healthy while something is
// watching it (package gpu/health). Consumers must not assign GPUs whose
// health is not HealthHealthy.
//
// # Related packages
//
//   - gpu/nvmlgpu: the NVML inventory, health event source and per-process
//     GPU memory sampling.
//   - gpu/health: the health monitor (XID/ECC policy, re-probe, admin clear,
//     subscribers).
//   - gpu/cdi: CDI device specs for GPUs: writing them and checking them.
//   - gpu/gputest: go-nvml mock servers for tests (test code only).
//
// Nothing under gpu/ imports the daemon, the store, bbolt or gRPC.
package gpu
