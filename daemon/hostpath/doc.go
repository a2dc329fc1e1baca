// Package hostpath owns the host path policy of pcnoded: which host paths a
// caller may have bind-mounted into a processing-container. Only the daemon
// imports it; it knows nothing of gRPC, containerd or the store.
//
// # Why it matters
//
// pcnoded runs as root and bind-mounts directories named by callers into
// containers, read-only for input channels and read-write for output channels
// (which it also empties before a run). A path that escapes the configured
// data roots would hand a container the host: /etc, the containerd socket,
// other tasks' data. Every path a caller gives is therefore treated as hostile
// and must pass [Policy.Check] before anything touches it.
//
// # Rules
//
// A [Policy] holds the node's data roots, each resolved with
// [filepath.EvalSymlinks] once, in [New]. [Policy.Check] accepts a path only
// when all of the following hold:
//
//   - it is not empty, holds no NUL byte, is at most [MaxPathLen] bytes;
//   - it is absolute;
//   - it is clean: no "." or ".." element, no doubled or trailing slash —
//     nothing [filepath.Clean] would change. Callers must send the path they
//     mean; the policy never guesses;
//   - after resolving every symlink it lies strictly below one of the
//     resolved data roots, compared element by element ("/data2/x" is not
//     below "/data");
//   - it is a directory, or, when it need not exist yet (an output channel
//     the daemon will create), its deepest existing ancestor is a directory
//     and every symlink on the existing part resolves. A dangling symlink is
//     refused: creating through it would create its target, wherever that is.
//
// Overlapping data roots are allowed; a path below any of them is accepted.
//
// # A data root itself is refused
//
// A path equal to a data root is refused, only paths strictly below one are
// accepted. Output channels are emptied before a run, so an output mapped to
// a data root would delete everything every other task keeps there; an input
// mapped to one would expose all of it to one container. Neither is something
// a task needs: it can always name its own directory below the root. An
// operator who really wants a whole tree mounted configures its parent as the
// data root.
//
// # Mount the resolved path
//
// Check returns the resolved path, and the daemon must use that, never the
// path the caller sent. Checking one string and mounting another is a
// time-of-check/time-of-use hole: whoever can write below a data root (a
// running container, through its output channel) could swap a directory on
// the caller's path for a symlink to "/" between the check and the mount, and
// the mount would follow it. The resolved path contains no symlinks, so the
// same swap would have to replace one of its components; the output package
// creates and opens output directories without following symlinks and refuses
// such a swap. The narrow window that remains between that final verification
// and the bind mount itself is inherent in mounting by path.
//
// # Errors
//
// A refusal is an [*Error] carrying the caller's field name and a reason,
// wrapping one of the sentinels in errors.go, so the daemon turns it into
// gRPC InvalidArgument with a BadRequest field violation:
//
//	var pe *hostpath.Error
//	if errors.As(err, &pe) { /* field pe.Field, description pe.Reason */ }
//
// Any other error (an I/O failure while resolving) is not the caller's fault
// and is returned unwrapped into an *Error.
//
// # Caveats
//
// Data roots are resolved once: if an operator re-points a symlinked data root
// while the daemon runs, the daemon keeps the old target until restarted.
// Check resolves paths on the host as the daemon sees them; it does not look
// at mount namespaces.
package hostpath
