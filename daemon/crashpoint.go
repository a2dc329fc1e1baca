package daemon

// A crash point is a named place in the task lifecycle between two durable
// effects (a store write, a containerd change, a host change). A daemon
// built with the crashpoints build tag kills itself with SIGKILL at the
// point named by the environment variable PCNODE_CRASH_AT, so that a test
// can prove the task ends as it would have without the crash
// (cmd/pcnoded/crashpoint_e2e_test.go). Release builds compile crashAt to
// nothing (crashpoint_off.go): they never crash on purpose.
//
// The points, in the order a task meets them (docs/lifecycle.md):
const (
	// crashAfterPreparing: PREPARING and the allocation are written.
	crashAfterPreparing = "after-preparing"
	// crashAfterImage: the image is present, the digest and limits written.
	crashAfterImage = "after-image"
	// crashAfterOutputsEmptied: the output directories were emptied.
	crashAfterOutputsEmptied = "after-outputs-emptied"
	// crashAfterContainerCreated: containerd holds the container; its task
	// was not started.
	crashAfterContainerCreated = "after-container-created"
	// crashAfterStarted: the container's process was started; RUNNING is
	// not written yet.
	crashAfterStarted = "after-started"
	// crashAfterRunning: RUNNING is written.
	crashAfterRunning = "after-running"
	// crashAfterExit: containerd reported the exit; nothing is collected.
	crashAfterExit = "after-exit"
	// crashAfterManifests: the output manifests are stored.
	crashAfterManifests = "after-manifests"
	// crashAfterFinal: the final state is written; the container remains.
	crashAfterFinal = "after-final"
	// crashAfterDeleted: the container is deleted; the log is not sealed.
	crashAfterDeleted = "after-deleted"
)

// crashPoints lists every point, in lifecycle order.
var crashPoints = []string{
	crashAfterPreparing,
	crashAfterImage,
	crashAfterOutputsEmptied,
	crashAfterContainerCreated,
	crashAfterStarted,
	crashAfterRunning,
	crashAfterExit,
	crashAfterManifests,
	crashAfterFinal,
	crashAfterDeleted,
}

// EnvCrashAt names the environment variable that a daemon built with the
// crashpoints tag reads once: the crash point at which it kills itself.
const EnvCrashAt = "PCNODE_CRASH_AT"

// CrashPoints returns the names of the lifecycle's crash points in the
// order a task meets them. A test walks it to crash the daemon at each.
func CrashPoints() []string {
	return append([]string(nil), crashPoints...)
}

// CrashPointsEnabled reports whether this binary was built with the
// crashpoints tag.
func CrashPointsEnabled() bool { return crashPointsEnabled }
