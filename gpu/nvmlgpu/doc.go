// Package nvmlgpu owns the "nvml" GPU backend: the node's NVIDIA GPUs as
// the driver reports them through NVML (github.com/NVIDIA/go-nvml). It
// provides the inventory (Inventory, a gpu.Inventory), the health event
// source that feeds gpu/health (EventSource: XID and ECC events through an
// NVML event set, and re-probes), and per-process GPU memory sampling
// (Inventory.ProcessMemory).
//
// Everything is written against nvml.Interface, so go-nvml's mock systems
// (see gpu/gputest) drive it in tests. A real driver is only needed at run
// time; go-nvml needs cgo to build.
//
// # Not available is not an error
//
// A query answered with ERROR_NOT_SUPPORTED or ERROR_FUNCTION_NOT_FOUND (or
// whose symbol the loaded driver lacks) leaves its field nil. Any other
// failure of an optional query also leaves the field nil and is logged once
// per GPU and query. Only a GPU whose handle or UUID cannot be read is an
// error (gpu.ErrDevice), and the other GPUs are still returned.
//
// # Lifetime
//
// Open initialises NVML; Close shuts it down after in-flight calls finish,
// and every later call fails with gpu.ErrClosed. Stop the health monitor
// before closing the inventory its source came from.
package nvmlgpu
