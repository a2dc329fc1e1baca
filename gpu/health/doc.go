// Package health owns the health of the node's GPUs: which events make a
// GPU unhealthy, how it becomes healthy again, and who is told. The Monitor
// is fed by a Source (for NVIDIA GPUs, nvmlgpu.EventSource; StaticSource
// for the static backend) and is what the daemon asks before assigning a GPU
// and subscribes to for WatchNode.
//
// # States
//
// Every GPU starts HealthUnknown ("health monitoring is not running"). When
// the source starts watching, each GPU it watches becomes HealthHealthy; a
// GPU it cannot watch stays HealthUnknown with the reason as message (or
// becomes HealthUnhealthy if the driver reports it lost). If the source
// fails or cannot start, healthy GPUs become HealthUnknown — never silently
// healthy — and the source is started again every Config.RestartInterval.
// When Run returns, healthy GPUs become HealthUnknown.
//
// # Events
//
//   - An XID in Config.AppXIDs (by default 13, 31, 43, 45, 68, 109: errors
//     of the application, not the GPU) is recorded as the GPU's LastXID and
//     changes nothing else.
//   - Any other XID makes the GPU HealthUnhealthy, with the XID, its time and
//     its description kept on the GPU.
//   - A double-bit (uncorrected) ECC error makes the GPU HealthUnhealthy.
//   - A single-bit (corrected) ECC error is logged, and makes the GPU
//     unhealthy only if Config.SingleBitECCUnhealthy is set.
//   - An event that names no GPU concerns every watched GPU.
//
// The last of these "critical" events is the GPU's last critical time.
//
// # Recovery
//
// Unhealthy is not forever. Every Config.ReprobeInterval, the monitor
// re-probes each unhealthy GPU whose last critical event is at least
// Config.RecoveryWindow old: the source's Probe asks the driver for the GPU
// and reads from it. If the probe succeeds and no critical event arrived for
// that GPU meanwhile (its last critical time is unchanged, so still at least
// RecoveryWindow old), the GPU becomes HealthHealthy. Otherwise it stays
// unhealthy, and a failed probe is added to its message. A ReprobeInterval
// of 0 disables re-probing: only an admin Clear recovers a GPU.
//
// Clear(uuid) is the admin's override: an unhealthy GPU becomes healthy at
// once. It fails for a GPU the monitor does not know (gpu.ErrUnknownGPU) and
// for one whose health is unknown (gpu.ErrNotMonitored): there is nothing
// to vouch for it.
//
// # Subscribers
//
// Every change of a GPU's Status (health, message or last XID) is delivered,
// in order, to each channel from Subscribe; a slow subscriber delays only
// itself.
package health
