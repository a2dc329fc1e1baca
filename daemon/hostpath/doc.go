// Package hostpath owns the host paths of pcnoded: which host paths a
// caller may have bind-mounted into a processing-container (the policy),
// opening them without following symlinks, and the staging bind mounts
// through which containers get exactly what was opened. Only the daemon
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
// # After submit: open once, never follow, use the descriptor
//
// Check is the submit-time decision, and it follows symlinks that stay in
// the data roots (the API promises that). Everything after submit goes
// through [Policy.Open] instead, which resolves the path once more without
// following anything: New opens each data root once and keeps its
// descriptor; Open walks from it one element at a time with
// openat(O_PATH|O_NOFOLLOW), checks by fstat of what it opened that each
// element is a directory, and refuses a symlink anywhere below the data root
// ([ErrSymlink]) — to another directory of the root, to the task's own
// input, to outside, dangling, it does not matter. Missing output
// directories are created with mkdirat in the directory opened just before:
// by Open, or in two steps, [Policy.OpenDeepest] (the deepest existing
// directory, so that the daemon can check where a new directory would land
// before making it) then [Dir.Create].
// The result is a [Dir]: an open descriptor of the very directory walked to.
// (A walk rather than openat2's RESOLVE_NO_SYMLINKS: one code path that also
// creates, the same on every kernel.)
//
// The daemon then uses the Dir, never the name:
//
//   - emptying and hashing go through [Dir.OpenRoot], an os.Root reopened
//     from the descriptor through /proc/self/fd (a magic link to the open
//     file, not a name), so neither can leave the directory;
//   - overlap between channels is decided on [FileID]s (device and inode)
//     of each directory and its ancestors as they are at that moment
//     ([Dir.Ancestors] walks ".." from the descriptor; [Overlap]), so a
//     rename after the open cannot hide that one output now contains another
//     channel;
//   - mounting goes through [Staging]: a bind mount made from
//     /proc/self/fd/N below the daemon's own staging directory, checked to
//     show the same device and inode, whose path is what the container
//     runtime is given. That path lies where no container can write, so the
//     runtime's own lookup by name cannot be raced, and it leads to the
//     object that was checked. The staging directory is a private mount
//     while it holds any, so staging mounts do not propagate; they are
//     detached once the container started (it keeps mounts of its own) and
//     swept at the next start after a crash. Nothing in the staging
//     directory is ever removed recursively.
//
// A swap that happens after the open changes nothing the daemon does: the
// descriptor keeps naming the directory that was opened, wherever it has
// been moved since, and a later Open of the same name refuses the symlink.
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
// Open's refusals are *Errors too, wrapping ErrSymlink among the others;
// the daemon reports them as START_ERROR. A directory that was removed,
// moved out of its data root or replaced after it was opened gives an error
// wrapping [ErrChanged]. Any other error (an I/O failure while resolving) is
// not the caller's fault and is not an *Error.
//
// # Caveats
//
// Data roots are resolved and opened once: if an operator re-points a
// symlinked data root while the daemon runs, the daemon keeps the old target
// until restarted. Check resolves paths on the host as the daemon sees them;
// it does not look at mount namespaces. Open does not refuse mount points
// below a data root (an operator's own mounts are fine; containers cannot
// mount on the host). A directory renamed into an output by someone who can
// write both, while that output is being emptied, is emptied with it: the
// overlap check is made right before emptying, not during it.
package hostpath
