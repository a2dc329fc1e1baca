// Package runtime owns everything pcnoded says to containerd: images (import,
// pull, list, remove, reading a file out of an image without running it),
// the OCI runtime spec of a task's container, and the container lifecycle
// (start, wait, kill, stop, usage, delete, list and re-attach).
//
// Only the daemon imports it. It exports one concrete type, Containerd, and
// plain structs; the daemon declares the interface it consumes.
//
// # Basics
//
// New makes a client of containerd without waiting for it (containerd may
// be down; the connection is made at the first call, and re-made with a
// backoff of at most 2 s whenever it breaks) and works in one namespace
// (default "pcnode"). Every method whose failure is containerd being
// unreachable (gRPC UNAVAILABLE: refused, reset or closed connection,
// missing socket, a Wait whose stream broke) returns an error wrapping
// ErrUnavailable that names containerd's address and keeps the cause. A
// Wait that failed so may be called again once containerd is back:
// containerd re-attaches its shims when it starts, and the new Wait returns
// the real exit status of a container that exited meanwhile. Every
// method takes a context first and puts that namespace on it, whatever the
// caller's context says. Image references are validated and normalised the
// way containerd and docker do it: "alpine" is "docker.io/library/alpine:latest".
//
// A container's ID is the task id; the container, its snapshot and its task
// share it, and the container carries the label LabelTaskID so that
// ListContainers finds pcnode's containers after a daemon restart. Nothing is kept in the
// process: Wait, Stop, Usage and Delete work from a new process on a task
// started by an earlier one.
//
// # Containers
//
// Containers are hardened by default: not privileged, containerd's default
// capability set without CAP_MKNOD and CAP_SETFCAP (a container's root is
// the host's root on its bind mounts, so it must not leave device nodes or
// file capabilities there), no-new-privileges, containerd's default seccomp
// profile narrowed to the native architecture (Config.Allow32BitSyscalls
// keeps its 32-bit ones),
// masked and read-only /proc paths, their own empty network namespace
// (network "none", only a loopback device) and host name unless NetworkHost
// is set. Bind mounts are rbind, nosuid
// and nodev, read-only unless asked otherwise. A memory limit also caps
// swap where the kernel accounts it, so a task over its limit is OOM-killed
// rather than swapped. GPUs are injected as CDI devices from the configured
// spec directories; a device no spec describes fails the start with
// ErrDeviceUnavailable.
//
// Wait reports OOMKilled only when the container's memory cgroup says the
// kernel OOM killer fired in it (the oom_kill counter of memory.oom_control
// on cgroup v1, memory.events on cgroup v2, read after exit and before the
// task is deleted), or when containerd published a /tasks/oom event for it
// while waiting; an exit code of 137 alone is never taken for an OOM kill.
//
// A task's output goes where its LogURI says (a logging binary the shim
// starts, or a file), never through pcnoded. The shim copies output
// asynchronously: the last bytes may land after Wait reports the exit, and
// Delete waits (briefly) for the copy to finish.
//
// # Importing images
//
// Import checks an archive while it streams in, before containerd keeps
// it: its decompressed size, its number of tar entries, the size of each
// entry, the size of every JSON document (oci-layout, index.json,
// manifest.json, image indexes, manifests, configs) before anything reads
// one into memory, and what its layers would unpack to (total file size
// and entries, counted by decompressing each layer as it passes; this
// costs one decompression of every layer on top of containerd's unpack),
// and how far a compressed archive, and its compressed layers together,
// inflate once more than RatioFloor bytes have come out (so a gzip bomb
// stops at about RatioFloor whatever the size limits). See ImportLimits; DefaultImportLimits apply where it is unset. The first
// limit passed stops the stream with an ImportLimitError; an archive that
// is not a tar, is cut short, holds bad JSON, misses a blob its manifests
// name, holds a blob whose content is not its digest, has a descriptor
// whose size is wrong or a layer that does not unpack gives
// ErrInvalidArchive.
//
// Everything an import writes is held by one containerd lease labelled
// LabelImport. The lease is removed as soon as the import ends, whether it
// succeeded, failed or was cancelled, and containerd collects what only
// that lease held (partial ingests with their data, content and snapshots
// no image names) before Import returns. Image names are created only
// after every image is unpacked, so a failed import changes none. A
// process killed during an import leaves its lease; SweepImports, called
// at start, removes such leases. Two imports of the same content at once
// are safe: containerd makes the second wait for the first's ingest.
//
// # Reading files from images
//
// ReadImageFile walks the image's layers from the content store, top layer
// first, honouring whiteouts (.wh.<name>) and opaque directories
// (.wh..wh..opq), and never unpacks or runs anything. Symbolic links inside
// the image are resolved inside the image, as a chroot would (".." stops at
// the image root; absolute targets start at the image root), at most 40 of
// them per lookup; nothing on the host is ever opened. Hard links are
// followed to the file they name.
//
// # Caveats
//
// Registry credentials (from Config.Registries or a Pull call) are sent only
// to the registry host they belong to, or to the token realm its Bearer
// challenge names when that realm is HTTPS (or plain HTTP on the registry's
// own host name, for a registry itself reached over plain HTTP); any other
// realm, and any redirect of a token request that leaves that policy, fails
// the pull with ErrUnauthorized naming the registry and the realm, before
// the realm is contacted. Credentials never appear in errors, logs or
// returned values; Auth prints itself with the password redacted. Plain
// HTTP is used only for hosts listed in Config.InsecureRegistries.
//
// A limit's name in ImportLimitError.Limit is the daemon's configuration
// key for it (in [images]).
package runtime
