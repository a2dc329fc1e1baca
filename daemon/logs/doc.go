// Package logs owns a task's log: the capture driver that the containerd shim
// starts outside the daemon process, the on-disk log format with size-capped
// rotation, and the readers (tail, since, resume, follow) behind StreamLogs.
//
// Only the daemon and the logging binaries import this package: the daemon
// builds the containerd log URI with [BinaryIOArgs] for the binary that
// [ResolveDriverBinary] found (logs.driver_path; by default cmd/pcnode-logd
// beside pcnoded), cmd/pcnode-logd and cmd/pcnoded's `log-driver`
// sub-command (kept for containers that an older pcnoded started with
// itself as the logging binary) call [RunBinary], and the task service reads
// with [Read].
//
// One logging binary runs per running task, so the capture half of the
// package (the driver, the writer, the record and segment format) uses
// nothing but a few standard packages: not log/slog ([Logger] is an
// interface that *slog.Logger satisfies), nor package fmt or flag (its
// errors are built by the helpers in errors.go, its arguments parsed by
// hand), so that pcnode-logd, which links it, stays at 2.8 MB and about
// 3 MiB of RSS; the linker leaves the readers out of it. Tests in
// cmd/pcnode-logd keep it so.
//
// # Capture
//
// containerd's "binary://" log URI makes the shim exec a logging binary with
// the container's stdout on fd 3, its stderr on fd 4 and the write end of a
// readiness pipe on fd 5, with CONTAINER_ID and CONTAINER_NAMESPACE as its
// only environment. The shim passes each query parameter of the URI as two
// arguments (key, value) in map order, so the order of several parameters is
// not stable; [BinaryIOArgs] therefore returns exactly one parameter,
// "log-driver", whose value carries the whole configuration, and the shim runs
//
//	/usr/local/bin/pcnode-logd log-driver 'dir=%2Fvar%2Flib%2F...&max-file-bytes=10485760&max-files=5'
//
// (`pcnoded log-driver ...` for containers of an older pcnoded).
//
// [RunBinary] takes the arguments after the sub-command name. It also accepts
// the flag form `--dir DIR [--max-file-bytes N] [--max-files N]` for people.
// It opens and locks the log, writes one byte to fd 5 and closes it (ready
// for both the "binary" and "binary-v2" schemes), then runs [RunDriver] until
// both streams reach end of file. The shim holds the write ends of both pipes
// until the task is deleted in containerd, then sends SIGTERM and waits 12 s
// before SIGKILL; on SIGTERM the driver keeps draining for a few seconds (the
// pipes are already closed by then, so this normally ends at once) and then
// seals the log.
//
// The log need not wait for the delete: once locked, the driver makes the
// FIFO [DrainFileName] in the log directory, and a byte written to it
// ([RequestDrain], which the daemon calls once the container's init, and so
// every process of its PID namespace, has exited) makes it read what the
// pipes still hold without waiting, seal the log and exit, although the
// shim still holds the write ends. It removes the FIFO when it ends.
//
// Because the driver is a separate process, a daemon restart loses nothing;
// because it takes an exclusive lock on the directory, two drivers never write
// the same log. A restarted driver continues the sequence numbers found on
// disk. When a driver is killed before it can seal the log, [Seal] (run by the
// daemon after deleting the task) waits for the lock and writes the end marker,
// so followers finish.
//
// # Entries
//
// Each stream is cut into entries: a line including its newline; a line
// longer than [MaxEntryBytes] is cut into pieces of that size (the last piece
// carries the newline); bytes left without a newline at end of file form a
// final entry. Every entry gets the next sequence number (1, 2, ... without
// gaps, in the order the driver read them, across both streams), the wall
// time at which the driver read it, and its stream. Memory stays bounded by
// two buffers of 2×[MaxEntryBytes] whatever the container writes.
//
// # Files
//
// A log directory holds a file "lock" and one or more segment files named by
// the sequence number of their first entry, zero-padded to 20 digits:
//
//	00000000000000000001.log
//	00000000000000004711.log
//
// A segment starts with the 8-byte header "pclog" 0x00 0x00 0x01 (the last
// byte is the format version) followed by records. A record is a 25-byte
// header and the data, little-endian:
//
//	offset size field
//	0      4    CRC-32C (Castagnoli) of bytes 4 .. end of record
//	4      4    data length n, at most MaxEntryBytes
//	8      8    sequence number
//	16     8    time, Unix nanoseconds
//	24     1    kind: 1 stdout, 2 stderr, 3 end marker
//	25     n    data, unmodified
//
// The end marker has no data and carries the sequence number of the last
// entry (0 for an empty log); it is the last record of the newest segment
// and means that nothing more will be written.
//
// The driver appends to the newest segment; before a record would push it past
// the configured size it starts a new segment (a record never spans two), and
// it removes the oldest segments beyond the configured count (default 10 MiB ×
// 5, as kubelet and nomad). Sequence numbers continue across segments, so a
// reader asking for entries that were rotated away starts at the oldest one
// still on disk ([Stat] reports the first available one), and is told which
// ones it missed: [ReadOptions].OnGap gets a [Gap] in its place between the
// entries, also when a follower falls behind rotation while reading.
//
// # Readers
//
// [Read] hands entries over in batches bounded by [ReadOptions].BufferBytes
// (data plus [EntryOverhead] per entry) and reuses the batch, its data
// buffer (grown from 16 KiB only while batches fill it) and one file buffer
// of about [MaxEntryBytes]: a reader holds no more than that however far
// behind its consumer is, and allocates nothing per entry.
//
// # Caveats
//
// A record that is incomplete or fails its checksum at the end of the newest
// segment is a write in progress or a write torn by a crash: readers stop
// there (or wait, when following), and the next driver or [Seal] truncates it
// away before appending. Such a record in an older segment ends that segment
// for readers. Timestamps come from the wall clock and may step backwards
// with it; order is given by sequence numbers only. Bytes without a newline
// are held back until the newline, the 64 KiB cut or end of file arrives.
package logs
