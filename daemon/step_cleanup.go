package daemon

import (
	"context"
	"time"

	"github.com/pcnode/pcnode/daemon/logs"
)

// cleanupTimeout bounds deleting a container (containerd waits for the
// shim to finish copying the task's output to the log driver).
const cleanupTimeout = 30 * time.Second

// cleanup is the last step of a task whose final state is written: it
// deletes the container (its task, snapshot and cgroup) and seals the log.
// The in-memory resources (allocation, opened directories) were released
// just before the final state was written (releaseResources).
//
// Reads: nothing. Writes: containerd (the container goes), the task's log
// directory (end marker). Nothing in the store.
//
// Re-run: deleting what does not exist is not an error, and sealing a
// sealed log does nothing. Recovery runs it for a final task whose
// container is still there (crash after the final state) and seals the
// log of a final task whose log is unsealed (crash after the delete).
//
// While containerd cannot be reached the delete is tried again each time
// it answers (deleteContainer), until ctx ends (the runner is detached:
// the next start cleans up); the log is sealed only after the delete, when
// the log driver's copy has ended.
func (r *runner) cleanup(ctx context.Context) {
	r.d.cleanupTask(ctx, r.id)
}

// cleanupTask deletes task id's container and seals its log.
func (d *Daemon) cleanupTask(ctx context.Context, id string) {
	// Deleting the container's task ends the log driver's copy, and the
	// driver seals the log: its followers (RunTask's) look every few
	// milliseconds from now on, and see the end without waiting for the
	// rest of the delete (shim shutdown, snapshot) or a poll interval.
	d.logEnds.ending(id)
	if err := d.deleteContainer(ctx, id); err != nil {
		if ctx.Err() != nil {
			return // detached: the next start cleans up
		}
		d.log.Warn("deleting container", "task", id, "err", err)
	}
	crashAt(crashAfterDeleted)
	d.sealLog(context.WithoutCancel(ctx), id)
}

// sealLog marks a task's log complete (the driver normally does this itself).
func (d *Daemon) sealLog(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := logs.Seal(ctx, d.taskLogDir(id)); err != nil {
		d.log.Warn("sealing log", "task", id, "err", err)
	}
	// Followers look at once: they find the end marker (or, when sealing
	// failed, poll on as before).
	d.logEnds.ending(id)
}
