// Package sched owns admission and resource accounting for the tasks of one
// node: which queued task starts next, and which CPU, memory and GPUs it is
// given. It knows nothing of containerd, gRPC or bbolt; it is pure,
// deterministic and reads time only through the clock it is given, so the
// daemon drives it and tests can replay any sequence exactly.
//
// # Basics
//
// The daemon builds a [Scheduler] with [New] from a [Config]: the node's
// allocatable CPU and memory (capacity minus reservations, see [Allocatable]),
// its GPUs, a backfill window and a clock. Then:
//
//   - [Scheduler.Enqueue] queues a task. A task that can never fit this node
//     is refused with an error wrapping [ErrNeverFits]; the error is a
//     [*FitError] carrying the numbers (requested and allocatable, per
//     resource; for GPUs, how many of the node's GPUs match the task's
//     selector). Every GPU of the inventory counts, healthy or not: a task
//     that fits only once a GPU recovers, or once the GPUs' health is known
//     after a start, waits in the queue rather than being refused.
//   - [Scheduler.Schedule] returns the queued tasks to start now, in order,
//     each with the GPUs chosen for it. Their resources are held until
//     [Scheduler.Release].
//   - [Scheduler.Remove] drops a queued task (cancel); [Scheduler.Restore]
//     re-adds a running task's allocation after a daemon restart.
//   - [Scheduler.SetGPUs] and [Scheduler.SetGPUHealth] follow the GPU
//     inventory; [Scheduler.Fits] answers dry runs; [Scheduler.Snapshot]
//     reports allocated and free resources, the queue and GPU holders.
//
// Tasks that request nothing get the daemon's defaults through
// [ApplyDefaults] before they are queued.
//
// # Order and backfill
//
// The queue is ordered by priority (higher first), then submission time
// (earlier first), then id. Schedule walks it in that order and starts every
// task whose requests fit what is free: CPU in milli-cores, memory in bytes and
// whole GPUs. A task that does not fit is blocked. Tasks behind a blocked task
// may pass it (backfill) only while the blocked task has waited less than
// [Config.BackfillWindow]; once it has waited that long nothing behind it
// starts until it has started, so a large task is never starved by a stream of
// small ones. A blocked task that could not fit even on an idle node with the
// GPUs healthy now, because the GPUs it needs are unhealthy or of unknown
// health, stays queued but does not hold the queue back: waiting for running
// tasks would not help it, only a GPU's recovery would.
//
// # GPUs
//
// Only GPUs whose health is [Healthy], that no task holds and that match the
// task's selector (minimum memory, model substring, case-insensitive) are
// assigned. The choice is deterministic. A task asking for several GPUs gets
// them from one NUMA node when one has enough: the NUMA node with the fewest
// such GPUs that still suffices (leaving larger groups whole for larger
// tasks), then the lowest indices. Otherwise, and for single GPUs, the lowest
// indices win.
//
// A GPU that becomes unhealthy while a task holds it stays with that task
// (the caller reports it on the task) and is not assigned again until it is
// healthy.
//
// # Caveats
//
//   - [Config.Allocatable].GPUs is not used: GPU capacity is the GPU list.
//   - [Scheduler.Restore] accepts allocations that exceed what is free (the
//     containers are already running), so after a restart with a smaller
//     configuration the free resources in a [Snapshot] may be negative until
//     tasks finish.
//   - A GPU whose memory is unknown (0) never satisfies a minimum-memory
//     selector.
//   - Scheduler is safe for concurrent use; every method takes one mutex, and
//     Schedule is O(queue length).
package sched
