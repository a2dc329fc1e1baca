// Package outputs owns a task's output channels on the host: preparing each
// channel's directory before the run and listing what the container wrote
// after it. Only the daemon imports it; it knows nothing of gRPC, containerd
// or the store, and its types mirror, without importing, the API's
// OutputManifest and OutputFile.
//
// The daemon opens output directories itself (daemon/hostpath: from the
// data root's descriptor, never following a symlink) and hands this package
// an [os.Root] on what it opened ([Empty], [CollectRoot]); nothing here then
// looks up the directory by name again.
//
// # Emptying
//
// [Empty] removes everything in an output directory before the run.
// Kaapana's processing-containers expect their output channels to be clean
// at start: a task writes its results into the channel and the next task of
// the flow reads every file there as its input, so files left by an earlier
// run would be taken as this run's results. The daemon skips it when the
// spec opts out (preserve_outputs), for tasks that resume or add to earlier
// output.
//
// Output directories lie below data roots that running containers can write
// to, so Empty trusts nothing it finds there: it removes each entry through
// the Root with [os.Root.RemoveAll], which unlinks symlinks instead of
// following them and cannot leave the directory, and it never removes the
// directory itself, so the inode the daemon mounts is the one it checked.
//
// [Prepare] does the same for a caller that has only a path: it walks from
// "/" one element at a time with O_NOFOLLOW, creating missing elements
// itself and refusing a symlink anywhere ([ErrSymlink]), then empties. The
// daemon does not use it.
//
// # Manifests
//
// [Collect] walks an output channel after the run without following
// symlinks and lists every regular file with its "/"-separated path relative
// to the channel, its size and its SHA-256, sorted by path, with totals.
// Files are hashed in parallel by a bounded pool of workers. Symlinks, FIFOs,
// sockets and devices are not listed (a symlink's target may be anywhere, and
// reading a FIFO could block forever); nor are files whose path is not valid
// UTF-8, which the API's string fields cannot carry (a directory with such a
// path is not walked). Both are counted in [Manifest.Skipped] so the daemon
// can say so. Directories are walked, not listed; an empty directory leaves
// no trace in the manifest.
//
// [CollectWith] caps the files listed and the bytes of their paths
// (Options.MaxFiles and MaxPathBytes, the daemon's tasks.max_output_files
// and max_output_path_bytes shared by a task's channels): beyond them files
// are counted in [Manifest.Omitted] instead of listed, so a channel of
// millions of files, or of very long paths, cannot make a manifest no client
// can read.
//
// # No privilege left behind
//
// Containers run as root on the host's files, so the walk visits every
// entry of the channel — listed, omitted, below a non-UTF-8 name or not —
// and leaves nothing a host user could gain privilege from:
//
//   - setuid and setgid bits of regular files are cleared (fchmod on a
//     descriptor opened with O_NOFOLLOW below the directory being read,
//     checked to be the file the walk saw);
//   - block and character device nodes are removed (unlinkat in the
//     directory being read, after checking the name is still that node):
//     a node of the host's disk must not remain on the host, and no
//     processing-container has a reason to write one;
//   - a directory nested more than 512 levels deep is not walked but given
//     to root:root with mode 0700, so nothing below it can be reached by
//     other users.
//
// Symlinks are never followed, so nothing outside the channel is touched.
// Each change, and each that failed, is a [Fix] in the manifest (the first
// [MaxFixes], all counted); the daemon reports them on the task's warnings.
//
// # Caveats
//
// The manifest describes the channel as
// it was while it was walked; a file changed during the walk is hashed as read
// and its size is the number of bytes hashed. The manifest of a channel
// holding millions of files is held in memory in full.
package outputs
